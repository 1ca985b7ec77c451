// Package wal keeps argon's write-ahead log and everything that points into
// it: projects, timelines, branches, commits, head records and the reflog.
// It implements the commit protocol (claims and commits built on unique
// inserts only) and the fold that turns a prefix of the log into a state.
package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection names in the metadata database.
const (
	collProjects  = "projects"
	collTimelines = "timelines"
	collBranches  = "branches"
	collEntries   = "entries"
	collSlots     = "slots"
	collLeases    = "leases"
	collReflog    = "reflog"
	collWorkDBs   = "workdbs"
	collMoves     = "branchmoves"
)

// DefaultDatabase is the metadata database used unless configured.
const DefaultDatabase = "argon_wal"

// Repo is the versioned store of one deployment: its metadata database.
type Repo struct {
	Client *mongo.Client
	DB     *mongo.Database

	// Now returns the time recorded on commits and reflog records. It
	// decides nothing: no correctness depends on any clock.
	Now func() time.Time
	// LeaseTTL is how long a writer may go without a heartbeat before
	// another may take its slot over.
	LeaseTTL time.Duration
	// BusyTimeout bounds how long a writer waits for a held timeline.
	BusyTimeout time.Duration
	// Exclusive is set when this process is known to be the only one
	// using the deployment (the embedded engine under the workspace
	// lock): a lease left by anyone else belongs to a process that has
	// ended, and is taken over at once instead of after LeaseTTL.
	Exclusive bool
	// Scans is set when the engine evaluates {field: {$in: list}} by
	// comparing every document of the collection with every value of the
	// list (FerretDB): a lookup of many keys then reads the history once
	// instead.
	Scans bool
	// FerretDB is set when the engine is FerretDB (the embedded engine or
	// a FerretDB server): one node, which applies no write concern, so
	// that a write sent as a plain command is the driver's write.
	FerretDB bool
	// Embedded is set when the engine is argon's embedded engine
	// (FerretDB over SQLite, in this process or an argon serve), whose
	// count command workdb uses (workdb.countDocs).
	Embedded bool
	// ImageEvery is how many entries a timeline grows past its nearest
	// image before a commit takes a new one (0: never automatically).
	ImageEvery int64
	// NoImages makes folds start from the root, and reads of past states
	// materialise views of their own (no reads laid over other views):
	// for tests that compare reads with and without them.
	NoImages bool
	// imageChunk, when positive, is the size of the chunks this Repo
	// cuts images into (tests; imageChunk otherwise).
	imageChunk int
	// chunked holds the projects known to be of the current log format
	// (raiseFormat); shared by copies of the Repo.
	chunked *sync.Map
	// timelines holds the timelines this Repo read or created, by id, so
	// that one command reads each at most once. A timeline never changes
	// but for its hint, and is never deleted; a hint only ever names a
	// slot that exists, so an older one costs a read or two more from
	// further down, never a wrong head (HeadSlot).
	timelines *sync.Map
}

// Open returns the repo kept in database dbName.
func Open(client *mongo.Client, dbName string) *Repo {
	if dbName == "" {
		dbName = DefaultDatabase
	}
	return &Repo{
		Client:      client,
		DB:          client.Database(dbName),
		Now:         func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }, // as BSON dates keep it
		LeaseTTL:    DefaultLeaseTTL,
		chunked:     &sync.Map{},
		timelines:   &sync.Map{},
		BusyTimeout: 60 * time.Second,
		ImageEvery:  DefaultImageEvery,
	}
}

// EnsureSchema creates the metadata indexes. It is idempotent.
func (r *Repo) EnsureSchema(ctx context.Context) error {
	idx := []struct {
		coll   string
		keys   bson.D
		unique bool
	}{
		{collEntries, bson.D{{Key: "tl", Value: 1}, {Key: "token", Value: 1}, {Key: "lsn", Value: 1}}, false},
		{collSlots, bson.D{{Key: "tl", Value: 1}, {Key: "n", Value: 1}}, true},
		{collBranches, bson.D{{Key: "project", Value: 1}, {Key: "name", Value: 1}}, true},
		{collReflog, bson.D{{Key: "project", Value: 1}, {Key: "branch", Value: 1}, {Key: "seq", Value: 1}}, false},
		{collImages, bson.D{{Key: "tl", Value: 1}, {Key: "lsn", Value: 1}}, false},
	}
	// The leases, key pages and chunk keys collections have no index but
	// _id's; they are created here so that they exist when an embedded
	// engine next opens the database and adds argon's index for lookups by
	// _id (store.IndexIDs), and not only when the first write inserts one.
	for _, coll := range []string{collLeases, collKeyPages, collChunkKeys} {
		if err := r.DB.CreateCollection(ctx, coll); err != nil {
			var ce mongo.CommandError
			if !errors.As(err, &ce) || ce.Code != 48 { // NamespaceExists
				return fmt.Errorf("create collection %s: %w", coll, err)
			}
		}
	}
	for _, ix := range idx {
		m := mongo.IndexModel{Keys: ix.keys}
		if ix.unique {
			m.Options = options.Index().SetUnique(true)
		}
		if _, err := r.DB.Collection(ix.coll).Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("create index on %s: %w", ix.coll, err)
		}
	}
	return nil
}

// Project is one versioned database.
type Project struct {
	Name    string    `bson:"_id"`
	Created time.Time `bson:"created_at"`
	// Format is the log format of the argon that created the project
	// (absent: 1).
	Format int `bson:"format,omitempty"`
}

// Format is the layout of the log this argon writes; it reads every
// format up to it. A project records the format of its log, and an argon
// refuses a project of a newer format, whose log it may not read
// completely. Format 2 stores spilled entries in chunks (chunks.go).
// Format 3 leaves out the chunks' key hashes (kh) on an engine that scans,
// where their key records select them (collChunkKeys): a format-2 argon
// would look for them by kh alone and miss them. A project of an older
// format is raised by its first spill (SpillEntries).
const Format = 3

// FormatError reports a project created by a newer argon.
type FormatError struct {
	Project string
	Format  int
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("project %q was written by a newer argon (log format %d; this argon reads up to format %d): upgrade argon", e.Project, e.Format, Format)
}

// Timeline is an append-only LSN space. A timeline forked from Parent at
// Base inherits the parent's history up to and including Base; its own
// entries are numbered from Base+1.
type Timeline struct {
	ID      string `bson:"_id"`
	Project string `bson:"project"`
	Parent  string `bson:"parent,omitempty"`
	Base    int64  `bson:"base_lsn"`
	// ParentSlot is the parent's slot the fork was taken at: the log of
	// the child walks into the parent from there.
	ParentSlot int64     `bson:"parent_slot"`
	Created    time.Time `bson:"created_at"`
	// Hint names a slot of this timeline known to exist, from which its
	// head is searched (see HeadSlot).
	Hint int64 `bson:"hint"`
}

// Branch is a name pointing at a timeline.
type Branch struct {
	ID       string    `bson:"_id"`
	Project  string    `bson:"project"`
	Name     string    `bson:"name"`
	Timeline string    `bson:"timeline"`
	Created  time.Time `bson:"created_at"`
	// DB is the branch's working database, reserved for it by a unique
	// insert when the branch was created: no other branch, project or
	// metadata database ever has it. It stays with the branch through
	// renames. Empty on branches from before reservations (the name is
	// then derived).
	DB string `bson:"db,omitempty"`
	// Incarnation identifies this binding of the name: a rename or delete
	// consumes it by a unique insert, so that two of them racing on one
	// name cannot both win.
	Incarnation string `bson:"incarnation,omitempty"`
	// RenamedFrom is the incarnation a rename took this name from. Until
	// the rename has consumed that binding the record is tentative: a
	// delete that consumed it first wins, and the rename removes it.
	RenamedFrom string `bson:"renamed_from,omitempty"`
	// Fork is a copy of the fork point of the branch's timeline, which
	// never changes, written with the timeline's id (creation, Repoint):
	// listing branches then needs no read of the timelines. Absent on
	// branches written before it.
	Fork *Fork `bson:"fork,omitempty"`
}

// Fork is where a timeline was forked from: its parent, the LSN and the
// parent's slot (Timeline's fields of the same names).
type Fork struct {
	Parent     string `bson:"parent,omitempty"`
	Base       int64  `bson:"base_lsn"`
	ParentSlot int64  `bson:"parent_slot"`
}

func forkOf(t *Timeline) *Fork {
	return &Fork{Parent: t.Parent, Base: t.Base, ParentSlot: t.ParentSlot}
}

// ForkTimeline returns b's timeline as b's copy of its fork point gives
// it, or nil when b has no copy. Its Hint is -1 (not known): HeadsOf reads
// it when it needs it.
func (b *Branch) ForkTimeline() *Timeline {
	if b.Fork == nil {
		return nil
	}
	return &Timeline{ID: b.Timeline, Project: b.Project, Parent: b.Fork.Parent, Base: b.Fork.Base, ParentSlot: b.Fork.ParentSlot, Hint: -1}
}

// WorkingDatabase is the name of b's working database.
func (r *Repo) WorkingDatabase(b *Branch) string {
	if b.DB != "" {
		return b.DB
	}
	return r.WorkingDatabaseName(b.Project, b.Name)
}

// The actions of the two reflog records of a rename (the old name's and
// the new name's), followed by the other name.
const (
	RenameToPrefix   = "rename to "
	RenameFromPrefix = "rename from "
)

// ReflogRecord is one move of a branch name.
type ReflogRecord struct {
	Project string    `bson:"project" json:"-"`
	Branch  string    `bson:"branch" json:"branch"`
	Time    time.Time `bson:"ts" json:"time"`
	Action  string    `bson:"action" json:"action"`
	OldTL   string    `bson:"old_tl,omitempty" json:"old_timeline,omitempty"`
	OldLSN  int64     `bson:"old_lsn" json:"old_lsn"`
	NewTL   string    `bson:"new_tl,omitempty" json:"new_timeline,omitempty"`
	NewLSN  int64     `bson:"new_lsn" json:"new_lsn"`
	Message string    `bson:"message,omitempty" json:"message,omitempty"`
	// Seq orders records made within one clock tick (the recorded time
	// may be fixed by ARGON_COMMIT_DATE); it is the real clock in ns.
	Seq int64 `bson:"seq" json:"-"`
}

func branchID(project, name string) string { return project + "/" + name }

func isDup(err error) bool { return mongo.IsDuplicateKeyError(err) }

func newTimelineID() string { return bson.NewObjectID().Hex() }

// CreateProject creates a project with its root timeline and branch main.
func (r *Repo) CreateProject(ctx context.Context, name string) (*Project, *Branch, error) {
	if err := ValidateProject(name); err != nil {
		return nil, nil, err
	}
	now := r.Now()
	p := &Project{Name: name, Created: now, Format: Format}
	if _, err := r.DB.Collection(collProjects).InsertOne(ctx, p); err != nil {
		if isDup(err) {
			return nil, nil, &ExistsError{Kind: "project", Name: name}
		}
		return nil, nil, err
	}
	b, err := r.newBranch(ctx, name, "main", "", 0, 0, "init")
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}

// Project returns the named project.
func (r *Repo) Project(ctx context.Context, name string) (*Project, error) {
	var p Project
	err := r.DB.Collection(collProjects).FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&p)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, &NotFoundError{Kind: "project", Name: name}
	}
	if err == nil && p.Format > Format {
		return nil, &FormatError{Project: name, Format: p.Format}
	}
	if err == nil && p.Format == Format {
		r.chunked.Store(name, true)
	}
	return &p, err
}

// newBranch creates a timeline forked from parent at base (a root timeline
// when parent is empty), its first head record, and a branch naming it.
func (r *Repo) newBranch(ctx context.Context, project, name, parent string, base, parentSlot int64, action string) (*Branch, error) {
	tl, _, err := r.newTimeline(ctx, project, parent, base, parentSlot)
	if err != nil {
		return nil, err
	}
	now := tl.Created
	b := &Branch{ID: branchID(project, name), Project: project, Name: name, Timeline: tl.ID, Created: now,
		Incarnation: bson.NewObjectID().Hex(), Fork: forkOf(tl)}
	if b.DB, err = r.reserveDB(ctx, b); err != nil {
		return nil, err
	}
	if _, err := r.DB.Collection(collBranches).InsertOne(ctx, b); err != nil {
		// The timeline and its root slot stay behind unreferenced; gc
		// reclaims them. Nothing points at them.
		r.releaseDB(ctx, b)
		if isDup(err) {
			return nil, &ExistsError{Kind: "branch", Name: name}
		}
		return nil, err
	}
	r.reflog(ctx, ReflogRecord{Project: project, Branch: name, Action: action, NewTL: tl.ID, NewLSN: base})
	return b, nil
}

// newTimeline creates a timeline forked from parent at base (a root
// timeline when parent is empty) and its root slot.
func (r *Repo) newTimeline(ctx context.Context, project, parent string, base, parentSlot int64) (*Timeline, *Slot, error) {
	now := r.Now()
	tl := &Timeline{ID: newTimelineID(), Project: project, Parent: parent, Base: base, ParentSlot: parentSlot, Created: now}
	if _, err := r.DB.Collection(collTimelines).InsertOne(ctx, tl); err != nil {
		return nil, nil, err
	}
	r.remember(tl)
	root := &Slot{TL: tl.ID, N: 0, Kind: SlotRoot, Base: base, LSN: base, Time: now}
	if err := r.InsertSlot(ctx, root); err != nil {
		return nil, nil, err
	}
	return tl, root, nil
}

// Repoint makes branch name of project, bound to timeline from, name
// timeline to instead, after from was closed at LSN fromLSN by a moved
// slot pointing at to, and records the move in the reflog under action.
// It changes nothing when the binding names another timeline (it was
// repointed already, renamed, deleted). The moved slot is the truth; the
// binding follows it, so whoever finds the moved slot first repoints.
func (r *Repo) Repoint(ctx context.Context, project, name, from, to string, fromLSN int64, action string) (bool, error) {
	t, err := r.Timeline(ctx, to)
	if err != nil {
		return false, err
	}
	res, err := r.DB.Collection(collBranches).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: branchID(project, name)}, {Key: "timeline", Value: from}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "timeline", Value: to}, {Key: "fork", Value: forkOf(t)}}}})
	if err != nil || res.ModifiedCount == 0 {
		return false, err
	}
	r.reflog(ctx, ReflogRecord{Project: project, Branch: name, Action: action, OldTL: from, OldLSN: fromLSN, NewTL: to, NewLSN: t.Base})
	return true, nil
}

func (r *Repo) reflog(ctx context.Context, rec ReflogRecord) {
	rec.Time = r.Now()
	rec.Seq = time.Now().UnixNano()
	// The reflog is a record for humans; a failure to write it must not
	// undo a branch move that already happened.
	_, _ = r.DB.Collection(collReflog).InsertOne(ctx, rec)
}

// Reflog returns the moves of a branch name, newest first.
func (r *Repo) Reflog(ctx context.Context, project, branch string) ([]ReflogRecord, error) {
	filter := bson.D{{Key: "project", Value: project}}
	if branch != "" {
		filter = append(filter, bson.E{Key: "branch", Value: branch})
	}
	cur, err := r.DB.Collection(collReflog).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}))
	if err != nil {
		return nil, err
	}
	var out []ReflogRecord
	return out, cur.All(ctx, &out)
}

// Branch returns the named branch of project.
func (r *Repo) Branch(ctx context.Context, project, name string) (*Branch, error) {
	var b Branch
	err := r.DB.Collection(collBranches).FindOne(ctx, bson.D{{Key: "_id", Value: branchID(project, name)}}).Decode(&b)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, &NotFoundError{Kind: "branch", Name: name}
	}
	return &b, err
}

// Branches lists the branches of project by name.
func (r *Repo) Branches(ctx context.Context, project string) ([]Branch, error) {
	cur, err := r.DB.Collection(collBranches).Find(ctx, bson.D{{Key: "project", Value: project}},
		options.Find().SetSort(bson.D{{Key: "name", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var out []Branch
	return out, cur.All(ctx, &out)
}

// Timeline returns the timeline with id.
func (r *Repo) Timeline(ctx context.Context, id string) (*Timeline, error) {
	if r.timelines != nil {
		if t, ok := r.timelines.Load(id); ok {
			c := *t.(*Timeline)
			return &c, nil
		}
	}
	var t Timeline
	err := r.DB.Collection(collTimelines).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&t)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, &NotFoundError{Kind: "timeline", Name: id}
	}
	if err == nil {
		r.remember(&t)
	}
	return &t, err
}

// remember keeps a copy of t in the Repo's timelines (see there).
func (r *Repo) remember(t *Timeline) {
	if r.timelines != nil {
		c := *t
		r.timelines.Store(t.ID, &c)
	}
}

// Ancestry returns tl and its ancestors, nearest first.
func (r *Repo) Ancestry(ctx context.Context, id string) ([]Timeline, error) {
	var out []Timeline
	for id != "" {
		t, err := r.Timeline(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
		id = t.Parent
		if len(out) > 10000 {
			return nil, fmt.Errorf("timeline %s: ancestry is cyclic", out[0].ID)
		}
	}
	return out, nil
}

// CreateBranch forks a new branch from the timeline of from at LSN at
// (the from branch's committed head when at < 0). It reads no log entries
// and copies no data: its cost does not depend on the size of the data.
func (r *Repo) CreateBranch(ctx context.Context, project, name string, from *Branch, at int64) (*Branch, error) {
	return r.CreateBranchFrom(ctx, project, name, from, at, nil)
}

// CreateBranchFrom is CreateBranch with head, the from branch's head slot
// as the caller read it (nil: read it here). A head only ever grows, so
// an LSN at or below one read earlier is still within the history, and
// its slot is found from the one read: a caller that just resolved the
// start point spares the second read of the head.
func (r *Repo) CreateBranchFrom(ctx context.Context, project, name string, from *Branch, at int64, head *Slot) (*Branch, error) {
	if err := r.canCreate(ctx, project, name); err != nil {
		return nil, err
	}
	parent, at, slot, err := r.forkPoint(ctx, from, at, head)
	if err != nil {
		return nil, err
	}
	return r.newBranch(ctx, project, name, parent, at, slot, "create from "+from.Name+fmt.Sprintf("@%d", at))
}

// CreateBranchAtSlot is CreateBranchFrom at slot n of timeline tl, whose
// LSN is at (see ForkTimelineAt): a branch from BRANCH~N below a commit
// that changed nothing leaves that commit out of its history.
func (r *Repo) CreateBranchAtSlot(ctx context.Context, project, name string, from *Branch, tl string, at, n int64) (*Branch, error) {
	if err := r.canCreate(ctx, project, name); err != nil {
		return nil, err
	}
	if _, err := r.SlotAtLSN(ctx, tl, at, n); err != nil {
		return nil, err
	}
	return r.newBranch(ctx, project, name, tl, at, n, "create from "+from.Name+fmt.Sprintf("@%d", at))
}

// canCreate checks that name is a valid branch name that no branch or tag
// of project has.
func (r *Repo) canCreate(ctx context.Context, project, name string) error {
	if err := ValidateBranch("branch", name); err != nil {
		return err
	}
	if err := r.notATag(ctx, project, name); err != nil {
		return err
	}
	if _, err := r.Branch(ctx, project, name); err == nil {
		return &ExistsError{Kind: "branch", Name: name}
	}
	return nil
}

// SlotAtLSN reads slot n of timeline tl and checks that it is at LSN at.
func (r *Repo) SlotAtLSN(ctx context.Context, tl string, at, n int64) (*Slot, error) {
	s, err := r.ReadSlot(ctx, tl, n)
	if err != nil {
		return nil, err
	}
	if s == nil || s.LSN != at {
		return nil, fmt.Errorf("log is inconsistent: slot %d of timeline %s is not at LSN %d", n, tl, at)
	}
	return s, nil
}

// forkPoint finds where a fork of from at LSN at (its head when at < 0)
// attaches: the timeline of from's ancestry that holds LSN at, and its
// slot there. known, when not nil, is a head slot of from's timeline read
// earlier (see CreateBranchFrom); it stands for the head when at is at or
// below it.
func (r *Repo) forkPoint(ctx context.Context, from *Branch, at int64, known *Slot) (string, int64, int64, error) {
	var head Head
	if known != nil && known.TL == from.Timeline && at >= 0 && at <= known.LSN {
		head = Head{LSN: known.LSN, Slot: known}
	} else {
		var err error
		if head, err = r.Head(ctx, from.Timeline); err != nil {
			return "", 0, 0, err
		}
	}
	if at < 0 {
		at = head.LSN
	}
	if at > head.LSN {
		return "", 0, 0, &RangeError{Ref: "branch " + from.Name, LSN: at, Head: head.LSN}
	}
	tl, err := r.Timeline(ctx, from.Timeline)
	if err != nil {
		return "", 0, 0, err
	}
	// A fork below the timeline's own base belongs to an ancestor: walk up
	// so that the new timeline's parent really holds LSN at.
	parent := tl
	slot := head.Slot.N
	if at < head.LSN {
		if slot, err = r.SlotAt(ctx, tl.ID, head.Slot, at); err != nil {
			return "", 0, 0, err
		}
	}
	for at < parent.Base && parent.Parent != "" {
		slot = parent.ParentSlot
		if parent, err = r.Timeline(ctx, parent.Parent); err != nil {
			return "", 0, 0, err
		}
		if s, err := r.ReadSlot(ctx, parent.ID, slot); err != nil {
			return "", 0, 0, err
		} else if s != nil && s.LSN > at {
			if slot, err = r.SlotAt(ctx, parent.ID, s, at); err != nil {
				return "", 0, 0, err
			}
		}
	}
	return parent.ID, at, slot, nil
}

// ForkTimeline creates a timeline forked from the timeline of from at LSN
// at (its head when at < 0), with no branch naming it yet, and returns its
// root slot. A fast-forward moves a branch onto such a timeline.
func (r *Repo) ForkTimeline(ctx context.Context, project string, from *Branch, at int64) (*Slot, error) {
	parent, base, slot, err := r.forkPoint(ctx, from, at, nil)
	if err != nil {
		return nil, err
	}
	_, root, err := r.newTimeline(ctx, project, parent, base, slot)
	return root, err
}

// ForkTimelineAt is ForkTimeline at slot n of timeline tl, whose LSN is
// at: a position the LSN alone does not name when the slot above it is a
// commit that changed nothing (see refs.Point's SlotN).
func (r *Repo) ForkTimelineAt(ctx context.Context, project, tl string, at, n int64) (*Slot, error) {
	if _, err := r.SlotAtLSN(ctx, tl, at, n); err != nil {
		return nil, err
	}
	_, root, err := r.newTimeline(ctx, project, tl, at, n)
	return root, err
}

// consume takes binding b of a name for a rename or a delete, by a unique
// insert keyed by its incarnation: of two racing operations on one name,
// exactly one gets it.
func (r *Repo) consume(ctx context.Context, b *Branch, action string) error {
	if b.Incarnation == "" {
		// A branch from before incarnations: give it one first; the
		// consume below still decides.
		if err := r.consumeLegacy(ctx, b); err != nil {
			return err
		}
	}
	_, err := r.DB.Collection(collMoves).InsertOne(ctx, bson.D{{Key: "_id", Value: b.Incarnation},
		{Key: "project", Value: b.Project}, {Key: "branch", Value: b.Name}, {Key: "action", Value: action}, {Key: "ts", Value: r.Now()}})
	if isDup(err) {
		return &ConflictError{Name: b.Name}
	}
	return err
}

// ConflictError reports a branch name that another command renamed or
// deleted at the same time.
type ConflictError struct{ Name string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("branch %q was renamed or deleted by another command at the same time", e.Name)
}

// DeleteBranch removes a branch name. Its timeline stays until gc finds
// nothing needs it; the reflog records where the branch pointed. The
// caller drops the working database (Branch.DB) after it.
func (r *Repo) DeleteBranch(ctx context.Context, project, name string) (*Branch, int64, error) {
	b, err := r.Branch(ctx, project, name)
	if err != nil {
		return nil, 0, err
	}
	return r.DeleteBranchOf(ctx, b)
}

// DeleteBranchOf is DeleteBranch of the binding b as the caller read it
// (and checked): when a rename took it meanwhile, or it was deleted and
// its name given to a new branch, the delete fails with a ConflictError
// instead of deleting whatever holds the name now (review33).
func (r *Repo) DeleteBranchOf(ctx context.Context, b *Branch) (*Branch, int64, error) {
	project, name := b.Project, b.Name
	if err := r.consume(ctx, b, "delete"); err != nil {
		return nil, 0, err
	}
	head, err := r.closeTimeline(ctx, b)
	if err != nil {
		return nil, 0, err
	}
	if _, err := r.DB.Collection(collBranches).DeleteOne(ctx, bson.D{{Key: "_id", Value: b.ID}, {Key: "incarnation", Value: b.Incarnation}}); err != nil {
		return nil, 0, err
	}
	r.reflog(ctx, ReflogRecord{Project: project, Branch: name, Action: "delete", OldTL: head.TL, OldLSN: head.LSN})
	b.Timeline = head.TL // where it was, had a fast-forward just moved it
	return b, head.LSN, nil
}

// closeTimeline ends the timeline of b, whose branch is being deleted,
// with a clean void slot after its head, marked Closed, and returns that
// slot (its LSN is the head's, its TL the timeline closed). A write that
// took the branch's lease before the delete then finds its commit slot
// taken and fails, as a writer taken over does: the unique insert of the
// slot decides, not timing; and one that comes later finds the timeline
// closed (commit.acquire). So the head the reflog records is the last
// commit the branch will ever have. A fast-forward that moved the branch
// on after b was read is followed to the timeline it moved to (found by
// review: the delete recorded the state before the merge and left the
// new timeline open). A timeline another live branch record names (a
// rename a crash cut short leaves two names on one) is not closed; a
// rename's record that is still tentative, taken from the binding this
// delete consumed, does not count (found by review: it kept the timeline
// open, and the rename then lost and removed it).
func (r *Repo) closeTimeline(ctx context.Context, b *Branch) (*Slot, error) {
	tl := b.Timeline
	for {
		h, err := r.HeadSlot(ctx, tl, nil)
		if err != nil {
			return nil, err
		}
		if h.Kind == SlotMoved && h.To != "" {
			tl = h.To
			continue
		}
		if h.Closed {
			return h, nil
		}
		n, err := r.DB.Collection(collBranches).CountDocuments(ctx, bson.D{{Key: "project", Value: b.Project},
			{Key: "timeline", Value: tl}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: b.ID}}},
			{Key: "renamed_from", Value: bson.D{{Key: "$ne", Value: b.Incarnation}}}})
		if err != nil || n > 0 {
			return h, err
		}
		v := &Slot{TL: tl, N: h.N + 1, Kind: SlotVoid, Base: h.LSN, LSN: h.LSN,
			Token: "delete-" + bson.NewObjectID().Hex(), Time: r.Now(), Closed: true}
		if err := r.InsertSlot(ctx, v); err == nil {
			return v, nil
		} else if !isDup(err) {
			return nil, err
		}
		// A commit (or another void) took that slot first: close after it.
	}
}

// ReleaseWorkingDatabase gives up the reservation of a deleted branch's
// working database (after the caller dropped it).
func (r *Repo) ReleaseWorkingDatabase(ctx context.Context, b *Branch) { r.releaseDB(ctx, b) }

// RenameBranch gives a branch a new name; its timeline and its working
// database stay the same. The new name is taken first (a unique insert),
// then the old binding is consumed (a unique insert: of two renames racing
// on one name, one wins and the other takes its new name back), then the
// old name is removed. A crash in between leaves two names for one
// timeline, never none.
func (r *Repo) RenameBranch(ctx context.Context, project, oldName, newName string) (*Branch, error) {
	if err := ValidateBranch("branch", newName); err != nil {
		return nil, err
	}
	if err := r.notATag(ctx, project, newName); err != nil {
		return nil, err
	}
	b, err := r.Branch(ctx, project, oldName)
	if err != nil {
		return nil, err
	}
	if b.Incarnation == "" {
		if err := r.consumeLegacy(ctx, b); err != nil {
			return nil, err
		}
	}
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		return nil, err
	}
	nb := *b
	nb.ID, nb.Name, nb.Incarnation = branchID(project, newName), newName, bson.NewObjectID().Hex()
	nb.RenamedFrom = b.Incarnation
	nb.DB = r.WorkingDatabase(b)
	if _, err := r.DB.Collection(collBranches).InsertOne(ctx, nb); err != nil {
		if isDup(err) {
			return nil, &ExistsError{Kind: "branch", Name: newName}
		}
		return nil, err
	}
	if err := r.consume(ctx, b, "rename to "+newName); err != nil {
		_, _ = r.DB.Collection(collBranches).DeleteOne(ctx, bson.D{{Key: "_id", Value: nb.ID}, {Key: "incarnation", Value: nb.Incarnation}})
		return nil, err
	}
	if _, err := r.DB.Collection(collBranches).DeleteOne(ctx, bson.D{{Key: "_id", Value: b.ID}, {Key: "incarnation", Value: b.Incarnation}}); err != nil {
		return nil, err
	}
	_, _ = r.DB.Collection(collWorkDBs).UpdateOne(ctx, bson.D{{Key: "_id", Value: nb.DB}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "branch", Value: newName}, {Key: "incarnation", Value: nb.Incarnation}}}})
	r.reflog(ctx, ReflogRecord{Project: project, Branch: oldName, Action: RenameToPrefix + newName, OldTL: b.Timeline, OldLSN: head.LSN})
	r.reflog(ctx, ReflogRecord{Project: project, Branch: newName, Action: RenameFromPrefix + oldName, NewTL: b.Timeline, NewLSN: head.LSN})
	return &nb, nil
}

// consumeLegacy gives a branch from before incarnations an incarnation
// (and a reserved working database), so that consume can fence it.
func (r *Repo) consumeLegacy(ctx context.Context, b *Branch) error {
	inc := bson.NewObjectID().Hex()
	_, err := r.DB.Collection(collBranches).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: b.ID}, {Key: "incarnation", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "incarnation", Value: inc}, {Key: "db", Value: r.WorkingDatabase(b)}}}})
	if err != nil {
		return err
	}
	nb, err := r.Branch(ctx, b.Project, b.Name)
	if err != nil {
		return err
	}
	*b = *nb
	return nil
}

// BranchNames maps timeline ids to the names of the branches of project
// that point at them, for labelling history.
func (r *Repo) BranchNames(ctx context.Context, project string) (map[string]string, error) {
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return nil, err
	}
	return r.NamesOf(ctx, project, bs, nil)
}

// NamesOf is BranchNames for the branches bs already read. When need is
// not nil, the reflog (the names of timelines no branch is on) is read only
// if a timeline in need has no branch; the map then holds at least the
// names of need.
func (r *Repo) NamesOf(ctx context.Context, project string, bs []Branch, need []string) (map[string]string, error) {
	m := make(map[string]string, len(bs))
	for _, b := range bs {
		if _, ok := m[b.Timeline]; !ok {
			m[b.Timeline] = b.Name
		}
	}
	missing := need == nil
	for _, id := range need {
		if _, ok := m[id]; !ok && id != "" {
			missing = true
		}
	}
	if !missing {
		return m, nil
	}
	// Timelines whose branch was deleted keep the last name they had.
	cur, err := r.DB.Collection(collReflog).Find(ctx, bson.D{{Key: "project", Value: project},
		{Key: "action", Value: bson.D{{Key: "$regex", Value: "^(delete$|fast-forward|reset|" + RenameToPrefix + ")"}}}})
	if err != nil {
		return nil, err
	}
	var recs []ReflogRecord
	if err := cur.All(ctx, &recs); err != nil {
		return nil, err
	}
	// A branch renamed after it left a timeline is known there by its
	// name now (found by a new-user run: a rename kept "feat (before
	// reset)" for a branch called feat2, and a new branch given the old
	// name took the old history for its own).
	renames := map[string][]ReflogRecord{}
	for _, d := range recs {
		if strings.HasPrefix(d.Action, RenameToPrefix) {
			renames[d.Branch] = append(renames[d.Branch], d)
		}
	}
	later := func(name string, seq int64) string {
		for range 100 {
			var next *ReflogRecord
			for i, rn := range renames[name] {
				if rn.Seq > seq && (next == nil || rn.Seq < next.Seq) {
					next = &renames[name][i]
				}
			}
			if next == nil {
				break
			}
			name, seq = strings.TrimPrefix(next.Action, RenameToPrefix), next.Seq
		}
		return name
	}
	for _, d := range recs {
		if _, ok := m[d.OldTL]; !ok && d.OldTL != "" && !strings.HasPrefix(d.Action, RenameToPrefix) {
			name := d.Branch + " (deleted)"
			if strings.HasPrefix(d.Action, "fast-forward") || strings.HasPrefix(d.Action, "reset") {
				// The branch's history before a fast-forward or a reset
				// is still its history.
				name = later(d.Branch, d.Seq)
			}
			m[d.OldTL] = name
		}
	}
	return m, nil
}

// TimelineName returns the name BranchNames gives timeline id of project
// ("" when it has none), reading no more than it needs: one filtered read
// of the branches, and the reflog only when no branch is on the timeline.
func (r *Repo) TimelineName(ctx context.Context, project, id string) (string, error) {
	var b Branch
	err := r.DB.Collection(collBranches).FindOne(ctx, bson.D{{Key: "project", Value: project}, {Key: "timeline", Value: id}},
		options.FindOne().SetSort(bson.D{{Key: "name", Value: 1}})).Decode(&b)
	if err == nil {
		return b.Name, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return "", err
	}
	m, err := r.NamesOf(ctx, project, nil, []string{id})
	if err != nil {
		return "", err
	}
	return m[id], nil
}

// TimelineRef returns a branch-like handle on timeline id of project, for
// refs that name a timeline directly (as the reflog prints a deleted
// branch: TIMELINE@LSN).
func (r *Repo) TimelineRef(ctx context.Context, project, id string) (*Branch, error) {
	t, err := r.Timeline(ctx, id)
	if err != nil || t.Project != project {
		return nil, &NotFoundError{Kind: "branch", Name: id}
	}
	return &Branch{Project: project, Name: id, Timeline: id}, nil
}

// Hostname names this machine in lease records, for people reading them.
func Hostname() string {
	h, _ := os.Hostname()
	return h
}

// Descends reports whether the state at LSN lsn of timeline tl has the
// head state (anc, ancLSN) of another branch in its own history, so that
// moving that branch to (tl, lsn) is a fast-forward that leaves nothing of
// it behind. The head state is first expressed on the timeline that holds
// it: a timeline with no commit of its own (not even an empty merge) holds
// its parent's state at its fork point. Then that timeline must be on
// tl's ancestry, forked from at or after ancLSN, and lsn past ancLSN.
func (r *Repo) Descends(ctx context.Context, tl string, lsn int64, anc string, ancLSN int64) (bool, error) {
	for {
		t, err := r.Timeline(ctx, anc)
		if err != nil {
			return false, err
		}
		if t.Parent == "" || ancLSN != t.Base {
			break
		}
		own, err := r.TimelineSlots(ctx, anc, ancLSN-1, ancLSN+1)
		if err != nil {
			return false, err
		}
		if len(own) > 0 {
			break
		}
		anc = t.Parent
	}
	chain, err := r.Ancestry(ctx, tl)
	if err != nil {
		return false, err
	}
	if lsn <= ancLSN || lsn < chain[0].Base {
		return false, nil
	}
	for i := range chain {
		if chain[i].ID == anc {
			return i == 0 || chain[i-1].Base >= ancLSN, nil
		}
	}
	return false, nil
}

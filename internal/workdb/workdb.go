// Package workdb keeps each branch's working database: a real MongoDB
// database holding the branch's committed head, where the server evaluates
// queries and update operators, and where applications connect. It is a
// cache of the log: it can be dropped and rebuilt from the WAL at any time.
//
// workdb knows how to bring a database to a state of the log and how to
// evaluate a change on it; when it may do so is decided by the commit
// protocol (package commit), which it reaches through the Protocol
// interface.
package workdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
)

// MarkerCollection holds the document that records what a working
// database reflects, and the record of which metadata database owns it
// (wal.Owner). It is not user data: argon never lists or versions it.
const MarkerCollection = wal.DBMetaCollection

const markerID = "marker"

// Marker records the state a working database reflects: slot Slot of
// timeline TL, whose head is LSN. It may lag behind: every writer that
// committed a later slot changed this database before its commit, so the
// database reflects the newest slot below the first one nobody has taken
// (see package commit). Epoch is new at every rebuild, so a marker from
// before a rebuild is never mistaken for one after it.
type Marker struct {
	ID string `bson:"_id"`
	// Meta names the metadata database the log is in (absent in markers
	// written before it was recorded).
	Meta    string `bson:"meta,omitempty"`
	Project string `bson:"project"`
	Branch  string `bson:"branch"`
	TL      string `bson:"tl"`
	Slot    int64  `bson:"slot"`
	LSN     int64  `bson:"lsn"`
	Token   string `bson:"token"`
	Epoch   string `bson:"epoch"`
	// Sums fingerprint the committed content at Slot (see Sums); nil when
	// unknown, in which case changes are looked for the slow way.
	Sums Sums `bson:"sums"`
	// Held is set, never stored, when Read runs its function while it
	// holds the branch (its lease): that try is the one accepted, and
	// the release that follows may write the database again.
	Held bool `bson:"-"`
}

// ApplyFunc evaluates one write on the working database and emits the
// entries to log, a batch at a time.
type ApplyFunc func(ctx context.Context, emit func([]wal.Entry) error) error

// Protocol runs writes and guards reads of working databases: it decides
// when a database may be read or changed, and commits.
type Protocol interface {
	// Write runs apply on the working database as one commit. intent
	// names the keys the write will change when they are known before
	// it starts.
	Write(ctx context.Context, w *Branch, info *wal.CommitInfo, intent []wal.KeyRef, apply ApplyFunc) (*wal.Commit, int64, error)
	// Read runs fn against a working database that reflects the
	// committed head, and makes sure no writer touched it meanwhile.
	Read(ctx context.Context, w *Branch, fn func(*Marker) error) error
	// Restore rebuilds the working database from the log at the head.
	Restore(ctx context.Context, w *Branch) (int64, error)
	// Move fast-forwards the branch onto the timeline whose root slot is
	// to, if its head is still at LSN base; apply brings the database to
	// that state.
	Move(ctx context.Context, w *Branch, to *wal.Slot, base int64, action string, info *wal.CommitInfo, apply ApplyFunc) error
}

// DBFiles fingerprints the files the engine keeps a database in (equal
// fingerprints: byte-identical files), and keeps, per database, the
// fingerprint at which a full scan last found it equal to its committed
// state (store.DBFiles).
type DBFiles interface {
	Fingerprint(db string) (string, error)
	Clean(db string) string
	SetClean(db, fp string) error
	// KeepClean records db's files as they are now as clean, after a
	// write of this process took them from clean files to files holding
	// exactly the committed state, when no one else can have written in
	// between.
	KeepClean(db string) error
	// Building is called before this process builds db whole from the
	// log, and Built after: Built records the database clean when no one
	// else wrote to it in between.
	Building(db string)
	Built(db string) error
	// HoldWrites keeps every other client's writes away from db until
	// the returned function is called, where the engine is shared with
	// applications through argon serve (a no-op elsewhere: no one else
	// can write, or argon cannot stop them). The hold lapses ttl after
	// its holder stops renewing it.
	HoldWrites(ctx context.Context, db string, ttl time.Duration) (release func(), err error)
}

// CarriedHolds is implemented by DBFiles whose holds can ride on a
// command argon sends anyway (a client of an argon serve that takes them:
// store.Carrier), saving a message each: HoldOn carries the hold of db's
// writes, ReleaseOn its release. Each returns the field to add to the
// command and the function to give the command's answer or error to, or
// ok false (hold or release with HoldWrites as before). done returns,
// for a hold, its release function (nil: nothing was held); for a
// release, a non-nil function when the release happened (nil: release as
// before).
//
// Then carries body, a write command to db, as a follow-up that the serve
// passes on once the carrying command succeeded: the marker's update
// rides on the slot's insert. done returns the follow-up's answer (nil:
// not passed on).
type CarriedHolds interface {
	HoldOn(db string, ttl time.Duration) (field bson.E, done func(answer bson.Raw, err error) func(), ok bool)
	ReleaseOn(db string) (field bson.E, done func(answer bson.Raw, err error) func(), ok bool)
	Then(db string, body bson.D) (field bson.E, done func(answer bson.Raw, err error) bson.Raw, ok bool)
}

// Branch is a branch's working database.
type Branch struct {
	Repo    *wal.Repo
	DB      *mongo.Database
	Project string
	Name    string
	TL      string
	// Notice receives one-line notices for the user (rebuilds).
	Notice func(string)
	// ScanReads is set when the engine is FerretDB (the embedded engine
	// or a FerretDB server): it scans a whole collection for any filter
	// but an _id equality, and stores a document exactly as sent unless
	// storedAsSent says otherwise, so an insert needs no read-back.
	ScanReads bool
	// Scratch, when set (the embedded engine), is where an update of many
	// documents is evaluated (see bulk.go); else a scratch database of
	// the working database's own deployment.
	Scratch *store.Scratch
	// Protocol runs writes and guards reads.
	Protocol Protocol
	// Files, when set (the embedded engine), reads the files that hold
	// the working database, so that a check for applications' changes
	// can skip its scan when they are byte for byte what an earlier scan
	// found clean.
	Files DBFiles

	// delta is the fingerprint change of the write in progress: documents
	// it removed and added, XORed in. touched names every key the write
	// may have changed in the database, for repair if it does not commit.
	delta   Sums
	touched []wal.KeyRef
	base    int64
	widen   func(ctx context.Context, tracked bool) error
	// announce records keys in the write's lease (see announceTouched).
	announce func(ctx context.Context, keys []wal.KeyRef) error
	// cleanAtStart: the write in progress found the database's files
	// clean (knownClean); cleanChecked: it looked, once, before it
	// changed anything.
	cleanAtStart, cleanChecked bool
	// baseSums is the fingerprint of the committed state at the write's
	// base (nil when unknown): what refuseIndexChangesIn compares a
	// collection's indexes with.
	baseSums Sums
	// folded caches, for the write in progress, collections' committed
	// documents at its base by key (refuseUncommitted).
	folded map[string]map[string]bson.Raw
	// seen is the marker as Built just read it, which the next read
	// through the protocol takes as its own first read (TakeMarker).
	seen *Marker
}

// TakeMarker returns the marker Built read, once, or nil. The read
// protocol may take it for a marker it reads itself: its check (no writer
// began the slot after the marker's, once the read is done) holds
// whenever the marker was read, and a marker read earlier only makes a
// retry more likely. That is so because a read function records nothing
// before the protocol accepts its try (Changes records a clean database
// after).
func (w *Branch) TakeMarker() *Marker {
	m := w.seen
	w.seen = nil
	return m
}

// changedIndex records that a write replaced index specification before
// with after on coll (either may be nil), for the marker's fingerprint.
func (w *Branch) changedIndex(coll string, before, after bson.Raw) {
	if w.delta == nil {
		w.delta = Sums{}
	}
	if before != nil {
		w.delta.toggleIndex(coll, before)
	}
	if after != nil {
		w.delta.toggleIndex(coll, after)
	}
}

// changed records that a write replaced before with after in coll (either
// may be nil), for the marker's fingerprint.
func (w *Branch) changed(coll string, before, after bson.Raw) {
	if w.delta == nil {
		w.delta = Sums{}
	}
	if before != nil {
		w.delta.toggle(coll, before)
	}
	if after != nil {
		w.delta.toggle(coll, after)
	}
}

// touch records, before the database is changed, that the write in
// progress may change document id of coll.
func (w *Branch) touch(coll string, id bson.RawValue) {
	w.touched = append(w.touched, wal.KeyRef{Coll: coll, Key: wal.KeyOf(id)})
}

func (w *Branch) touchIndex(coll, name string) {
	raw, _ := bson.Marshal(bson.D{{Key: "n", Value: name}})
	w.touched = append(w.touched, wal.KeyRef{Coll: coll, Key: wal.KeyOf(bson.Raw(raw).Lookup("n")), Index: true})
}

// BeginWrite starts recording a write on the committed state at LSN
// base. widen is called before the write changes keys it did not
// announce in its lease.
// announce is called to record in the lease the keys the write touched
// (see announceTouched).
func (w *Branch) BeginWrite(base int64, widen func(ctx context.Context, tracked bool) error,
	announce func(ctx context.Context, keys []wal.KeyRef) error) {
	w.delta, w.touched, w.base, w.widen, w.announce = nil, nil, base, widen, announce
	w.folded = nil
	// Whether the database is known clean is looked at again by this
	// write, once it holds the branch: nothing carries over from an
	// earlier write on this Branch (found by review).
	w.cleanAtStart, w.cleanChecked = false, false
	w.baseSums = nil
}

// SetBaseSums records the fingerprint of the committed state at the
// write's base, nil when unknown (commit.Protocol.Write, once it holds
// the branch).
func (w *Branch) SetBaseSums(s Sums) { w.baseSums = s }

// announceTouched records in the write's lease, before the write changes
// anything it has touched since its last announcement, every key it has
// touched: if the process then dies, whoever takes the branch over
// repairs those keys instead of rebuilding the whole working database
// (which would drop applications' uncommitted changes elsewhere in it).
// It costs one write to the lease when the lease did not name them
// already; past the lease's limits it widens instead.
func (w *Branch) announceTouched(ctx context.Context) error {
	if w.announce == nil || len(w.touched) == 0 {
		return nil
	}
	return w.announce(ctx, w.touched)
}

// untouch takes keys of coll out of the touched keys: documents a failed
// write found it did not change (another's, already there), which its
// repair must leave as they are.
func (w *Branch) untouch(coll string, keys map[string]bool) {
	kept := w.touched[:0]
	for _, k := range w.touched {
		if k.Index || k.Coll != coll || !keys[string(k.Key)] {
			kept = append(kept, k)
		}
	}
	w.touched = kept
}

// EndWrite forgets what the write recorded to repair a failure (the keys
// it touched, its fingerprint change), once it is committed.
func (w *Branch) EndWrite() { w.touched, w.delta = nil, nil }

// Touched names the keys the write in progress may have changed.
func (w *Branch) Touched() []wal.KeyRef { return w.touched }

// NextSums is the fingerprint after the write in progress, given the one
// before it (nil when unknown).
func (w *Branch) NextSums(before Sums) Sums {
	if before == nil {
		return nil
	}
	sums := before.clone()
	for coll := range w.delta {
		cur := sums.get(coll)
		d := w.delta.get(coll)
		for i := range cur {
			cur[i] ^= d[i]
		}
		if cur == (sum{}) {
			delete(sums, coll)
		} else {
			sums[coll] = encodeSum(cur)
		}
	}
	return sums
}

// Open returns the working database of branch b.
func Open(repo *wal.Repo, b *wal.Branch) *Branch {
	return &Branch{
		Repo: repo, Project: b.Project, Name: b.Name, TL: b.Timeline,
		DB:     repo.Client.Database(repo.WorkingDatabase(b)),
		Notice: func(string) {},
	}
}

// Marker returns the database's marker, or nil when it has none.
func (w *Branch) Marker(ctx context.Context) (*Marker, error) {
	var m Marker
	err := w.DB.Collection(MarkerCollection).FindOne(ctx, bson.D{{Key: "_id", Value: markerID}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// AdvanceMarker records that the database reflects slot s (with
// fingerprint sums), unless the marker already names a later slot of the
// same epoch: a late writer never moves the marker back.
func (w *Branch) AdvanceMarker(ctx context.Context, epoch string, s *wal.Slot, sums Sums) error {
	q, m := w.advanced(epoch, s, sums)
	_, err := w.DB.Collection(MarkerCollection).ReplaceOne(ctx, q, m)
	return err
}

// AdvanceMarkerCarrying is AdvanceMarker with field added to its update
// command, for a request riding on it (the release of this process's
// hold: CarriedHolds); it returns the command's answer. Only for argon
// serve, as wal.Repo.InsertLeaseCarrying.
func (w *Branch) AdvanceMarkerCarrying(ctx context.Context, epoch string, s *wal.Slot, sums Sums, field bson.E) (bson.Raw, error) {
	return w.DB.RunCommand(ctx, w.advanceCommand(epoch, s, sums, field), options.RunCmd().SetReadPreference(readpref.Primary())).Raw()
}

// AdvanceMarkerCommand is AdvanceMarker's update as a whole command body,
// naming its database, with the fields of extra added: a follow-up that
// another command carries to argon serve (CarriedHolds).
func (w *Branch) AdvanceMarkerCommand(epoch string, s *wal.Slot, sums Sums, extra ...bson.E) bson.D {
	return append(w.advanceCommand(epoch, s, sums, extra...), bson.E{Key: "$db", Value: w.DB.Name()})
}

func (w *Branch) advanceCommand(epoch string, s *wal.Slot, sums Sums, extra ...bson.E) bson.D {
	q, m := w.advanced(epoch, s, sums)
	cmd := bson.D{{Key: "update", Value: MarkerCollection}, {Key: "updates", Value: bson.A{bson.D{{Key: "q", Value: q}, {Key: "u", Value: m}}}},
		{Key: "ordered", Value: true}}
	return append(cmd, extra...)
}

// advanced is the filter and the marker of AdvanceMarker: the marker of
// epoch at slot s, replacing one of the same epoch below s.
func (w *Branch) advanced(epoch string, s *wal.Slot, sums Sums) (bson.D, Marker) {
	m := Marker{ID: markerID, Meta: w.Repo.DB.Name(), Project: w.Project, Branch: w.Name, TL: w.TL, Slot: s.N, LSN: s.LSN, Token: s.Token, Epoch: epoch, Sums: sums}
	return bson.D{{Key: "_id", Value: markerID}, {Key: "epoch", Value: epoch}, {Key: "slot", Value: bson.D{{Key: "$lt", Value: s.N}}}}, m
}

// Retarget records that the database now holds the state of slot s of
// another timeline, with a new epoch: a fast-forward moved the branch
// there (commit.Protocol.Move), under the lease of the old timeline.
func (w *Branch) Retarget(ctx context.Context, s *wal.Slot, sums Sums) error {
	m := Marker{ID: markerID, Meta: w.Repo.DB.Name(), Project: w.Project, Branch: w.Name, TL: s.TL, Slot: s.N, LSN: s.LSN,
		Token: s.Token, Epoch: newEpoch(), Sums: sums}
	_, err := w.DB.Collection(MarkerCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: markerID}}, m,
		options.Replace().SetUpsert(true))
	return err
}

func newEpoch() string { return bson.NewObjectID().Hex() }

// Rebuild drops the database and materialises the state of slot head from
// the log, with a new epoch. It returns the new marker.
func (w *Branch) Rebuild(ctx context.Context, head *wal.Slot, notice string) (*Marker, error) {
	return w.build(ctx, head, notice, false)
}

// ErrFilled is Build's answer when the database it was to build, found
// empty a moment before, holds a collection: an application wrote to it
// in between, and its work is not argon's to drop.
var ErrFilled = errors.New("an application wrote to the working database while argon was about to build it")

// Build materialises the state of slot head in a database the caller
// found without data (missing, or dropped by an application), like
// Rebuild but without ever dropping: when the database holds a
// collection besides the marker's by the time it is claimed, Build
// returns ErrFilled and has changed nothing in it.
func (w *Branch) Build(ctx context.Context, head *wal.Slot) (*Marker, error) {
	return w.build(ctx, head, "", true)
}

func (w *Branch) build(ctx context.Context, head *wal.Slot, notice string, keep bool) (*Marker, error) {
	if notice != "" {
		w.Notice(notice)
	}
	if w.Files != nil {
		// Recorded clean once the protocol has let go of it (see
		// commit's writer.finish).
		w.Files.Building(w.DB.Name())
	}
	if err := w.own(ctx, keep); err != nil {
		return nil, err
	}
	p := progressFor(ctx, "rebuilding "+w.DB.Name())
	defer p.Done()
	sums, err := materialise(ctx, w.Repo, w.DB, w.TL, head.LSN, "", keep, p)
	if err != nil {
		if keep && isDuplicate(err) {
			// An application wrote a document of the state while it
			// was being built (on a server argon does not stand in
			// front of): the database is the application's as much as
			// argon's now, and is adopted as it is; what the build did
			// not put in yet shows as changes.
			return nil, ErrFilled
		}
		return nil, err
	}
	return w.newMarker(ctx, head, sums)
}

// own leaves the working database empty and claimed by this repo, ready
// to be built:
//   - one that does not exist yet (a first build) is claimed as it is,
//     by the owner record's unique insert, and never dropped: only its
//     owner ever drops a database, so two metadata databases building the
//     same new name at once cannot undo each other (the loser moves on);
//   - one of this repo is dropped whole and claimed again at once (the
//     whole database, not its collections one by one: on the embedded
//     engine a process killed while creating a collection can leave a
//     table the catalog does not list, and the crash suite hit "table
//     already exists" when collections were dropped one by one);
//   - one another metadata database owns is left to it, and the branch
//     gets a new name (rebind).
//
// With keep, it never drops: a database holding a collection besides the
// marker's is ErrFilled, and one holding the marker's alone is claimed as
// it is.
func (w *Branch) own(ctx context.Context, keep bool) error {
	for try := 0; try < 4; try++ {
		names, err := w.DB.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return err
		}
		if keep {
			for _, n := range names {
				if n != MarkerCollection {
					return ErrFilled
				}
			}
		}
		if len(names) > 0 && !keep {
			if err := w.checkOwned(ctx); errors.As(err, new(*ForeignError)) {
				if err := w.rebind(ctx, err); err != nil {
					return err
				}
				continue
			} else if err != nil {
				return err
			}
			if err := w.DB.Drop(ctx); err != nil {
				return fmt.Errorf("drop working database %s: %w", w.DB.Name(), err)
			}
		}
		err = w.claim(ctx)
		if errors.As(err, new(*ForeignError)) {
			// Claimed by another metadata database first, or while
			// this repo's was dropped: it is theirs; move on.
			if err := w.rebind(ctx, err); err != nil {
				return err
			}
			continue
		}
		return err
	}
	return fmt.Errorf("branch %s: no working database name could be claimed", w.Name)
}

// claim makes sure the database's owner record names this metadata
// database, writing it when it is missing (a database from before owner
// records, or one an application dropped).
func (w *Branch) claim(ctx context.Context) error {
	ok, err := w.Repo.ClaimOwner(ctx, w.DB.Name(), w.Project)
	if err != nil {
		return err
	}
	if !ok {
		return w.foreign(ctx)
	}
	return nil
}

// foreign is the error for a working database another metadata database
// owns.
func (w *Branch) foreign(ctx context.Context) error {
	o, _ := w.Repo.DBOwner(ctx, w.DB.Name())
	if o != nil {
		return &ForeignError{Msg: fmt.Sprintf("database %s belongs to project %s of metadata database %s: argon will not change it for branch %s", w.DB.Name(), o.Project, o.Meta, w.Name)}
	}
	return &ForeignError{Msg: fmt.Sprintf("database %s holds a working database of another metadata database: argon will not change it for branch %s", w.DB.Name(), w.Name)}
}

// ForeignError reports a working database name another metadata database
// owns (it claimed the name while the database was gone, or an older argon
// let both use it).
type ForeignError struct{ Msg string }

func (e *ForeignError) Error() string { return e.Msg }

// rebind gives the branch a working database of a new name, reserved and
// claimed like a new branch's, when another metadata database owns the one
// it had: that one is left to its owner, and the branch's state is rebuilt
// from its own log in the new one.
func (w *Branch) rebind(ctx context.Context, cause error) error {
	old := w.DB.Name()
	name, err := w.Repo.RebindDB(ctx, w.Project, w.Name, old)
	if err != nil {
		return fmt.Errorf("%v; reserving a new name failed: %w", cause, err)
	}
	w.DB = w.DB.Client().Database(name)
	w.Notice(fmt.Sprintf("the working database %s of branch %s belongs to another metadata database now; the branch uses %s, rebuilt from the log", old, w.Name, name))
	return nil
}

// newMarker gives the database a marker at slot head, with a new epoch and
// the fingerprint of state st, and records that argon built it.
func (w *Branch) newMarker(ctx context.Context, head *wal.Slot, sums Sums) (*Marker, error) {
	m := &Marker{ID: markerID, Meta: w.Repo.DB.Name(), Project: w.Project, Branch: w.Name, TL: w.TL, Slot: head.N, LSN: head.LSN,
		Token: head.Token, Epoch: newEpoch(), Sums: sums}
	if _, err := w.DB.Collection(MarkerCollection).InsertOne(ctx, m); err != nil {
		return nil, err
	}
	_, err := w.Repo.DB.Collection(workdbsCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: w.DB.Name()}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "project", Value: w.Project}, {Key: "built", Value: true}}}},
		options.UpdateOne().SetUpsert(true))
	return m, err
}

// HasData reports whether the database holds any collection besides the
// marker's.
func (w *Branch) HasData(ctx context.Context) (bool, error) {
	names, err := w.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if n != MarkerCollection {
			return true, nil
		}
	}
	return false, nil
}

// Adopt gives a database that lost its marker while holding data (an
// application dropped and re-created it) a marker at slot head, without
// touching the data: what it holds then shows as uncommitted changes
// against the committed state, which the new marker's fingerprint is
// computed from (a fold of the log).
func (w *Branch) Adopt(ctx context.Context, head *wal.Slot) (*Marker, error) {
	if err := w.claim(ctx); err != nil {
		return nil, err
	}
	st, err := w.Repo.Fold(ctx, w.TL, head.LSN, "")
	if err != nil {
		return nil, err
	}
	return w.newMarker(ctx, head, stateSums(st))
}

// FillIn is Adopt for a database argon never built, which an
// application wrote to first (it took the name from argon status before
// argon connect built it, say): the branch's committed state at slot head
// is put around what it holds. Every committed document whose _id is not
// there is inserted, and every committed index whose name is not there is
// created; what the application wrote stays as it is and shows as its
// uncommitted changes (an added or a changed document), where Adopt would
// show every committed document deleted. Killed part way, it is done
// again by the next holder: it inserts only what is missing.
func (w *Branch) FillIn(ctx context.Context, head *wal.Slot) (*Marker, error) {
	if err := w.claim(ctx); err != nil {
		return nil, err
	}
	names, err := w.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	present := map[string]map[string]bool{}
	for _, n := range names {
		if n == MarkerCollection {
			continue
		}
		keys := map[string]bool{}
		cur, err := w.DB.Collection(n).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, err
		}
		for cur.Next(ctx) {
			keys[string(wal.KeyOf(cur.Current.Lookup("_id")))] = true
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, err
		}
		present[n] = keys
	}
	sums := Sums{}
	var batch []bson.Raw
	batchColl := ""
	// A committed document the server refuses (an application's document
	// holds its _id by value, or a unique key) is left out: what the
	// database holds then shows as changes against the committed state,
	// and restore gives that back. Failing here instead left the branch
	// failing every command, restore included (review36).
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		c := w.DB.Collection(batchColl)
		err := insertBatches(ctx, w.Repo, c, batch, nil)
		if err != nil && serverRefused(err) {
			err = nil
			for _, d := range batch {
				if _, ierr := c.InsertOne(ctx, d); ierr != nil && !serverRefused(ierr) {
					err = ierr
					break
				}
			}
		}
		batch = nil
		return err
	}
	specs := map[string][]bson.Raw{}
	var colls []string
	if _, err := w.Repo.FoldEach(ctx, w.TL, head.LSN, "", wal.StateSink{
		Doc: func(coll string, doc bson.Raw) error {
			sums.toggle(coll, doc)
			if present[coll][string(wal.KeyOf(doc.Lookup("_id")))] {
				return nil
			}
			if coll != batchColl || len(batch) >= batchSize {
				if err := flush(); err != nil {
					return err
				}
				batchColl = coll
			}
			batch = append(batch, append(bson.Raw(nil), doc...))
			return nil
		},
		Index: func(coll string, spec bson.Raw) error {
			sums.toggleIndex(coll, spec)
			if _, ok := specs[coll]; !ok {
				colls = append(colls, coll)
			}
			specs[coll] = append(specs[coll], append(bson.Raw(nil), spec...))
			return nil
		},
	}); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for _, coll := range colls {
		have, err := listIndexes(ctx, w.DB, coll)
		if err != nil {
			return nil, err
		}
		for _, spec := range specs[coll] {
			if findSpec(have, spec.Lookup("name").StringValue()) != nil {
				continue // the application's, under that name, stays
			}
			// Refused (the application's index on the same keys under
			// another name, documents breaking a unique one): it shows as
			// a change, as above.
			if err := createFromSpec(ctx, w.DB, coll, spec); err != nil && !serverRefused(err) {
				return nil, err
			}
		}
	}
	return w.newMarker(ctx, head, sums)
}

// serverRefused reports whether err is the server's answer refusing a
// command or a write (not a lost connection or a cancelled context).
func serverRefused(err error) bool {
	var ce mongo.CommandError
	var we mongo.WriteException
	var bwe mongo.BulkWriteException
	return errors.As(err, &ce) || errors.As(err, &we) || errors.As(err, &bwe)
}

// Known reports whether argon built this working database before (so a
// missing marker means it was dropped by hand).
func (w *Branch) Known(ctx context.Context) bool {
	n, err := w.Repo.DB.Collection(workdbsCollection).CountDocuments(ctx,
		bson.D{{Key: "_id", Value: w.DB.Name()}, {Key: "built", Value: true}})
	return err == nil && n > 0
}

// checkOwned refuses to let argon drop a database it did not create and
// record for this project: one recorded for another project, or one that
// holds data with neither a record nor this branch's marker (a database
// that only happens to have the name).
func (w *Branch) checkOwned(ctx context.Context) error {
	// What the database itself says comes first: this metadata
	// database's reservation cannot see another metadata database that
	// derived the same name.
	if other, err := w.ownedElsewhere(ctx); err != nil {
		return err
	} else if other {
		return w.foreign(ctx)
	}
	var rec struct {
		Project string `bson:"project"`
	}
	err := w.Repo.DB.Collection(workdbsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: w.DB.Name()}}).Decode(&rec)
	switch {
	case err == nil && (rec.Project == "" || rec.Project == w.Project):
		return nil
	case err == nil:
		return fmt.Errorf("database %s is recorded as a working database of project %s: argon will not drop it for project %s", w.DB.Name(), rec.Project, w.Project)
	case !errors.Is(err, mongo.ErrNoDocuments):
		return err
	}
	if m, merr := w.Marker(ctx); merr == nil && m != nil && m.Project == w.Project {
		return nil // built by argon for this project before names were recorded
	}
	has, err := w.HasData(ctx)
	if err != nil {
		return err
	}
	if has {
		return fmt.Errorf("database %s holds data that argon did not record as a working database of project %s: argon will not drop it", w.DB.Name(), w.Project)
	}
	return nil
}

// ownedElsewhere reports whether the records inside the database say it
// belongs to another metadata database: its owner record, or, in a
// database from before owner records, a marker naming a timeline this
// metadata database does not have.
func (w *Branch) ownedElsewhere(ctx context.Context) (bool, error) {
	o, err := w.Repo.DBOwner(ctx, w.DB.Name())
	if err != nil || o != nil {
		return o != nil && o.Meta != w.Repo.DB.Name(), err
	}
	m, err := w.Marker(ctx)
	if err != nil || m == nil {
		return false, err
	}
	ours, err := w.Repo.OwnsDB(ctx, w.DB.Name())
	return !ours, err
}

// workdbsCollection, in the metadata database, holds the reservation of
// every working database name (wal) and whether argon has built it, so
// that one dropped by hand is noticed.
const workdbsCollection = "workdbs"

// Repair rewrites the given keys to their committed state at LSN lsn,
// read from the log: documents the log holds are put back as it holds
// them, others are deleted; indexes likewise. It is how a write that did
// not commit is taken out of the database: whatever the server did with
// it, the keys end as the log says, and nothing else is touched.
//
// It goes key by key at any count: only the keys the failed write
// touched are compared with the log and put back, so an application's
// uncommitted changes elsewhere in the collection stay, and a repair cut
// off half way is finished by the next holder (the repair's lease names
// its keys). On FerretDB (ScanReads), where a query by a list of _ids
// scans the collection, the current documents of more than batchSize
// keys are read by one scan of the collection instead of one per
// thousand keys. Until the twenty-third session, past 5,000 keys it
// rebuilt the collection from the log there, losing those changes
// (review31).
func (w *Branch) Repair(ctx context.Context, lsn int64, keys []wal.KeyRef) error {
	byColl := map[string][]wal.KeyRef{}
	for _, k := range keys {
		byColl[k.Coll] = append(byColl[k.Coll], k)
	}
	colls := make([]string, 0, len(byColl))
	for c := range byColl {
		colls = append(colls, c)
	}
	sort.Strings(colls)
	for _, coll := range colls {
		c := w.DB.Collection(coll)
		ks := byColl[coll]
		// The committed versions of the keys alone, from the log's
		// newest entry of each (not a fold of the collection: a failed
		// insert of ten documents into 100,000 took 2.6 s folding them).
		docs, specs, err := w.committedOf(ctx, lsn, coll, ks)
		if err != nil {
			return err
		}
		// Indexes the log does not hold go first and missing ones are
		// built last; the documents in between are all taken out, then
		// the committed ones put back: putting one back while another
		// touched document still holds its unique key would fail.
		have, err := listIndexes(ctx, w.DB, coll)
		if err != nil {
			return err
		}
		var create []bson.Raw
		var ids []bson.RawValue
		seen := map[string]bool{}
		for _, k := range ks {
			if k.Index {
				name := wal.KeyValue(k.Key).StringValue()
				cur := findSpec(have, name)
				switch want := specs[name]; {
				case want == nil && cur != nil:
					if err := c.Indexes().DropOne(ctx, name); err != nil {
						return err
					}
					have = slices.DeleteFunc(have, func(s bson.Raw) bool { return s.Lookup("name").StringValue() == name })
				case want != nil && cur == nil:
					create = append(create, want)
				case want != nil && cur != nil && string(indexSpec(want)) != string(indexSpec(cur)):
					// Redefined by the failed write: the log's again.
					if err := c.Indexes().DropOne(ctx, name); err != nil {
						return err
					}
					have = slices.DeleteFunc(have, func(s bson.Raw) bool { return s.Lookup("name").StringValue() == name })
					create = append(create, want)
				}
				continue
			}
			if seen[string(k.Key)] {
				continue
			}
			seen[string(k.Key)] = true
			ids = append(ids, wal.KeyValue(k.Key))
		}
		// Documents already as the log holds them are left in place (a
		// write the server refused changed nothing). A string or
		// ObjectId _id the log does not hold is deleted without a look
		// (no other _id equals it by value, and deleting nothing is
		// nothing): a failed insert's own documents are not read.
		var fix, look []bson.RawValue
		for _, id := range ids {
			if docs[string(wal.KeyOf(id))] == nil && (id.Type == bson.TypeString || id.Type == bson.TypeObjectID) {
				fix = append(fix, id)
			} else {
				look = append(look, id)
			}
		}
		now, err := w.readKeys(ctx, c, look)
		if err != nil {
			return err
		}
		var fixPut []bson.Raw
		for _, id := range look {
			k := string(wal.KeyOf(id))
			want, have := docs[k], now[k]
			if bytes.Equal(want, have) {
				continue
			}
			if have != nil {
				fix = append(fix, id)
			}
			if want != nil {
				fixPut = append(fixPut, want)
			}
		}
		if len(fix) > 0 {
			if _, err := w.deleteIDs(ctx, c, fix); err != nil {
				return err
			}
		}
		if err := insertBatches(ctx, w.Repo, c, fixPut, nil); err != nil {
			return err
		}
		for _, spec := range create {
			if err := createFromSpec(ctx, w.DB, coll, spec); err != nil {
				return err
			}
		}
	}
	return nil
}

const batchSize = 1000

// committedOf returns the committed versions, at LSN lsn, of the keys ks
// of coll: documents by key (wal.KeyOf of the _id) and index
// specifications by name; a key the log holds no version of at lsn is
// absent.
func (w *Branch) committedOf(ctx context.Context, lsn int64, coll string, ks []wal.KeyRef) (map[string]bson.Raw, map[string]bson.Raw, error) {
	var docKeys, idxKeys [][]byte
	for _, k := range ks {
		if k.Index {
			idxKeys = append(idxKeys, k.Key)
		} else {
			docKeys = append(docKeys, k.Key)
		}
	}
	docs, specs := map[string]bson.Raw{}, map[string]bson.Raw{}
	latest, _, err := w.Repo.LatestAtOrBelow(ctx, w.TL, lsn, coll, docKeys, false)
	if err != nil {
		return nil, nil, err
	}
	for k, e := range latest {
		if e.Op == wal.OpPut {
			docs[k] = e.Doc
		}
	}
	latest, _, err = w.Repo.LatestAtOrBelow(ctx, w.TL, lsn, coll, idxKeys, true)
	if err != nil {
		return nil, nil, err
	}
	for k, e := range latest {
		if e.Op == wal.OpIndex {
			specs[wal.KeyValue([]byte(k)).StringValue()] = e.Doc
		}
	}
	return docs, specs, nil
}

// readKeys returns the documents of c whose _id is one of ids, by key
// (wal.KeyOf). Where reads by _id are indexed it queries a thousand ids
// at a time. On FerretDB (ScanReads) only a point read of a string or
// ObjectId _id is indexed, and any query by a list of _ids scans the
// collection: there it reads such ids one by one, and when other ids are
// among them, reads the whole collection once and keeps the documents of
// ids. (For a failed insert, which put its documents in the collection,
// point reads cost at most a few times one scan, and far less in a large
// collection: BENCHMARKS, twenty-third session.)
func (w *Branch) readKeys(ctx context.Context, c *mongo.Collection, ids []bson.RawValue) (map[string]bson.Raw, error) {
	now := map[string]bson.Raw{}
	read := func(filter bson.D, want map[string]bool) error {
		cur, err := c.Find(ctx, filter)
		if err != nil {
			return err
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			k := string(wal.KeyOf(cur.Current.Lookup("_id")))
			if want == nil || want[k] {
				now[k] = append(bson.Raw(nil), cur.Current...)
			}
		}
		return cur.Err()
	}
	if !w.ScanReads {
		for start := 0; start < len(ids); start += batchSize {
			if err := read(idsFilter(ids[start:min(start+batchSize, len(ids))]), nil); err != nil {
				return nil, err
			}
		}
		return now, nil
	}
	point := true
	for _, id := range ids {
		if id.Type != bson.TypeString && id.Type != bson.TypeObjectID {
			point = false
			break
		}
	}
	if point || len(ids) == 1 {
		for _, id := range ids {
			if err := read(idsFilter([]bson.RawValue{id}), nil); err != nil {
				return nil, err
			}
		}
		return now, nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[string(wal.KeyOf(id))] = true
	}
	return now, read(bson.D{}, want)
}

// insertBatches inserts docs into c in order, batchSize at a time, and at
// most rawInsertBytes of them in one command but for a larger document,
// which goes alone. On FerretDB each batch is one plain insert command
// (rawInsert).
func insertBatches(ctx context.Context, r *wal.Repo, c *mongo.Collection, docs []bson.Raw, p *wal.Step) error {
	for len(docs) > 0 {
		n, size := 0, 0
		for n < len(docs) && n < batchSize && (n == 0 || size+len(docs[n]) <= rawInsertBytes) {
			size += len(docs[n])
			n++
		}
		var err error
		switch {
		case size > rawInsertBytes: // one document, too large to share a command
			_, err = c.InsertOne(ctx, docs[0])
		case r.FerretDB:
			err = rawInsert(ctx, c, docs[:n])
		default:
			batch := make([]any, n)
			for i := range batch {
				batch[i] = docs[i]
			}
			_, err = c.InsertMany(ctx, batch)
		}
		if err != nil {
			return fmt.Errorf("materialise %s: %w", c.Name(), err)
		}
		docs = docs[n:]
		if p != nil {
			p.Add(n)
		}
	}
	return nil
}

// materialise streams the state of (tl, lsn) (only coll, when not empty)
// into db, which holds none of it yet: documents by batches as they come
// (wal.FoldEach: from the nearest image, holding only the entries above
// it), then the indexes. It returns the state's fingerprint. When an image
// written before chunks had checksums of their own turns out damaged
// part-way, the collections written so far are dropped and the stream
// starts again from the next image; with keep (an application may write
// to db meanwhile, see Build), nothing is dropped: such an image is not
// streamed but folded whole.
func materialise(ctx context.Context, r *wal.Repo, db *mongo.Database, tl string, lsn int64, coll string, keep bool, p *wal.Step) (Sums, error) {
	sums := Sums{}
	var batch []bson.Raw
	size, cur := 0, ""
	written := map[string]bool{}
	specs := map[string][]bson.Raw{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		written[cur] = true
		err := insertBatches(ctx, r, db.Collection(cur), batch, p)
		batch, size = batch[:0], 0
		return err
	}
	sink := wal.StateSink{
		Doc: func(c string, d bson.Raw) error {
			if c != cur || len(batch) >= batchSize || size+len(d) > rawInsertBytes {
				if err := flush(); err != nil {
					return err
				}
				cur = c
			}
			batch = append(batch, d)
			size += len(d)
			sums.toggle(c, d)
			return nil
		},
		Index: func(c string, spec bson.Raw) error {
			specs[c] = append(specs[c], spec)
			sums.toggleIndex(c, spec)
			return nil
		},
		Reset: func() error {
			batch, size, cur = nil, 0, ""
			sums, specs = Sums{}, map[string][]bson.Raw{}
			for c := range written {
				if err := db.Collection(c).Drop(ctx); err != nil {
					return err
				}
			}
			written = map[string]bool{}
			return nil
		},
	}
	if keep {
		sink.Reset = nil
	}
	_, err := r.FoldEach(ctx, tl, lsn, coll, sink)
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	colls := make([]string, 0, len(specs))
	for c := range specs {
		colls = append(colls, c)
	}
	sort.Strings(colls)
	for _, c := range colls {
		for _, spec := range specs[c] {
			if err := createFromSpec(ctx, db, c, spec); err != nil {
				return nil, fmt.Errorf("create index on %s: %w", c, err)
			}
		}
	}
	return sums, nil
}

// Checkout makes the working database exist and reflect the committed
// head, and returns the LSN it reflects.
func (w *Branch) Checkout(ctx context.Context) (int64, error) {
	var lsn int64
	err := w.Protocol.Read(ctx, w, func(m *Marker) error {
		lsn = m.LSN
		return nil
	})
	return lsn, err
}

// Drop removes the working database. It is a cache: nothing committed is
// lost. Its name stays reserved for the branch.
func (w *Branch) Drop(ctx context.Context) error {
	if err := w.checkOwned(ctx); err != nil {
		return err
	}
	if _, err := w.Repo.DB.Collection(workdbsCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: w.DB.Name()}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "built", Value: false}}}}); err != nil {
		return err
	}
	return w.DB.Drop(ctx)
}

// Verify compares the database with the committed state at lsn,
// documents and indexes, ignoring nothing: it returns a description of
// each difference (fsck). Applications' uncommitted changes show here
// too. It compares as status does (one scan of the database, the state
// streamed from the log against the scan's keys and hashes), holding
// neither the state nor the database.
func (w *Branch) Verify(ctx context.Context, lsn int64) ([]string, error) {
	changes, err := w.diff(ctx, lsn)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range changes {
		out = append(out, fmt.Sprintf("%s %s _id %s", c.Coll, c.Kind, FormatValue(c.ID)))
	}
	return out, nil
}

// Touch records that the write in progress changes key k.
func (w *Branch) Touch(k wal.KeyRef) { w.touched = append(w.touched, k) }

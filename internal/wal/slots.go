package wal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// Slot kinds. Slot 0 of every timeline is its root (the fork point); every
// later slot is a commit, or a void that fills the number without changing
// the state (a write that was abandoned or taken over). A moved slot closes
// the timeline for good: its branch now lives on timeline To (a
// fast-forward moved it there), and nothing is ever written after it.
const (
	SlotRoot   = "root"
	SlotCommit = "commit"
	SlotVoid   = "void"
	SlotMoved  = "moved"
)

// MoveAction is how the reflog names the move a moved slot made: a
// "reset" (its message says so) or a "fast-forward".
func MoveAction(s *Slot) string {
	if strings.HasPrefix(s.Message, ResetMessagePrefix) {
		return "reset"
	}
	return "fast-forward"
}

// ResetMessagePrefix starts the message of the moved slot of a reset.
const ResetMessagePrefix = "reset to "

// Slot is one numbered step of a timeline's head: slot n+1 is inserted, by
// a unique insert, only after slot n exists, so a timeline's slots are
// dense and the newest one is the committed head. A slot is never changed
// or deleted once written: that is what makes a commit final.
//
// A commit slot names the LSNs it made visible, (Base, LSN], and the token
// of the writer whose entries they are. Small commits carry their entries
// inline, so that a commit is a single insert; larger ones leave them in
// the entries collection under the same token (Spilled).
type Slot struct {
	ID      string      `bson:"_id"`
	TL      string      `bson:"tl"`
	N       int64       `bson:"n"`
	Kind    string      `bson:"kind"`
	Base    int64       `bson:"base"`
	LSN     int64       `bson:"lsn"`
	Token   string      `bson:"token"`
	Time    time.Time   `bson:"ts"`
	Message string      `bson:"message,omitempty"`
	Author  string      `bson:"author,omitempty"`
	MergeOf string      `bson:"merge_of,omitempty"`
	Stats   []CollStats `bson:"stats,omitempty"`
	Entries []SlotEntry `bson:"entries,omitempty"`
	Spilled bool        `bson:"spilled,omitempty"`
	// Keyed is how many key records (collChunkKeys) the writer of a
	// spilled commit wrote for its chunks, one a chunk; 0 when it wrote
	// none (an engine that does not Scan, an older argon).
	Keyed int `bson:"keyed,omitempty"`
	// Dirty marks a void written by a writer that took over from one that
	// stopped answering: the working database may hold some of the
	// abandoned write's changes, and is repaired from the log before
	// anyone uses it. Keys names what the abandoned writer announced it
	// would touch, when it did (KeysKnown); otherwise the database is
	// rebuilt. Taker is set when the void fenced out another writer
	// (rather than being a failed writer's own).
	Dirty     bool     `bson:"dirty,omitempty"`
	KeysKnown bool     `bson:"known,omitempty"`
	Keys      []KeyRef `bson:"keys,omitempty"`
	// Pages, when not 0, is how many key pages of record PagesOf (this
	// slot's own _id when empty: the lease's pages) name those keys
	// instead (see collKeyPages); KeysKnown is then false.
	Pages   int    `bson:"pages,omitempty"`
	PagesOf string `bson:"pages_of,omitempty"`
	Taker   bool   `bson:"taker,omitempty"`
	// Closed marks the clean void with which branch delete ends its
	// timeline (closeTimeline): always the last slot, it takes no
	// commit after it.
	Closed bool `bson:"closed,omitempty"`
	// To is the timeline a moved slot hands its branch to.
	To string `bson:"to,omitempty"`
}

// PagesID is the record whose key pages s names (see Pages).
func (s *Slot) PagesID() string {
	if s.PagesOf != "" {
		return s.PagesOf
	}
	return s.ID
}

// SlotEntry is an entry kept inside its commit slot: its LSN is the
// slot's Base plus its position plus one.
type SlotEntry struct {
	Op   string `bson:"op"`
	Coll string `bson:"coll"`
	Key  []byte `bson:"kb"`
	Doc  []byte `bson:"doc,omitempty"`
}

// KeyRef names one document (or index, for control entries) of a
// collection by its exact key bytes.
type KeyRef struct {
	Coll string `bson:"c"`
	Key  []byte `bson:"k"`
	// Index is set when Key names an index, not a document.
	Index bool `bson:"i,omitempty"`
}

// Commit is a commit slot as history shows it: LSNs From..To of TL.
type Commit struct {
	TL      string
	N       int64
	From    int64
	To      int64
	Time    time.Time
	Message string
	Author  string
	MergeOf string
	Stats   []CollStats
	Token   string
}

// Commit returns the commit view of a commit slot.
func (s *Slot) Commit() *Commit {
	return &Commit{TL: s.TL, N: s.N, From: s.Base + 1, To: s.LSN, Time: s.Time, Message: s.Message,
		Author: s.Author, MergeOf: s.MergeOf, Stats: s.Stats, Token: s.Token}
}

// CollStats counts one commit's entries in one collection.
type CollStats struct {
	Coll string `bson:"coll" json:"collection"`
	Puts int    `bson:"puts" json:"puts"`
	Dels int    `bson:"dels" json:"deletes"`
	// Indexes counts index creations and drops.
	Indexes int `bson:"idx,omitempty" json:"indexes,omitempty"`
}

// Stats counts entries per collection, sorted by collection.
func Stats(entries []Entry) []CollStats {
	m := map[string]*CollStats{}
	AddStats(m, entries)
	return SortedStats(m)
}

// AddStats adds entries to per-collection counts.
func AddStats(m map[string]*CollStats, entries []Entry) {
	for i := range entries {
		cs := m[entries[i].Coll]
		if cs == nil {
			cs = &CollStats{Coll: entries[i].Coll}
			m[entries[i].Coll] = cs
		}
		switch entries[i].Op {
		case OpDel:
			cs.Dels++
		case OpPut:
			cs.Puts++
		default:
			cs.Indexes++
		}
	}
}

// SortedStats lists counts by collection.
func SortedStats(m map[string]*CollStats) []CollStats {
	out := make([]CollStats, 0, len(m))
	for _, cs := range m {
		out = append(out, *cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Coll < out[j].Coll })
	return out
}

func slotID(tl string, n int64) string { return fmt.Sprintf("%s:%012d", tl, n) }

// ReadSlot returns slot n of timeline tl without its inline entries, or
// nil when it does not exist. It is one point read by _id.
func (r *Repo) ReadSlot(ctx context.Context, tl string, n int64) (*Slot, error) {
	return r.readSlot(ctx, tl, n, false)
}

// ReadSlotEntries is ReadSlot with the slot's inline entries.
func (r *Repo) ReadSlotEntries(ctx context.Context, tl string, n int64) (*Slot, error) {
	return r.readSlot(ctx, tl, n, true)
}

var noEntries = options.FindOne().SetProjection(bson.D{{Key: "entries", Value: 0}})

func (r *Repo) readSlot(ctx context.Context, tl string, n int64, entries bool) (*Slot, error) {
	var s Slot
	opts := noEntries
	if entries {
		opts = options.FindOne()
	}
	err := r.DB.Collection(collSlots).FindOne(ctx, bson.D{{Key: "_id", Value: slotID(tl, n)}}, opts).Decode(&s)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// maxSlotWindow is the most slots readSlots reads at once.
const maxSlotWindow = 64

// readSlots returns the slots lo..hi of timeline tl that exist, by number
// (with their inline entries when entries is set). Where lookups by _id
// are indexed, that is one query by a list of _ids; on an engine that
// evaluates such a list by scanning the collection (Scans), it is point
// reads by _id, a few at a time, whose cost does not grow with the
// collection as a scan's would.
func (r *Repo) readSlots(ctx context.Context, tl string, lo, hi int64, entries bool) (map[int64]*Slot, error) {
	out := make(map[int64]*Slot, hi-lo+1)
	if lo == hi || r.Scans {
		slots := make([]*Slot, hi-lo+1)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for n := lo; n <= hi; n++ {
			g.Go(func() (err error) {
				slots[n-lo], err = r.readSlot(gctx, tl, n, entries)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, s := range slots {
			if s != nil {
				out[s.N] = s
			}
		}
		return out, nil
	}
	ids := make([]string, 0, hi-lo+1)
	for n := lo; n <= hi; n++ {
		ids = append(ids, slotID(tl, n))
	}
	opts := options.Find()
	if !entries {
		opts.SetProjection(bson.D{{Key: "entries", Value: 0}})
	}
	cur, err := r.DB.Collection(collSlots).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, opts)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var s Slot
		if err := cur.Decode(&s); err != nil {
			return nil, err
		}
		if s.TL == tl && s.N >= lo && s.N <= hi {
			out[s.N] = &s
		}
	}
	return out, cur.Err()
}

// InsertSlot writes slot s. It fails with a duplicate-key error when the
// number is taken: the caller lost the race for it.
func (r *Repo) InsertSlot(ctx context.Context, s *Slot) error {
	s.ID = slotID(s.TL, s.N)
	_, err := r.DB.Collection(collSlots).InsertOne(ctx, s)
	return err
}

// IsDuplicate reports a unique-index violation.
func IsDuplicate(err error) bool { return isDup(err) }

// hintEvery is how many slots a timeline grows between updates of its
// head hint; a reader without a better hint probes at most about this many
// slots forward.
const hintEvery = 4

// HeadSlot returns the newest slot of timeline tl: its committed head.
// from, when not nil, is a slot of tl known to exist (a working database's
// marker names one), and the search starts there; otherwise it starts at
// the hint kept on the timeline. Slots are dense and never deleted, so the
// head is found by point reads forward: one read when the hint is current.
func (r *Repo) HeadSlot(ctx context.Context, tl string, from *Slot) (*Slot, error) {
	if from != nil {
		return r.headAfter(ctx, tl, from, false)
	}
	t, err := r.Timeline(ctx, tl)
	if err != nil {
		return nil, err
	}
	return r.headOf(ctx, t)
}

// headOf is HeadSlot from the hint of timeline t as just read; seen is
// given every slot read.
func (r *Repo) headOf(ctx context.Context, t *Timeline, seen ...func(*Slot)) (*Slot, error) {
	cur, err := r.ReadSlot(ctx, t.ID, t.Hint)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("log is inconsistent: timeline %s has no slot %d", t.ID, t.Hint)
	}
	return r.headAfter(ctx, t.ID, cur, true, seen...)
}

// HeadPath is HeadSlot from the timeline's hint, with the slots the search
// read on its way (the head among them), by number: slots never change
// once written, so a walk down the log need not read them again.
func (r *Repo) HeadPath(ctx context.Context, tl string) (*Slot, map[int64]*Slot, error) {
	t, err := r.Timeline(ctx, tl)
	if err != nil {
		return nil, nil, err
	}
	path := map[int64]*Slot{}
	head, err := r.headOf(ctx, t, func(s *Slot) { path[s.N] = s })
	return head, path, err
}

// headAfter follows tl's slots from cur to the last; fromHint: cur is
// the timeline's hint, which it advances when it is far behind. seen, when
// not nil, is given every slot read.
func (r *Repo) headAfter(ctx context.Context, tl string, cur *Slot, fromHint bool, seen ...func(*Slot)) (*Slot, error) {
	start := cur.N
	for _, f := range seen {
		f(cur)
	}
	for {
		next, err := r.ReadSlot(ctx, tl, cur.N+1)
		if err != nil {
			return nil, err
		}
		if next == nil {
			break
		}
		cur = next
		for _, f := range seen {
			f(cur)
		}
	}
	if cur.N-start >= hintEvery && fromHint {
		r.AdvanceHint(ctx, tl, cur.N)
	}
	return cur, nil
}

// HeadOf is Head for a timeline already read (its hint spares a read).
func (r *Repo) HeadOf(ctx context.Context, t *Timeline) (Head, error) {
	start, err := r.ReadSlot(ctx, t.ID, t.Hint)
	if err != nil {
		return Head{}, err
	}
	if start == nil {
		return Head{}, fmt.Errorf("log is inconsistent: timeline %s has no slot %d", t.ID, t.Hint)
	}
	s, err := r.HeadSlot(ctx, t.ID, start)
	if err != nil {
		return Head{}, err
	}
	if s.N-start.N >= hintEvery {
		r.AdvanceHint(ctx, t.ID, s.N)
	}
	return Head{LSN: s.LSN, Slot: s}, nil
}

// headScanMin is how many timelines make HeadsOf try to read their heads
// from one scan of the slots instead of point reads, on an engine that
// scans (Scans). There each point read is a round trip and a scan of slots
// in SQL, two per timeline; one decoded scan of slots costs less from about
// this many timelines on while the slots are few (measured: 100 branches,
// 190 ms of point reads against 15 ms for a scan of their 120 slots).
const headScanMin = 8

// headScanSlots bounds that scan: it reads at most this many slots per
// timeline asked for. A slot costs the scan about 125 µs to decode and a
// head about 1.9 ms of point reads, so past about 15 slots a timeline the
// point reads cost less; the scan stops at 8, so that a long history costs
// the list at most about half again its point reads, and never a read of
// the whole history.
var headScanSlots = 8 // a variable for tests

// HeadsByScan says whether HeadsOf tries one scan of the slots for the
// heads of n timelines; otherwise it starts from each timeline's hint.
func (r *Repo) HeadsByScan(n int) bool { return r.Scans && n >= headScanMin }

// HeadsOf returns the committed head of each of tls, by timeline id.
// Timelines whose Hint is negative (a branch's copy of its fork point)
// have theirs read when needed. On an engine that scans, from
// headScanMin timelines on, it first reads the first headScanSlots per
// timeline of the slots collection, with no filter so that the engine
// stops there; when that is the whole collection, each head is the
// highest slot of its timeline (slots are dense and never deleted).
// Otherwise, and below headScanMin, it reads each head as HeadOf does,
// several at once: its cost follows the number of timelines, never the
// length of the history.
func (r *Repo) HeadsOf(ctx context.Context, tls []*Timeline) (map[string]Head, error) {
	if r.HeadsByScan(len(tls)) {
		out, err := r.headsByScan(ctx, tls)
		if out != nil || err != nil {
			return out, err
		}
	}
	tls, err := r.withHints(ctx, tls)
	if err != nil {
		return nil, err
	}
	heads := make([]Head, len(tls))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, t := range tls {
		g.Go(func() (err error) {
			heads[i], err = r.HeadOf(gctx, t)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[string]Head, len(tls))
	for i, t := range tls {
		out[t.ID] = heads[i]
	}
	return out, nil
}

// headsByScan reads the heads of tls from one scan of at most
// headScanSlots·len(tls) slots, or returns nil when the collection holds
// more.
func (r *Repo) headsByScan(ctx context.Context, tls []*Timeline) (map[string]Head, error) {
	limit := int64(headScanSlots * len(tls))
	want := make(map[string]bool, len(tls))
	for _, t := range tls {
		want[t.ID] = true
	}
	cur, err := r.DB.Collection(collSlots).Find(ctx, bson.D{}, options.Find().
		SetProjection(bson.D{{Key: "entries", Value: 0}}).SetLimit(limit+1).SetBatchSize(int32(limit+1)))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	out := make(map[string]Head, len(tls))
	var seen int64
	for cur.Next(ctx) {
		if seen++; seen > limit {
			return nil, nil
		}
		s := new(Slot)
		if err := cur.Decode(s); err != nil {
			return nil, err
		}
		if h, ok := out[s.TL]; want[s.TL] && (!ok || s.N > h.Slot.N) {
			out[s.TL] = Head{LSN: s.LSN, Slot: s}
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	for _, t := range tls {
		if _, ok := out[t.ID]; !ok {
			return nil, fmt.Errorf("log is inconsistent: timeline %s has no slots", t.ID)
		}
	}
	return out, nil
}

// withHints returns tls with the hint of every timeline whose hint is not
// known (negative) read from the timelines of its project: one query per
// project.
func (r *Repo) withHints(ctx context.Context, tls []*Timeline) ([]*Timeline, error) {
	var projects []string
	for _, t := range tls {
		if t.Hint < 0 && !slices.Contains(projects, t.Project) {
			projects = append(projects, t.Project)
		}
	}
	if len(projects) == 0 {
		return tls, nil
	}
	hints := map[string]int64{}
	for _, p := range projects {
		all, err := r.Timelines(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, t := range all {
			hints[t.ID] = t.Hint
		}
	}
	out := make([]*Timeline, len(tls))
	for i, t := range tls {
		out[i] = t
		if t.Hint < 0 {
			h, ok := hints[t.ID]
			if !ok {
				return nil, &NotFoundError{Kind: "timeline", Name: t.ID}
			}
			c := *t
			c.Hint = h
			out[i] = &c
		}
	}
	return out, nil
}

// AdvanceHint records that slot n of tl exists. The hint only ever names a
// slot that exists, so a lost or late update costs reads, never
// correctness.
func (r *Repo) AdvanceHint(ctx context.Context, tl string, n int64) {
	_, _ = r.DB.Collection(collTimelines).UpdateOne(ctx, bson.D{{Key: "_id", Value: tl}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "hint", Value: n}}}})
	if r.timelines != nil {
		if t, ok := r.timelines.Load(tl); ok && t.(*Timeline).Hint < n {
			c := *t.(*Timeline)
			c.Hint = n
			r.timelines.Store(tl, &c)
		}
	}
}

// MaybeAdvanceHint advances the hint when slot n is a multiple of
// hintEvery, so that the hint costs one write every few commits.
func (r *Repo) MaybeAdvanceHint(ctx context.Context, tl string, n int64) {
	if n%hintEvery == 0 {
		r.AdvanceHint(ctx, tl, n)
	}
}

// Head is the committed state of a timeline.
type Head struct {
	// LSN is the committed head: entries above it are invisible.
	LSN int64
	// Slot is the newest slot.
	Slot *Slot
}

// Head returns the committed head of timeline tl.
func (r *Repo) Head(ctx context.Context, tl string) (Head, error) {
	s, err := r.HeadSlot(ctx, tl, nil)
	if err != nil {
		return Head{}, err
	}
	return Head{LSN: s.LSN, Slot: s}, nil
}

// TimelineSlots returns the slots of tl whose LSN ranges meet (from, to],
// in slot order: one scan of the slots collection.
func (r *Repo) TimelineSlots(ctx context.Context, tl string, from, to int64) ([]Slot, error) {
	cur, err := r.DB.Collection(collSlots).Find(ctx, bson.D{
		{Key: "tl", Value: tl}, {Key: "kind", Value: SlotCommit},
		{Key: "lsn", Value: bson.D{{Key: "$gt", Value: from}}},
		{Key: "base", Value: bson.D{{Key: "$lt", Value: to}}},
	})
	if err != nil {
		return nil, err
	}
	var out []Slot
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out, nil
}

// LogItem is one commit as seen from a branch: Inherited commits belong to
// an ancestor timeline, below the branch's fork point.
type LogItem struct {
	Commit
	Inherited bool
	// slot is the commit's slot, with its inline entries when the walk
	// asked for them (walkLog's entries).
	slot *Slot
}

// Log returns up to limit commits (all when limit <= 0) reachable from LSN
// at on timeline tl, newest first, walking into ancestors below fork points.
func (r *Repo) Log(ctx context.Context, tl string, at int64, limit int) ([]LogItem, error) {
	return r.LogFrom(ctx, tl, nil, nil, at, limit)
}

// LogFrom is Log from head, tl's head slot as the caller just read it
// with HeadPath, and path, the slots it read on its way: the walk reads
// none of them again.
func (r *Repo) LogFrom(ctx context.Context, tl string, head *Slot, path map[int64]*Slot, at int64, limit int) ([]LogItem, error) {
	var out []LogItem
	err := r.walkLog(ctx, tl, head, path, at, false, limit, func(it LogItem) bool {
		out = append(out, it)
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// WalkLog calls fn for each commit reachable from LSN at on timeline tl,
// newest first, until fn returns false. It reads slots only, by _id,
// walking each timeline's slots down from its head (or, on an ancestor,
// from the slot the child forked at), a window of them at a time (see
// readSlots).
func (r *Repo) WalkLog(ctx context.Context, tl string, at int64, fn func(LogItem) bool) error {
	return r.walkLog(ctx, tl, nil, nil, at, false, 0, fn)
}

// walkLog is WalkLog from head (nil: read it), with path holding slots of
// tl already read (see LogFrom); with entries, each slot is read with its
// inline entries (one read per slot either way). want is how many commits
// the caller asks for (0: not known): the first window of slots is that
// many, and a walk that does not know starts at 2 slots and doubles, so
// it reads at most about twice the slots it uses.
func (r *Repo) walkLog(ctx context.Context, tl string, head *Slot, path map[int64]*Slot, at int64, entries bool, want int, fn func(LogItem) bool) error {
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return err
	}
	if head == nil {
		// From the hint of the timeline just read.
		path = map[int64]*Slot{}
		if head, err = r.headOf(ctx, &anc[0], func(s *Slot) { path[s.N] = s }); err != nil {
			return err
		}
	}
	// A head on an ancestor of tl (a position below an empty commit that
	// tl inherits, see refs.Point's SlotN): the walk starts there.
	start := 0
	for head.TL != "" && head.TL != anc[start].ID {
		if start++; start == len(anc) {
			return fmt.Errorf("timeline %s is not on the ancestry of %s", head.TL, tl)
		}
		path = nil
	}
	n := head.N
	emitted, window := 0, 2
	for i, t := range anc {
		if i < start {
			continue
		}
		if i > start {
			n = anc[i-1].ParentSlot
		}
		var read map[int64]*Slot
		lowest := n + 1 // the lowest slot number of t read so far
		// Down to the timeline's base, and at it: a merge that changed
		// nothing, made as the timeline's first commit, is at its base
		// LSN (found by review23: log, HEAD~1 and the merge base passed
		// over it).
		for ; n > 0 && at >= t.Base; n-- {
			s := path[n]
			if i > 0 || entries || s == nil {
				if n < lowest {
					w := window
					if want > 0 {
						w = max(want-emitted, 1)
					} else {
						window = min(2*window, maxSlotWindow)
					}
					lowest = max(n-int64(min(w, maxSlotWindow))+1, 1)
					if read, err = r.readSlots(ctx, t.ID, lowest, n, entries); err != nil {
						return err
					}
				}
				s = read[n]
			}
			if s == nil {
				return errors.New("log is inconsistent: timeline " + t.ID + " has no slot " + strconv.FormatInt(n, 10))
			}
			empty := s.Kind == SlotCommit && s.LSN == s.Base // a merge that changed nothing
			if s.Kind != SlotCommit || (s.Base >= at && !(empty && s.LSN <= at)) {
				continue
			}
			c := s.Commit()
			if c.To > at {
				// A fork point inside a commit: show the part inherited.
				c.To = at
				c.Stats = nil
			}
			if !fn(LogItem{Commit: *c, Inherited: i > 0, slot: s}) {
				return nil
			}
			emitted++
			at = c.From - 1
		}
	}
	return nil
}

// SlotAt returns the number of the newest slot of tl whose state is at or
// below LSN lsn (walking down from the head), for recording a fork point.
func (r *Repo) SlotAt(ctx context.Context, tl string, head *Slot, lsn int64) (int64, error) {
	for s := head; ; {
		if s.Base < lsn || s.N == 0 || (s.Kind == SlotCommit && s.LSN <= lsn) {
			return s.N, nil
		}
		prev, err := r.ReadSlot(ctx, tl, s.N-1)
		if err != nil {
			return 0, err
		}
		if prev == nil {
			return 0, fmt.Errorf("log is inconsistent: timeline %s has no slot %d", tl, s.N-1)
		}
		s = prev
	}
}

// TimeError reports a time before the history of a branch began.
type TimeError struct {
	Ref   string
	Time  time.Time
	Start time.Time
}

func (e *TimeError) Error() string {
	return fmt.Sprintf("%s is before %s existed (created %s)", e.Time.UTC().Format(time.RFC3339), e.Ref, e.Start.UTC().Format(time.RFC3339))
}

// LSNAt returns the LSN of the state at time t on timeline tl (whose head
// is head). Commit times need not grow along the log (clocks of different
// machines disagree; ARGON_COMMIT_DATE backdates), so a commit's effective
// time is the latest time of it and every commit before it on the branch:
// effective times never go backwards, and the state at t is the newest
// commit whose effective time is at or before t. That is the state just
// before the oldest commit made after t. It is 0 when t is after the
// project was created but before its first commit.
func (r *Repo) LSNAt(ctx context.Context, tl string, head int64, t time.Time, ref string) (int64, error) {
	lsn := head
	err := r.WalkLog(ctx, tl, head, func(it LogItem) bool {
		if it.Time.After(t) {
			lsn = it.From - 1
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if lsn > 0 {
		return lsn, nil
	}
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return 0, err
	}
	root := anc[len(anc)-1]
	if t.Before(root.Created.Truncate(time.Second)) {
		return 0, &TimeError{Ref: ref, Time: t, Start: root.Created}
	}
	return 0, nil
}

// Owner returns the timeline on tl's ancestry that wrote LSN lsn (the root
// for LSN 0): the one whose own range holds it. States are cached under
// their owner, so that a branch and its parent share the views of their
// common history.
func (r *Repo) Owner(ctx context.Context, tl string, lsn int64) (string, error) {
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return "", err
	}
	for _, t := range anc {
		if lsn > t.Base {
			return t.ID, nil
		}
	}
	return anc[len(anc)-1].ID, nil
}

// CommitInfo describes a commit.
type CommitInfo struct {
	Message string
	Author  string
	// MergeOf names the other side of a merge commit.
	MergeOf string
}

func optionsProjection(p bson.D) *options.FindOptionsBuilder {
	return options.Find().SetProjection(p)
}

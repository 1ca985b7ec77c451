package wal

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// Entry operations.
const (
	OpPut = "put"
	OpDel = "del"
	// Control entries version a collection's indexes with its data: the
	// key is the index name, the document its specification as the server
	// reports it.
	OpIndex     = "index"
	OpDropIndex = "dropindex"
)

// Entry is one physical change: the full post-image of a document (put)
// or its deletion (del).
type Entry struct {
	ID   string    `bson:"_id"`
	TL   string    `bson:"tl"`
	LSN  int64     `bson:"lsn"`
	Time time.Time `bson:"-"`
	Op   string    `bson:"op"`
	Coll string    `bson:"coll"`
	// Key is the document's _id, for indexing. KeyBytes is the same value
	// exactly (its BSON type byte, then its bytes): engines may reorder
	// the fields of a nested _id, the bytes never change.
	Key      bson.RawValue `bson:"-"`
	KeyBytes []byte        `bson:"kb"`
	// Doc is the post-image's exact BSON bytes; empty for del.
	Doc   []byte `bson:"doc,omitempty"`
	Token string `bson:"token"`
}

func entryID(tl string, lsn int64, token string) string {
	return fmt.Sprintf("%s:%012d:%s", tl, lsn, token)
}

// KeyOf returns the exact bytes identifying a document's _id.
func KeyOf(id bson.RawValue) []byte {
	b := make([]byte, 0, 1+len(id.Value))
	b = append(b, byte(id.Type))
	return append(b, id.Value...)
}

// KeyValue turns key bytes back into the _id value.
func KeyValue(kb []byte) bson.RawValue {
	return bson.RawValue{Type: bson.Type(kb[0]), Value: kb[1:]}
}

// PutEntry makes a put entry for doc, which must have an _id.
func PutEntry(coll string, doc bson.Raw) (Entry, error) {
	id, err := doc.LookupErr("_id")
	if err != nil {
		return Entry{}, fmt.Errorf("document has no _id")
	}
	return Entry{Op: OpPut, Coll: coll, Key: id, KeyBytes: KeyOf(id), Doc: doc}, nil
}

// IndexEntry makes a control entry creating index spec (which has a name)
// on coll.
func IndexEntry(coll string, spec bson.Raw) (Entry, error) {
	name, err := spec.LookupErr("name")
	if err != nil || name.Type != bson.TypeString {
		return Entry{}, fmt.Errorf("index specification has no name")
	}
	return Entry{Op: OpIndex, Coll: coll, Key: name, KeyBytes: KeyOf(name), Doc: spec}, nil
}

// DropIndexEntry makes a control entry dropping the index called name.
func DropIndexEntry(coll, name string) Entry {
	raw, _ := bson.Marshal(bson.D{{Key: "n", Value: name}})
	v := bson.Raw(raw).Lookup("n")
	return Entry{Op: OpDropIndex, Coll: coll, Key: v, KeyBytes: KeyOf(v)}
}

// DelEntry makes a del entry for the document with _id id.
func DelEntry(coll string, id bson.RawValue) Entry {
	return Entry{Op: OpDel, Coll: coll, Key: id, KeyBytes: KeyOf(id)}
}

// Segment is the part of one timeline's own entries that a state needs:
// LSNs in (From, To].
type Segment struct {
	TL       string
	From, To int64
}

// Segments returns the pieces of history, oldest first, that hold the
// entries with LSN in (from, to] on the ancestry of timeline tl. LSNs are
// continuous along an ancestry path, so each piece is one timeline's range.
func (r *Repo) Segments(ctx context.Context, tl string, from, to int64) ([]Segment, error) {
	anc, err := r.Ancestry(ctx, tl)
	if err != nil {
		return nil, err
	}
	var segs []Segment
	upper := to
	for _, t := range anc {
		lo := max(t.Base, from)
		if upper > lo {
			segs = append(segs, Segment{TL: t.ID, From: lo, To: upper})
		}
		upper = min(upper, t.Base)
		if upper <= from {
			break
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].From < segs[j].From })
	return segs, nil
}

// SpillEntries writes the entries of a large commit to the entries
// collection under the writer's token, in chunks (chunks.go). They count
// only once a commit slot names that token for their LSNs. On an engine
// that Scans it also writes each chunk's key record (collChunkKeys) and
// returns how many (-1 when they could not all be written); the commit
// slot records the total (Slot.Keyed), or none when any call returned -1. The first
// spill into a project of an older log format raises it to Format, so
// that an older argon refuses it rather than read chunks it does not
// know.
func (r *Repo) SpillEntries(ctx context.Context, project string, entries []Entry) (keyed int, err error) {
	if err := r.raiseFormat(ctx, project); err != nil {
		return 0, err
	}
	chunks := chunkEntriesOf(entries)
	docs := make([]any, len(chunks))
	var records []any
	if r.Scans {
		// Their key records select the chunks here; the chunks keep no
		// hashes of their own (format 3: about 12 bytes an entry).
		records = make([]any, len(chunks))
		for i, c := range chunks {
			records[i] = keyDocOf(c)
			c.KH = nil
		}
	}
	for i, c := range chunks {
		if err := fitsADocument(c, entries); err != nil {
			return 0, err
		}
		docs[i] = c
	}
	if err := r.insertOwn(ctx, collEntries, docs); err != nil {
		return 0, err
	}
	if !r.Scans {
		return 0, nil
	}
	// The chunks' key records (collChunkKeys), after the chunks: a record
	// never names a chunk that is not there. They only make lookups
	// faster: when they cannot be written (say, through a FerretDB
	// frontend that does not see the collection another created: the
	// catalog cache in ARCHITECTURE's facts), the commit names none, and a
	// lookup reads the entries collection, chunks without kh included.
	if err := r.insertOwn(ctx, collChunkKeys, records); err != nil {
		return -1, nil
	}
	return len(records), nil
}

// maxStored is the largest document MongoDB stores: 16 MiB, its limit
// on what an insert writes (FerretDB stores more).
const maxStored = 16 << 20

// fitsADocument refuses chunk c (of entries) when it is larger than a
// document MongoDB stores: a document within about 200 bytes of 16 MiB
// gets a chunk of its own, and the chunk's own fields (its _id, timeline,
// LSNs, collection, token) take it past the limit. The working database
// took the document (MongoDB's limit is on the document alone); the log
// cannot, on any engine: a log MongoDB could not hold is not written on
// FerretDB either (review40).
func fitsADocument(c *entryChunk, entries []Entry) error {
	if len(c.Data) < maxStored-64<<10 {
		return nil
	}
	raw, err := bson.Marshal(c)
	if err != nil {
		return err
	}
	if len(raw) <= maxStored {
		return nil
	}
	for _, e := range entries {
		if e.LSN == c.LSN && e.Coll == c.Coll && len(e.Doc) > 0 {
			return &LogRecordError{Coll: e.Coll, ID: e.Key, Size: len(e.Doc), Max: maxStored - (len(raw) - len(e.Doc))}
		}
	}
	return fmt.Errorf("a log record of %d bytes is over MongoDB's limit of %d bytes for one document", len(raw), maxStored)
}

// LogRecordError reports a document argon cannot log: with the log
// record's own fields it is over MongoDB's 16 MiB limit.
type LogRecordError struct {
	Coll      string
	ID        bson.RawValue
	Size, Max int
}

func (e *LogRecordError) Error() string {
	return fmt.Sprintf("the document with _id %s in collection %s is %d bytes: with the fields of argon's log record around it, it is over MongoDB's limit of %d bytes (16 MiB) for one document; argon logs documents of up to %d bytes in this collection",
		e.ID, e.Coll, e.Size, maxStored, e.Max)
}

// insertOwn inserts documents of this writer's own, with _ids no other
// writer uses: a duplicate is our own earlier attempt, whose reply was
// lost, and wrote the same document. Each that is not there is written.
func (r *Repo) insertOwn(ctx context.Context, name string, docs []any) error {
	coll := r.DB.Collection(name)
	_, err := coll.InsertMany(ctx, docs)
	if !isDup(err) {
		return err
	}
	for _, d := range docs {
		if _, err := coll.InsertOne(ctx, d); err != nil && !isDup(err) {
			return err
		}
	}
	return nil
}

// raiseFormat records that project's log holds chunks of the current
// format (Format), once per Repo.
func (r *Repo) raiseFormat(ctx context.Context, project string) error {
	if _, ok := r.chunked.Load(project); ok {
		return nil
	}
	_, err := r.DB.Collection(collProjects).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: project}, {Key: "format", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: Format}}}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "format", Value: Format}}}})
	if err != nil {
		return fmt.Errorf("raise the log format of project %q: %w", project, err)
	}
	r.chunked.Store(project, true)
	return nil
}

// entryRange selects the stored entries of tl that may hold LSNs in
// (lo, hi]: a chunk starting below lo may reach into it (chunks.go).
func entryRange(tl string, lo, hi int64) bson.D {
	return bson.D{{Key: "tl", Value: tl}, {Key: "lsn", Value: bson.D{{Key: "$gt", Value: lo - chunkEntries}, {Key: "$lte", Value: hi}}}}
}

// storedBatch is how many stored documents of the entries collection one
// reply of the server carries. A chunk holds up to 1,000 entries and 4
// MiB, or one larger entry (at most 16 MiB): the embedded engine builds
// each reply whole in memory, copying and encoding its documents, and does
// not cut one at 16 MiB as MongoDB does. Its default first batch (101
// documents) of a 100,000-document commit's chunks, about 30 MB, made a
// checkout of a new branch without images peak at 315 MB of memory
// (171-194 MB with batches of 4 or 16; BENCHMARKS, seventeenth session),
// and 16 chunks of 4 MiB are a reply past the driver's 48 MB limit
// (review23). Two chunks are at most 32 MiB.
const storedBatch = 2

// eachStored runs one query of the entries collection and calls fn for
// each entry the documents it returns hold, with LSN in (lo, hi].
func (r *Repo) eachStored(ctx context.Context, filter bson.D, lo, hi int64, fn func(*Entry) error) error {
	return r.eachChunk(ctx, filter, func(se *storedEntry) error {
		return se.expand(func(e *Entry) error {
			if e.LSN <= lo || e.LSN > hi {
				return nil
			}
			return fn(e)
		})
	})
}

// eachChunk calls fn for each document of the entries collection filter
// matches (a chunk, or an entry of format 1), as stored.
func (r *Repo) eachChunk(ctx context.Context, filter bson.D, fn func(*storedEntry) error) error {
	cur, err := r.DB.Collection(collEntries).Find(ctx, filter, options.Find().SetBatchSize(storedBatch))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		se := new(storedEntry)
		if err := cur.Decode(se); err != nil {
			return fmt.Errorf("decode log entry: %w", err)
		}
		if err := fn(se); err != nil {
			return err
		}
	}
	return cur.Err()
}

// slotEntries calls fn for the entries of commit slot s with LSN in
// (from, to], in LSN order.
func (r *Repo) slotEntries(ctx context.Context, s *Slot, from, to int64, coll string, fn func(*Entry) error) error {
	if !s.Spilled {
		for i := range s.Entries {
			se := &s.Entries[i]
			lsn := s.Base + 1 + int64(i)
			if lsn <= from || lsn > to || (coll != "" && se.Coll != coll) {
				continue
			}
			e := Entry{TL: s.TL, LSN: lsn, Time: s.Time, Op: se.Op, Coll: se.Coll, KeyBytes: se.Key, Doc: se.Doc, Token: s.Token}
			if err := fn(&e); err != nil {
				return err
			}
		}
		return nil
	}
	lo, hi := max(from, s.Base), min(to, s.LSN)
	filter := append(entryRange(s.TL, lo, hi), bson.E{Key: "token", Value: s.Token})
	if coll != "" {
		filter = append(filter, bson.E{Key: "coll", Value: coll})
	}
	var es []Entry
	if err := r.eachStored(ctx, filter, lo, hi, func(e *Entry) error {
		es = append(es, *e)
		return nil
	}); err != nil {
		return err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].LSN < es[j].LSN })
	for i := range es {
		es[i].Time = s.Time
		if err := fn(&es[i]); err != nil {
			return err
		}
	}
	return nil
}

// EachEntry calls fn for every committed entry with LSN in (from, to] on
// the ancestry of tl, in LSN order. When coll is not empty, only that
// collection's entries are read. Only entries named by a commit slot
// count: entries of writers that lost or died are never seen.
func (r *Repo) EachEntry(ctx context.Context, tl string, from, to int64, coll string, fn func(*Entry) error) error {
	segs, err := r.Segments(ctx, tl, from, to)
	if err != nil {
		return err
	}
	for _, sg := range segs {
		slots, err := r.TimelineSlots(ctx, sg.TL, sg.From, sg.To)
		if err != nil {
			return err
		}
		spilled, err := r.spilledEntries(ctx, sg, slots, coll)
		if err != nil {
			return err
		}
		for i := range slots {
			s := &slots[i]
			if !s.Spilled {
				if err := r.slotEntries(ctx, s, sg.From, sg.To, coll, fn); err != nil {
					return err
				}
				continue
			}
			from, to := max(sg.From, s.Base), min(sg.To, s.LSN)
			for _, se := range spilled[s.Token] {
				if err := se.expand(func(e *Entry) error {
					if e.LSN <= from || e.LSN > to || (coll != "" && e.Coll != coll) {
						return nil
					}
					e.Time = s.Time
					return fn(e)
				}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// eachEntryByChunk is EachEntry reading each spilled commit's chunks one
// at a time, in order, by _id (a commit's chunks follow one another from
// its first LSN, each naming its last, and each _id is the entry id of its
// first LSN: see chunkChains): memory holds one chunk, where EachEntry
// reads every chunk in range first. A point read costs a round trip a
// chunk (on the embedded engine about as much as decoding the chunk),
// where EachEntry's one query decodes the whole entries collection. So
// when chunks turn out to hold fewer than byChunkEntries entries on
// average (commits that change collection often: over the first 8
// chunks of a commit, or 16 of the walk), and when a chain breaks (a
// format-1 log, one document per entry), the rest is read as EachEntry
// reads it, and fellBack is true.
//
// Each chunk read is added to record, when not nil. With plan (what an
// earlier walk of the same range recorded), only the chunks it lists of
// collection coll are read, each by _id: no chunk of another collection.
func (r *Repo) eachEntryByChunk(ctx context.Context, tl string, from, to int64, coll string, plan, record chunkPlan, fn func(*Entry) error) (fellBack bool, err error) {
	last := from // every entry up to last was given
	give := func(e *Entry) error {
		last = e.LSN
		return fn(e)
	}
	rest := func() (bool, error) { return true, r.EachEntry(ctx, tl, last, to, coll, fn) }
	segs, err := r.Segments(ctx, tl, from, to)
	if err != nil {
		return false, err
	}
	var reads, entries int64
	for _, sg := range segs {
		slots, err := r.TimelineSlots(ctx, sg.TL, sg.From, sg.To)
		if err != nil {
			return false, err
		}
		for i := range slots {
			s := &slots[i]
			if !s.Spilled {
				if err := r.slotEntries(ctx, s, sg.From, sg.To, coll, give); err != nil {
					return false, err
				}
				continue
			}
			lo, hi := max(sg.From, s.Base), min(sg.To, s.LSN)
			if lo >= hi || !touches(s, coll) {
				continue
			}
			expand := func(se *storedEntry) error {
				return se.expand(func(e *Entry) error {
					if e.LSN <= lo || e.LSN > hi || (coll != "" && e.Coll != coll) {
						return nil
					}
					e.Time = s.Time
					return give(e)
				})
			}
			read := func(lsn int64) (*storedEntry, error) {
				var se storedEntry
				err := r.DB.Collection(collEntries).FindOne(ctx, bson.D{{Key: "_id", Value: entryID(s.TL, lsn, s.Token)}}).Decode(&se)
				if err != nil || se.Last == 0 {
					return nil, err
				}
				if se.LSN != lsn || se.Last < lsn {
					return nil, fmt.Errorf("malformed log chunk at LSN %d of timeline %s: names LSNs %d..%d", lsn, s.TL, se.LSN, se.Last)
				}
				return &se, nil
			}
			key := s.TL + "/" + s.Token
			if plan != nil {
				for _, c := range plan[key] {
					if (coll != "" && c.coll != coll) || c.last <= lo || c.first > hi {
						continue
					}
					se, err := read(c.first)
					if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && se == nil) {
						return false, fmt.Errorf("log chunk at LSN %d of timeline %s is gone since an earlier read", c.first, s.TL)
					}
					if err != nil {
						return false, err
					}
					if err := expand(se); err != nil {
						return false, err
					}
				}
				continue
			}
			var readsC, entriesC int64 // this commit's
			for lsn := s.Base + 1; lsn <= hi; {
				if (reads >= 16 && entries < byChunkEntries*reads) || (readsC >= 8 && entriesC < byChunkEntries*readsC) {
					return rest()
				}
				se, err := read(lsn)
				if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && se == nil) {
					return rest()
				}
				if err != nil {
					return false, err
				}
				n := se.Last - se.LSN + 1
				reads, entries, readsC, entriesC = reads+1, entries+n, readsC+1, entriesC+n
				if record != nil {
					record[key] = append(record[key], chunkRef{first: se.LSN, last: se.Last, coll: se.Coll})
				}
				if se.Last > lo && (coll == "" || se.Coll == coll) {
					if err := expand(se); err != nil {
						return false, err
					}
				}
				lsn = se.Last + 1
			}
		}
	}
	return false, nil
}

// chunkPlan lists, by commit (timeline "/" token), the chunks a walk of
// eachEntryByChunk read.
type chunkPlan map[string][]chunkRef

type chunkRef struct {
	first, last int64
	coll        string
}

// byChunkEntries is the fewest entries a chunk holds on average for
// eachEntryByChunk to go on reading chunks one at a time.
const byChunkEntries = 100

// EntryBound bounds, from the commit slots' counts alone, the committed
// entries of coll on tl's ancestry in (from, to]: n is at least their
// number (a commit cut by the range counts whole), indexes says whether
// any of them may create or drop an index. known is false when a commit
// in the range carries no counts (then nothing is bounded).
func (r *Repo) EntryBound(ctx context.Context, tl string, from, to int64, coll string) (n int64, indexes, known bool, err error) {
	segs, err := r.Segments(ctx, tl, from, to)
	if err != nil {
		return 0, false, false, err
	}
	for _, sg := range segs {
		slots, err := r.TimelineSlots(ctx, sg.TL, sg.From, sg.To)
		if err != nil {
			return 0, false, false, err
		}
		for i := range slots {
			s := &slots[i]
			if len(s.Stats) == 0 && s.LSN > s.Base {
				return 0, false, false, nil
			}
			for _, st := range s.Stats {
				if st.Coll == coll {
					n += int64(st.Puts + st.Dels + st.Indexes)
					indexes = indexes || st.Indexes > 0
				}
			}
		}
	}
	return n, indexes, true, nil
}

// spilledEntries reads the spilled entries of the commit slots of one
// segment with one query, and returns the stored documents (chunks) that
// hold them by the token of their slot, in LSN order: only those a slot
// names (its token, LSNs meeting its range) and meeting the segment's
// range. They are kept as stored, and expanded into entries as they are
// replayed: an entry expanded costs about 190 bytes more than its bytes
// in a chunk (a fold of 100,000 documents from the log held 24 MB of
// them). The caller keeps to each slot's range. One query per segment, not one per slot: on the
// embedded engine every query of the entries collection scans it, so a
// query per commit made a fold quadratic in the length of the history
// (measured: 200 commits of 100 documents, a fold of 20,000 documents took
// 4 min 26 s). The engine is not asked to sort: argon sorts each commit's
// entries.
func (r *Repo) spilledEntries(ctx context.Context, sg Segment, slots []Slot, coll string) (map[string][]*storedEntry, error) {
	ranges := map[string][2]int64{}
	lo, hi := int64(-1), int64(-1)
	for i := range slots {
		s := &slots[i]
		if !s.Spilled {
			continue
		}
		from, to := max(sg.From, s.Base), min(sg.To, s.LSN)
		if from >= to {
			continue
		}
		ranges[s.Token] = [2]int64{from, to}
		if lo < 0 || from < lo {
			lo = from
		}
		hi = max(hi, to)
	}
	if len(ranges) == 0 {
		return nil, nil
	}
	if r.Scans {
		out, ok, err := r.chunkChains(ctx, slots, ranges, coll)
		if ok || err != nil {
			return out, err
		}
	}
	filter := entryRange(sg.TL, lo, hi)
	if coll != "" {
		filter = append(filter, bson.E{Key: "coll", Value: coll})
	}
	out := map[string][]*storedEntry{}
	if err := r.eachChunk(ctx, filter, func(se *storedEntry) error {
		if rg, ok := ranges[se.Token]; ok && max(se.Last, se.LSN) > rg[0] && se.LSN <= rg[1] {
			out[se.Token] = append(out[se.Token], se)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, cs := range out {
		sort.Slice(cs, func(i, j int) bool { return cs[i].LSN < cs[j].LSN })
	}
	return out, nil
}

// chainChunks is the most chunks chunkChains reads, by the lower bound
// of the chunks the commits in range hold: each is a round trip (about 1
// ms, and the chunk's decoding), where one scan of the entries collection
// decodes every row of it (200 chunks of 1,000 small documents: 1.3 s).
var chainChunks = 64 // a variable for tests

// chunkChains reads the spilled entries of the commit slots that ranges
// names (by token: the LSNs of each wanted) by point reads: a commit's
// chunks follow one another from its first LSN, each naming its last, and
// each _id is the entry id of its first LSN. It says false, with nothing
// read, when the commits hold more than chainChunks chunks, and false when
// a commit's first stored document is not a chunk (a format-1 log: one
// document per entry) or is missing: the caller then scans. Commits whose
// stats do not name coll (when not empty) are not read, and entries of
// another collection in those read are skipped. Used on an engine that scans (Scans), where a point read by _id
// is indexed (store.IndexIDs) and a query of the entries collection
// decodes all of it.
func (r *Repo) chunkChains(ctx context.Context, slots []Slot, ranges map[string][2]int64, coll string) (map[string][]*storedEntry, bool, error) {
	var chains []*Slot
	chunks := int64(0)
	for i := range slots {
		s := &slots[i]
		if _, ok := ranges[s.Token]; ok && s.Spilled && touches(s, coll) {
			chains = append(chains, s)
			chunks += (s.LSN - s.Base + chunkEntries - 1) / chunkEntries
		}
	}
	if chunks > int64(chainChunks) {
		return nil, false, nil
	}
	got := make([][]*storedEntry, len(chains))
	fallback := make([]bool, len(chains))
	// The count above is a lower bound (a commit's chunks are also cut
	// where its collection changes): the reads stop, and the caller
	// scans, past twice as many.
	var reads atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, s := range chains {
		g.Go(func() error {
			rg := ranges[s.Token]
			for lsn := s.Base + 1; lsn <= rg[1]; {
				if reads.Add(1) > 2*int64(chainChunks) {
					fallback[i] = true
					return nil
				}
				var se storedEntry
				err := r.DB.Collection(collEntries).FindOne(gctx, bson.D{{Key: "_id", Value: entryID(s.TL, lsn, s.Token)}}).Decode(&se)
				if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && se.Last == 0) {
					fallback[i] = true
					return nil
				}
				if err != nil {
					return err
				}
				if se.LSN != lsn || se.Last < lsn {
					return fmt.Errorf("malformed log chunk at LSN %d of timeline %s: names LSNs %d..%d", lsn, s.TL, se.LSN, se.Last)
				}
				if (coll == "" || se.Coll == coll) && se.Last > rg[0] {
					got[i] = append(got[i], &se)
				}
				lsn = se.Last + 1
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	out := make(map[string][]*storedEntry, len(chains))
	for i, s := range chains {
		if fallback[i] {
			return nil, false, nil
		}
		if len(got[i]) > 0 {
			out[s.Token] = got[i]
		}
	}
	return out, true, nil
}

// touches says whether commit slot s may hold entries of collection coll
// (any, when coll is empty): its stats name the collections it changed;
// a slot without stats may hold any.
func touches(s *Slot, coll string) bool {
	if coll == "" || len(s.Stats) == 0 {
		return true
	}
	for _, st := range s.Stats {
		if st.Coll == coll {
			return true
		}
	}
	return false
}

// entriesByToken runs one query of the entries collection and returns the
// entries with LSN in (lo, hi] that keep accepts by their token, each
// token's in LSN order (argon sorts: the engine is never asked to).
func (r *Repo) entriesByToken(ctx context.Context, filter bson.D, lo, hi int64, keep func(*Entry) bool) (map[string][]Entry, error) {
	out := map[string][]Entry{}
	if err := r.eachStored(ctx, filter, lo, hi, func(e *Entry) error {
		if keep == nil || keep(e) {
			out[e.Token] = append(out[e.Token], *e)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, es := range out {
		sort.Slice(es, func(i, j int) bool { return es[i].LSN < es[j].LSN })
	}
	return out, nil
}

// Fold returns the state of timeline tl at LSN lsn: replay of every entry
// up to lsn along its ancestry, starting from the nearest image snapshot
// when there is one (image.go).
func (r *Repo) Fold(ctx context.Context, tl string, lsn int64, coll string) (*State, error) {
	st, _, err := r.foldFrom(ctx, tl, lsn, coll)
	return st, err
}

// FoldWithStats is Fold, also saying which image it started from and how
// many entries it replayed.
func (r *Repo) FoldWithStats(ctx context.Context, tl string, lsn int64, coll string) (*State, FoldStats, error) {
	return r.foldFrom(ctx, tl, lsn, coll)
}

// EntriesBack calls fn for the committed entries at LSN at and below on the
// ancestry of tl, newest first, until fn returns false or the history ends.
// It walks commit slots down by point reads, so reading the last n entries
// costs about one read per commit they span, whatever the size of the log.
// On an engine that Scans, a query of spilled entries reads the whole
// entries collection whatever it asks for, so from a timeline's second
// spilled commit on, the spilled entries of the rest of that timeline are
// read with one query: a walk costs at most two such reads per timeline,
// not one per commit.
func (r *Repo) EntriesBack(ctx context.Context, tl string, at int64, fn func(*Entry) bool) error {
	var ferr error
	spilledSeen := map[string]int{}
	var cacheTL string
	var cache map[string][]Entry // by token, for timeline cacheTL
	// One read per commit: the walk reads each slot with its entries.
	err := r.walkLog(ctx, tl, nil, nil, at, true, 0, func(it LogItem) bool {
		s := it.slot
		var es []Entry
		if s.Spilled && r.Scans {
			spilledSeen[s.TL]++
			if spilledSeen[s.TL] == 2 && cacheTL != s.TL {
				if cache, ferr = r.spilledByToken(ctx, s.TL, it.To); ferr != nil {
					return false
				}
				cacheTL = s.TL
			}
		}
		if s.Spilled && cacheTL == s.TL {
			for _, e := range cache[s.Token] {
				if e.LSN > s.Base && e.LSN >= it.From && e.LSN <= it.To {
					e.Time = s.Time
					es = append(es, e)
				}
			}
		} else if ferr = r.slotEntries(ctx, s, it.From-1, it.To, "", func(e *Entry) error {
			es = append(es, *e)
			return nil
		}); ferr != nil {
			return false
		}
		for i := len(es) - 1; i >= 0; i-- {
			if !fn(&es[i]) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return ferr
}

// spilledByToken reads the spilled entries of timeline tl at LSN to and
// below with one query, by token, each token's in LSN order. Entries of
// writers that never committed are among them: a caller keeps only those
// of a commit slot's token and range.
func (r *Repo) spilledByToken(ctx context.Context, tl string, to int64) (map[string][]Entry, error) {
	return r.entriesByToken(ctx, bson.D{{Key: "tl", Value: tl}, {Key: "lsn", Value: bson.D{{Key: "$lte", Value: to}}}}, 0, to, nil)
}

// manyKeys is the most keys LatestAtOrBelow asks a scanning engine for
// with $in; for more, reading the history once costs less (on FerretDB,
// a $in of k values costs about 0.05-0.07 µs × k per document scanned, on
// top of the scan's 30-40 µs).
const manyKeys = 256

// LatestAtOrBelow returns, for each of the given keys of coll, the newest
// committed entry at or below LSN lsn on the ancestry of tl (a key with no
// such entry is absent from the result: the document never existed). The
// server is asked for those keys only, so the cost follows the number of
// keys, not the size of the history; except on an engine that Scans, for
// more than manyKeys keys, where the entries of the ancestry are read
// once (from the nearest image snapshot: a key found in the image is
// returned as a put at the image's LSN). read counts the entries
// returned.
func (r *Repo) LatestAtOrBelow(ctx context.Context, tl string, lsn int64, coll string, keys [][]byte, index bool) (map[string]*Entry, int, error) {
	out := map[string]*Entry{}
	read := 0
	if len(keys) == 0 {
		return out, 0, nil
	}
	want := map[string]bool{}
	vals := make([]any, len(keys))
	hashes := make([]any, len(keys))
	for i, k := range keys {
		want[string(k)] = true
		vals[i] = bson.Binary{Data: k}
		hashes[i] = keyHash(k)
	}
	isIndexOp := func(op string) bool { return op == OpIndex || op == OpDropIndex }
	consider := func(e *Entry) {
		k := string(e.KeyBytes)
		if !want[k] || e.Coll != coll || isIndexOp(e.Op) != index {
			return
		}
		if cur, ok := out[k]; !ok || cur.LSN < e.LSN {
			cp := *e
			out[k] = &cp
		}
	}
	if r.Scans && len(keys) > manyKeys {
		// From the nearest image, when there is one: a key found there
		// stands as a put at the image's LSN.
		from := int64(0)
		st, img, err := r.loadNearest(ctx, tl, lsn, coll)
		if err != nil {
			return nil, 0, err
		}
		if img != nil {
			from = img.LSN
			for k := range want {
				if d := st.lookup(coll, index, k); d != nil {
					op := OpPut
					if index {
						op = OpIndex
					}
					read++
					out[k] = &Entry{TL: img.TL, LSN: img.LSN, Op: op, Coll: coll, KeyBytes: []byte(k), Doc: d.doc}
				}
			}
		}
		err = r.EachEntry(ctx, tl, from, lsn, coll, func(e *Entry) error {
			if want[string(e.KeyBytes)] {
				read++
				consider(e)
			}
			return nil
		})
		return out, read, err
	}
	segs, err := r.Segments(ctx, tl, 0, lsn)
	if err != nil {
		return nil, 0, err
	}
	if r.Scans && len(segs) > 0 {
		n, err := r.latestAcross(ctx, segs, coll, want, vals, hashes, consider)
		return out, n, err
	}
	// Newest segment first: a key found there needs no older one.
	for i := len(segs) - 1; i >= 0 && len(out) < len(keys); i-- {
		sg := segs[i]
		// Inline entries: the commit slots that hold one of the keys.
		cur, err := r.DB.Collection(collSlots).Find(ctx, bson.D{{Key: "tl", Value: sg.TL}, {Key: "kind", Value: SlotCommit},
			{Key: "base", Value: bson.D{{Key: "$lt", Value: sg.To}}}, {Key: "lsn", Value: bson.D{{Key: "$gt", Value: sg.From}}},
			{Key: "entries.kb", Value: bson.D{{Key: "$in", Value: vals}}}})
		if err != nil {
			return nil, 0, err
		}
		var slots []Slot
		if err := cur.All(ctx, &slots); err != nil {
			return nil, 0, err
		}
		for si := range slots {
			if err := r.slotEntries(ctx, &slots[si], sg.From, sg.To, coll, func(e *Entry) error {
				if want[string(e.KeyBytes)] {
					read++
					consider(e)
				}
				return nil
			}); err != nil {
				return nil, 0, err
			}
		}
		// Spilled entries: the chunks (and format-1 entries) that hold one
		// of the keys, then kept only under a committed token.
		filter := append(entryRange(sg.TL, sg.From, sg.To), bson.E{Key: "coll", Value: coll},
			bson.E{Key: "$or", Value: bson.A{bson.D{{Key: "kh", Value: bson.D{{Key: "$in", Value: hashes}}}}, bson.D{{Key: "kb", Value: bson.D{{Key: "$in", Value: vals}}}}, withoutKH}})
		var spilled []Entry
		if err := r.eachStored(ctx, filter, sg.From, sg.To, func(e *Entry) error {
			if want[string(e.KeyBytes)] {
				spilled = append(spilled, *e)
			}
			return nil
		}); err != nil {
			return nil, 0, err
		}
		if len(spilled) > 0 {
			committed, err := r.spilledRanges(ctx, sg.TL)
			if err != nil {
				return nil, 0, err
			}
			for i := range spilled {
				read++
				if rg, ok := committed[spilled[i].Token]; ok && spilled[i].LSN > rg[0] && spilled[i].LSN <= rg[1] {
					consider(&spilled[i])
				}
			}
		}
	}
	return out, read, nil
}

// latestAcross is LatestAtOrBelow's lookup of a few keys over every
// segment of an ancestry at once, for an engine that scans (Scans): one
// query of the slots and one of the entries, where a query per segment
// read each collection whole once per timeline of the ancestry. Every
// entry found is kept only inside its own timeline's segment: a parent's
// entries past the fork point are not the child's. It calls consider with
// each committed entry of a wanted key and returns how many it read.
func (r *Repo) latestAcross(ctx context.Context, segs []Segment, coll string, want map[string]bool, vals, hashes []any, consider func(*Entry)) (int, error) {
	read := 0
	bySeg := make(map[string]Segment, len(segs))
	var slotRanges, entryRanges bson.A
	lo, hi := segs[0].From, segs[0].To
	for _, sg := range segs {
		bySeg[sg.TL] = sg
		slotRanges = append(slotRanges, bson.D{{Key: "tl", Value: sg.TL},
			{Key: "base", Value: bson.D{{Key: "$lt", Value: sg.To}}}, {Key: "lsn", Value: bson.D{{Key: "$gt", Value: sg.From}}}})
		entryRanges = append(entryRanges, entryRange(sg.TL, sg.From, sg.To))
		lo, hi = min(lo, sg.From), max(hi, sg.To)
	}
	inSeg := func(e *Entry) (Segment, bool) {
		sg, ok := bySeg[e.TL]
		return sg, ok && e.LSN > sg.From && e.LSN <= sg.To
	}
	// The commit slots in the ranges that hold one of the keys inline,
	// and every spilled one.
	cur, err := r.DB.Collection(collSlots).Find(ctx, bson.D{{Key: "kind", Value: SlotCommit}, {Key: "$and", Value: bson.A{
		bson.D{{Key: "$or", Value: slotRanges}},
		bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "entries.kb", Value: bson.D{{Key: "$in", Value: vals}}}}, bson.D{{Key: "spilled", Value: true}}}}},
	}}})
	if err != nil {
		return 0, err
	}
	var slots []Slot
	if err := cur.All(ctx, &slots); err != nil {
		return 0, err
	}
	var spilledSlots []*Slot
	for i := range slots {
		sg, ok := bySeg[slots[i].TL]
		if !ok {
			continue
		}
		if slots[i].Spilled {
			spilledSlots = append(spilledSlots, &slots[i])
			continue
		}
		if err := r.slotEntries(ctx, &slots[i], sg.From, sg.To, coll, func(e *Entry) error {
			if want[string(e.KeyBytes)] {
				read++
				consider(e)
			}
			return nil
		}); err != nil {
			return 0, err
		}
	}
	if len(spilledSlots) == 0 {
		return read, nil
	}
	// A spilled entry counts when a commit of its timeline names its
	// token and LSN: such a commit reaches into the entry's segment, so
	// it is among the slots just read.
	committed := map[string][2]int64{}
	for _, s := range spilledSlots {
		committed[s.TL+"\x00"+s.Token] = [2]int64{s.Base, s.LSN}
	}
	keep := func(e *Entry) {
		if _, ok := inSeg(e); !ok || !want[string(e.KeyBytes)] {
			return
		}
		read++
		if rg, ok := committed[e.TL+"\x00"+e.Token]; ok && e.LSN > rg[0] && e.LSN <= rg[1] {
			consider(e)
		}
	}
	ok, err := r.latestKeyed(ctx, spilledSlots, bySeg, coll, hashes, keep)
	if err != nil || ok {
		return read, err
	}
	// Spilled entries: the chunks (and format-1 entries) that hold one of
	// the keys.
	filter := bson.D{{Key: "coll", Value: coll}, {Key: "$and", Value: bson.A{
		bson.D{{Key: "$or", Value: entryRanges}},
		bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "kh", Value: bson.D{{Key: "$in", Value: hashes}}}}, bson.D{{Key: "kb", Value: bson.D{{Key: "$in", Value: vals}}}}, withoutKH}}},
	}}}
	err = r.eachStored(ctx, filter, lo, hi, func(e *Entry) error {
		keep(e)
		return nil
	})
	return read, err
}

// keyedReads is the most chunks latestKeyed reads by _id; a lookup whose
// keys lie in more reads the entries collection once instead.
const keyedReads = 64

// latestKeyed is latestAcross's read of spilled entries through the
// chunks' key records (collChunkKeys), for when every spilled commit
// slot in the ranges has them: one read of those commits' key records,
// then a read by _id of each chunk of coll in range that holds one of
// the hashes; keep is called with each entry of those chunks. It returns
// false, having called keep with nothing, when it cannot answer: a slot
// without key records, a number of records that differs from the slot's
// (one the engine does not show), more than keyedReads chunks to read, or
// a chunk that is not there.
func (r *Repo) latestKeyed(ctx context.Context, slots []*Slot, bySeg map[string]Segment, coll string, hashes []any, keep func(*Entry)) (bool, error) {
	byTL := map[string]bson.A{}
	want := map[string]int{}
	for _, s := range slots {
		if s.Keyed == 0 {
			return false, nil
		}
		byTL[s.TL] = append(byTL[s.TL], s.Token)
		want[s.TL+"\x00"+s.Token] = s.Keyed
	}
	var or bson.A
	for tl, tokens := range byTL {
		or = append(or, bson.D{{Key: "tl", Value: tl}, {Key: "token", Value: bson.D{{Key: "$in", Value: tokens}}}})
	}
	hs := make(map[uint32]bool, len(hashes))
	for _, h := range hashes {
		hs[shortHash(h.(int64))] = true
	}
	cur, err := r.DB.Collection(collChunkKeys).Find(ctx, bson.D{{Key: "$or", Value: or}})
	if err != nil {
		return false, err
	}
	seen := map[string]int{}
	var ids []string
	for cur.Next(ctx) {
		var d chunkKeyDoc
		if err := cur.Decode(&d); err != nil {
			_ = cur.Close(ctx)
			return false, fmt.Errorf("decode a chunk's key record: %w", err)
		}
		seen[d.TL+"\x00"+d.Token]++
		if sg := bySeg[d.TL]; d.Coll == coll && d.LSN <= sg.To && d.Last > sg.From && d.holds(hs) {
			ids = append(ids, d.ID)
		}
	}
	err = cur.Err()
	_ = cur.Close(ctx)
	if err != nil {
		return false, err
	}
	if len(ids) > keyedReads || !maps.Equal(seen, want) {
		return false, nil
	}
	chunks := make([]*storedEntry, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, id := range ids {
		g.Go(func() error {
			var se storedEntry
			err := r.DB.Collection(collEntries).FindOne(gctx, bson.D{{Key: "_id", Value: id}}).Decode(&se)
			if errors.Is(err, mongo.ErrNoDocuments) {
				return nil
			}
			chunks[i] = &se
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	for _, se := range chunks {
		if se == nil || se.Last == 0 {
			return false, nil
		}
	}
	for _, se := range chunks {
		if err := se.expand(func(e *Entry) error {
			keep(e)
			return nil
		}); err != nil {
			return false, err
		}
	}
	return true, nil
}

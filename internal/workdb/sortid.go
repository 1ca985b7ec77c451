package workdb

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// runBytes is how many bytes of documents EachByID sorts in memory at a
// time.
var runBytes = 16 << 20

// EachByID calls fn with each document of c in the order of their _id,
// and returns how many there were. On FerretDB (ferret) a sort by _id is
// done in the engine's memory, over the whole collection (ARCHITECTURE,
// "Facts measured"), so when every _id of c is of one kind whose order
// is plain (all strings, all ObjectIds, all integers, all doubles), the
// documents are read unsorted and sorted here, runBytes at a time, the
// sorted runs kept in temporary files and merged: memory holds one run.
// For any other mix of _ids, and elsewhere, the engine sorts.
func EachByID(ctx context.Context, c *mongo.Collection, ferret bool, fn func(bson.Raw) error) (int, error) {
	if ferret {
		n, ok, err := eachByIDSorted(ctx, c, fn)
		if ok || err != nil {
			return n, err
		}
	}
	return eachDocSorted(ctx, c, fn)
}

// eachDocSorted is EachByID by the engine's sort.
func eachDocSorted(ctx context.Context, c *mongo.Collection, fn func(bson.Raw) error) (int, error) {
	cur, err := c.Find(ctx, emptyDoc, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(FirstBatch))
	if err != nil {
		return 0, err
	}
	defer cur.Close(ctx)
	n := 0
	var sizer BatchSizer // replies of at most about 4 MiB
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return n, err
		}
		n++
		sizer.Seen(cur)
	}
	return n, cur.Err()
}

// idKind is the kind of an _id whose order eachByIDSorted knows: strings
// by their bytes, ObjectIds by their bytes, integers (32- and 64-bit) by
// value, doubles (not NaN) by value. Other _ids have none.
type idKind byte

const (
	kindNone idKind = iota
	kindString
	kindObjectID
	kindInt
	kindDouble
)

func kindOf(id bson.RawValue) idKind {
	switch id.Type {
	case bson.TypeString:
		return kindString
	case bson.TypeObjectID:
		return kindObjectID
	case bson.TypeInt32, bson.TypeInt64:
		return kindInt
	case bson.TypeDouble:
		if f := id.Double(); f == f {
			return kindDouble
		}
	}
	return kindNone
}

// idLessOf orders two _ids of kind k.
func idLessOf(k idKind, a, b bson.RawValue) bool {
	switch k {
	case kindString:
		return a.StringValue() < b.StringValue()
	case kindObjectID:
		return bytes.Compare(a.Value, b.Value) < 0
	case kindInt:
		return a.AsInt64() < b.AsInt64()
	default:
		return a.Double() < b.Double()
	}
}

// sortedRun is a run of documents sorted by _id, in a temporary file.
type sortedRun struct {
	f    *os.File
	r    docReader
	doc  bson.Raw
	id   bson.RawValue
	rank int // the run's place: of equal _ids, the earlier run's first
}

// next reads the run's next document into doc; false at its end.
func (s *sortedRun) next() (bool, error) {
	doc, ok, err := s.r.next()
	if ok {
		s.doc, s.id = doc, doc.Lookup("_id")
	}
	return ok, err
}

// runHeap merges runs: the least _id first, of equal ones the earlier run's.
type runHeap struct {
	k    idKind
	runs []*sortedRun
}

func (h *runHeap) Len() int { return len(h.runs) }
func (h *runHeap) Less(i, j int) bool {
	a, b := h.runs[i], h.runs[j]
	if idLessOf(h.k, a.id, b.id) {
		return true
	}
	if idLessOf(h.k, b.id, a.id) {
		return false
	}
	return a.rank < b.rank
}
func (h *runHeap) Swap(i, j int) { h.runs[i], h.runs[j] = h.runs[j], h.runs[i] }
func (h *runHeap) Push(x any)    { h.runs = append(h.runs, x.(*sortedRun)) }
func (h *runHeap) Pop() any {
	r := h.runs[len(h.runs)-1]
	h.runs = h.runs[:len(h.runs)-1]
	return r
}

// eachByIDSorted is EachByID sorting here; ok is false (and fn was never
// called) when an _id is of no kind or of another kind than the others,
// or when a sorted run cannot be written to a temporary file.
func eachByIDSorted(ctx context.Context, c *mongo.Collection, fn func(bson.Raw) error) (n int, ok bool, err error) {
	var runs []*sortedRun
	defer func() {
		for _, r := range runs {
			r.f.Close()
		}
	}()
	kind := kindNone
	size := 0 // bytes of docs
	var docs []bson.Raw
	sortRun := func() {
		sort.SliceStable(docs, func(i, j int) bool {
			return idLessOf(kind, docs[i].Lookup("_id"), docs[j].Lookup("_id"))
		})
	}
	spill := func() error {
		sortRun()
		f, err := os.CreateTemp("", "argon-sort-*")
		if err != nil {
			return fmt.Errorf("sorting documents by _id in a temporary file: %w", err)
		}
		_ = os.Remove(f.Name()) // where the system allows it; it goes with the process
		runs = append(runs, &sortedRun{f: f, rank: len(runs)})
		w := bufio.NewWriterSize(f, 1<<20)
		for _, d := range docs {
			if _, err := w.Write(d); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		clear(docs)
		size, docs = 0, docs[:0]
		return nil
	}
	cur, err := c.Find(ctx, emptyDoc, options.Find().SetBatchSize(FirstBatch))
	if err != nil {
		return 0, false, err
	}
	defer cur.Close(ctx)
	var sizer BatchSizer
	for cur.Next(ctx) {
		k := kindOf(cur.Current.Lookup("_id"))
		if k == kindNone || kind != kindNone && k != kind {
			return 0, false, nil
		}
		kind = k
		if size+len(cur.Current) > runBytes && len(docs) > 0 {
			if spill() != nil {
				return 0, false, nil // no temporary file: the engine sorts
			}
		}
		size += len(cur.Current)
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
		sizer.Seen(cur)
	}
	if err := cur.Err(); err != nil {
		return 0, false, err
	}
	if len(runs) == 0 {
		sortRun()
		for _, d := range docs {
			if err := fn(d); err != nil {
				return n, true, err
			}
			n++
		}
		return n, true, nil
	}
	if len(docs) > 0 {
		if spill() != nil {
			return 0, false, nil
		}
	}
	docs = nil
	h := &runHeap{k: kind}
	for _, r := range runs {
		if _, err := r.f.Seek(0, io.SeekStart); err != nil {
			return 0, false, err
		}
		r.r = docReader{r: bufio.NewReaderSize(r.f, 64<<10)}
		if more, err := r.next(); err != nil {
			return 0, false, err
		} else if more {
			h.runs = append(h.runs, r)
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		r := h.runs[0]
		if err := fn(r.doc); err != nil {
			return n, true, err
		}
		n++
		if more, err := r.next(); err != nil {
			return n, true, err
		} else if more {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return n, true, nil
}

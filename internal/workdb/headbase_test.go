package workdb_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// cleanSwitch is a working database's files as the test says they are:
// recorded clean or not (store.DBFiles fingerprints the engine's files).
type cleanSwitch struct{ clean bool }

func (c *cleanSwitch) Fingerprint(string) (string, error) { return "now", nil }
func (c *cleanSwitch) Clean(string) string {
	if c.clean {
		return "now"
	}
	return "before"
}
func (c *cleanSwitch) SetClean(string, string) error { return nil }
func (c *cleanSwitch) KeepClean(string) error        { return nil }
func (c *cleanSwitch) Building(string)               {}
func (c *cleanSwitch) Built(string) error            { return nil }
func (c *cleanSwitch) HoldWrites(context.Context, string, time.Duration) (func(), error) {
	return func() {}, nil
}

// A read of a past state laid over the branch's working database answers
// exactly what a view of that state answers, byte for byte and in order,
// at every LSN from the last of the first insert's on: after updates in
// place, deletes,
// re-inserts, an update of many documents (which the embedded engine's
// write-back moves to the end of the working database) and new
// documents; with projections, skip and limit, and counts. It
// materialises nothing while the commits since the LSN change no index
// of the collection; below an index's creation it falls back. A working
// database not known clean (an application changed it) is never read for
// a past state.
func TestHeadBaseReadsMatchTheirOwnViews(t *testing.T) {
	t.Parallel()
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	files := &cleanSwitch{clean: true}
	w.Files = files
	raw := seedOverlayState(t, ctx, w)
	modify := func(coll string, m workdb.Modification) {
		t.Helper()
		if _, err := w.Modify(ctx, coll, m, workdb.Limits{}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(coll string, d bson.D) {
		t.Helper()
		if _, err := w.Insert(ctx, coll, []bson.Raw{raw(d)}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	byID := func(id any) bson.Raw { return raw(bson.D{{Key: "_id", Value: id}}) }
	set := func(d bson.D) bson.Raw { return raw(bson.D{{Key: "$set", Value: d}}) }
	modify("c", workdb.Modification{Filter: byID(int32(4)), Update: set(bson.D{{Key: "v", Value: int32(100)}, {Key: "tag", Value: int32(1)}})})
	insert("d", bson.D{{Key: "_id", Value: "y"}})
	modify("c", workdb.Modification{Filter: byID(int32(7)), Delete: true})
	insert("c", bson.D{{Key: "_id", Value: "new"}, {Key: "v", Value: int32(-1)}, {Key: "tag", Value: int32(1)}})
	modify("c", workdb.Modification{Filter: byID(int32(1)), Delete: true})
	insert("c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(1)}, {Key: "tag", Value: int32(1)}})
	modify("c", workdb.Modification{Filter: raw(bson.D{{Key: "tag", Value: int32(2)}}), Update: raw(bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: int32(1000)}}}}), Many: true})
	before, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	indexAt := before.LSN + 1
	if _, _, _, err := w.CreateIndex(ctx, "c", raw(bson.D{{Key: "v", Value: 1}}), workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	insert("c", bson.D{{Key: "_id", Value: int32(50)}, {Key: "v", Value: int32(50)}, {Key: "tag", Value: int32(1)}})
	modify("c", workdb.Modification{Filter: byID(int32(10)), Update: set(bson.D{{Key: "tag", Value: int32(0)}})})
	last, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}

	type read struct {
		name string
		q    workdb.Query
	}
	reads := []read{
		{"all", workdb.Query{}},
		{"tag 1", workdb.Query{Filter: raw(bson.D{{Key: "tag", Value: int32(1)}})}},
		{"v > 5, v only", workdb.Query{Filter: raw(bson.D{{Key: "v", Value: bson.D{{Key: "$gt", Value: int32(5)}}}}), Projection: raw(bson.D{{Key: "v", Value: 1}})}},
		{"v without _id", workdb.Query{Projection: raw(bson.D{{Key: "v", Value: true}, {Key: "_id", Value: false}})}},
		{"skip 2, limit 5", workdb.Query{Skip: 2, Limit: 5}},
		{"tag 1, limit 3", workdb.Query{Filter: raw(bson.D{{Key: "tag", Value: int32(1)}}), Limit: 3}},
	}
	type answer struct {
		docs  [][]byte
		count int64
	}
	readAll := func(rr *wal.Repo, head *workdb.Branch, from int64, built func(coll string, lsn int64)) map[string]answer {
		out := map[string]answer{}
		for lsn := from; lsn <= last.LSN; lsn++ {
			// Every other LSN, the index's creation, the LSN below it
			// and the head in the README's suite; every one at the
			// nightly size (internal/testsize).
			if lsn%int64(testsize.Stride(2)) != 0 && lsn != last.LSN && lsn != indexAt && lsn != indexAt-1 {
				continue
			}
			for _, coll := range []string{"c", "d"} {
				for _, rd := range reads {
					v := workdb.OpenCollViews(rr, b.Timeline, lsn)
					v.Built = built
					if head != nil {
						v.OverHead(head)
					}
					got, err := v.Find(ctx, coll, rd.q)
					if err != nil {
						t.Fatalf("%s at %d, %s: %v", coll, lsn, rd.name, err)
					}
					var a answer
					for _, d := range got {
						a.docs = append(a.docs, d)
					}
					cv := workdb.OpenCollViews(rr, b.Timeline, lsn)
					if head != nil {
						cv.OverHead(head)
					}
					if a.count, err = cv.Count(ctx, coll, rd.q.Filter); err != nil {
						t.Fatal(err)
					}
					out[fmt.Sprintf("%s at %d, %s", coll, lsn, rd.name)] = a
				}
			}
		}
		return out
	}
	compare := func(got, ref map[string]answer) {
		t.Helper()
		for k, g := range got {
			a, ok := ref[k]
			if !ok || g.count != a.count || len(g.docs) != len(a.docs) {
				t.Fatalf("%s: %d documents, count %d; want %d, count %d", k, len(g.docs), g.count, len(a.docs), a.count)
			}
			for i := range a.docs {
				if !bytes.Equal(g.docs[i], a.docs[i]) {
					t.Fatalf("%s: document %d is %s, want %s", k, i, bson.Raw(g.docs[i]), bson.Raw(a.docs[i]))
				}
			}
		}
	}

	// Reads from the index's creation on: nothing is materialised.
	headRepo := *r
	built := map[string]bool{}
	got := readAll(&headRepo, w, indexAt, func(coll string, lsn int64) { built[fmt.Sprintf("%s@%d", coll, lsn)] = true })
	if len(built) != 0 {
		t.Fatalf("reads over the working database materialised %v", built)
	}
	// Below it, c's reads fall back to views; d's stay over the head.
	got2 := readAll(&headRepo, w, 28, func(coll string, lsn int64) { built[fmt.Sprintf("%s@%d", coll, lsn)] = true })
	for k := range built {
		var lsn int64
		if n, _ := fmt.Sscanf(k, "c@%d", &lsn); n != 1 || lsn >= indexAt {
			t.Fatalf("materialised %s: only c below the index's creation (LSN %d) needs a view", k, indexAt)
		}
	}
	if len(built) == 0 {
		t.Fatalf("the reads of c below the index's creation materialised nothing")
	}

	// An application's change: the working database is no longer known
	// clean, and a read at the head LSN is the committed state, from a
	// view of its own.
	if _, err := w.DB.Collection("d").UpdateOne(ctx, bson.D{{Key: "_id", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "app", Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	files.clean = false
	built = map[string]bool{}
	v := workdb.OpenCollViews(&headRepo, b.Timeline, last.LSN)
	v.OverHead(w)
	v.Built = func(coll string, lsn int64) { built[fmt.Sprintf("%s@%d", coll, lsn)] = true }
	ds, err := v.Find(ctx, "d", workdb.Query{})
	if err != nil || len(ds) != 2 || ds[0].Lookup("app").Type != 0 {
		t.Fatalf("d at the head LSN with an application's change: %v (%v), want the 2 committed documents", ds, err)
	}
	if !built[fmt.Sprintf("d@%d", last.LSN)] {
		t.Fatalf("materialised %v, want d@%d", built, last.LSN)
	}

	plain := *r
	plain.NoImages = true
	ref := readAll(&plain, nil, 28, nil)
	compare(got, ref)
	compare(got2, ref)
}

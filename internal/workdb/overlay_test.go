package workdb_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// A read of a past state over an image's view answers exactly what a
// view of that state answers, byte for byte and in order, at every LSN
// between an image and the head: documents changed in place keep their
// place, deleted ones go, re-inserted and new ones come last; with
// projections (with and without _id), skip and limit, and counts. The
// image's view is materialised once and shared by every read near it;
// a sort, a $text filter, or an index created since the image fall back
// to a view of the state itself.
func TestOverlayReadsMatchTheirOwnViews(t *testing.T) {
	t.Parallel()
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	raw := seedOverlayState(t, ctx, w)
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	img, err := r.TakeImage(ctx, "p", b.Timeline, head.LSN)
	if err != nil {
		t.Fatal(err)
	}
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
	// Each step is one commit: an LSN to read at.
	modify("c", workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: int32(4)}}), Update: raw(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(100)}, {Key: "tag", Value: int32(1)}}}})})
	insert("d", bson.D{{Key: "_id", Value: "y"}})
	modify("c", workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: int32(7)}}), Delete: true})
	insert("c", bson.D{{Key: "_id", Value: "new"}, {Key: "v", Value: int32(-1)}, {Key: "tag", Value: int32(1)}})
	modify("c", workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: int32(1)}}), Delete: true})
	insert("c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(1)}, {Key: "tag", Value: int32(1)}})
	modify("c", workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: int32(10)}}), Update: raw(bson.D{{Key: "$set", Value: bson.D{{Key: "tag", Value: int32(2)}}}})})
	before, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	indexAt := before.LSN + 1
	if _, _, _, err := w.CreateIndex(ctx, "c", raw(bson.D{{Key: "v", Value: 1}}), workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	insert("c", bson.D{{Key: "_id", Value: int32(50)}, {Key: "v", Value: int32(50)}, {Key: "tag", Value: int32(1)}})
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
		{"no _id", workdb.Query{Projection: raw(bson.D{{Key: "_id", Value: 0}})}},
		{"v without _id", workdb.Query{Projection: raw(bson.D{{Key: "v", Value: true}, {Key: "_id", Value: false}})}},
		{"without tag", workdb.Query{Projection: raw(bson.D{{Key: "tag", Value: 0}})}},
		{"skip 2, limit 5", workdb.Query{Skip: 2, Limit: 5}},
		{"tag 1, limit 3", workdb.Query{Filter: raw(bson.D{{Key: "tag", Value: int32(1)}}), Limit: 3}},
		{"skip past the end", workdb.Query{Skip: 100}},
	}
	type answer struct {
		docs  [][]byte
		count int64
	}
	readAll := func(rr *wal.Repo, built func(coll string, lsn int64)) map[string]answer {
		out := map[string]answer{}
		for lsn := img.LSN; lsn <= last.LSN; lsn++ {
			for _, coll := range []string{"c", "d"} {
				for _, rd := range reads {
					v := workdb.OpenCollViews(rr, b.Timeline, lsn)
					v.Built = built
					got, err := v.Find(ctx, coll, rd.q)
					if err != nil {
						t.Fatalf("%s at %d, %s: %v", coll, lsn, rd.name, err)
					}
					var a answer
					for _, d := range got {
						a.docs = append(a.docs, d)
					}
					if a.count, err = workdb.OpenCollViews(rr, b.Timeline, lsn).Count(ctx, coll, rd.q.Filter); err != nil {
						t.Fatal(err)
					}
					out[fmt.Sprintf("%s at %d, %s", coll, lsn, rd.name)] = a
				}
			}
		}
		return out
	}
	var built []string
	got := readAll(r, func(coll string, lsn int64) { built = append(built, fmt.Sprintf("%s@%d", coll, lsn)) })
	// The image's view of each collection, once; at the index, c's read
	// falls back to a view of its own, which the read after it is laid
	// over.
	want := fmt.Sprint([]string{fmt.Sprintf("c@%d", img.LSN), fmt.Sprintf("d@%d", img.LSN), fmt.Sprintf("c@%d", indexAt)})
	if fmt.Sprint(built) != want {
		t.Fatalf("materialised %v, want %v", built, want)
	}
	// Whether a collection exists is told without a view of the state.
	for _, c := range []struct {
		coll string
		want bool
	}{{"c", true}, {"d", true}, {"none", false}} {
		v := workdb.OpenCollViews(r, b.Timeline, img.LSN+2)
		v.Built = func(coll string, lsn int64) { t.Fatalf("HasCollection(%s) materialised %s@%d", c.coll, coll, lsn) }
		if ok, err := v.HasCollection(ctx, c.coll); err != nil || ok != c.want {
			t.Fatalf("HasCollection(%s): %v, %v", c.coll, ok, err)
		}
	}
	// A sort falls back to a view of the state itself.
	built = nil
	v := workdb.OpenCollViews(r, b.Timeline, img.LSN+3)
	v.Built = func(coll string, lsn int64) { built = append(built, fmt.Sprintf("%s@%d", coll, lsn)) }
	sorted, err := v.Find(ctx, "c", workdb.Query{Sort: raw(bson.D{{Key: "v", Value: -1}})})
	// (At LSN image+3: 4 set to 100, y inserted in d, 7 deleted.)
	if err != nil || len(sorted) != 29 || sorted[0].Lookup("v").Int32() != 100 {
		t.Fatalf("sorted: %d documents, %v", len(sorted), err)
	}
	if want := fmt.Sprintf("[c@%d]", img.LSN+3); fmt.Sprint(built) != want {
		t.Fatalf("a sorted read materialised %v, want %v", built, want)
	}

	plain := *r
	plain.NoImages = true
	ref := readAll(&plain, nil)
	for k, a := range ref {
		g := got[k]
		if g.count != a.count || len(g.docs) != len(a.docs) {
			t.Fatalf("%s: %d documents, count %d; want %d, count %d", k, len(g.docs), g.count, len(a.docs), a.count)
		}
		for i := range a.docs {
			if !bytes.Equal(g.docs[i], a.docs[i]) {
				t.Fatalf("%s: document %d is %s, want %s", k, i, bson.Raw(g.docs[i]), bson.Raw(a.docs[i]))
			}
		}
	}
	if len(ref) != len(got) {
		t.Fatalf("%d reads over images, %d without", len(got), len(ref))
	}
}

// Without images, a read is laid over the view an earlier read built
// below it on its ancestry, on its own timeline or a parent's: reads
// stepping forward through history materialise once. A read below every
// view materialises its own. Each answer is the one of the LSN's own
// view.
func TestOverlayOverAnEarlierView(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	raw := func(d bson.D) bson.Raw {
		out, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var docs []bson.Raw
	for i := 0; i < 20; i++ {
		docs = append(docs, raw(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int32(i)}}))
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	base := int64(20)
	for i := 0; i < 4; i++ {
		if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: int32(i * 3)}}),
			Update: raw(bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: int32(100)}}}})}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	feat, err := r.CreateBranch(ctx, "p", "feat", b, base+2)
	if err != nil {
		t.Fatal(err)
	}
	fw := commit.New().Open(r, feat)
	fw.ScanReads = w.ScanReads
	if _, err := fw.Insert(ctx, "c", []bson.Raw{raw(bson.D{{Key: "_id", Value: "f"}, {Key: "v", Value: int32(-1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Modify(ctx, "c", workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: int32(1)}}), Delete: true}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	type point struct {
		tl  string
		lsn int64
	}
	points := []point{{b.Timeline, base}, {b.Timeline, base + 1}, {b.Timeline, base + 4}, {feat.Timeline, base + 3}, {feat.Timeline, base + 4}, {b.Timeline, base - 1}}
	q := workdb.Query{Filter: raw(bson.D{{Key: "v", Value: bson.D{{Key: "$gte", Value: int32(3)}}}}), Skip: 1}
	var built []string
	got := map[point][]bson.Raw{}
	for _, p := range points {
		v := workdb.OpenCollViews(r, p.tl, p.lsn)
		v.Built = func(coll string, lsn int64) { built = append(built, fmt.Sprintf("%s@%d", coll, lsn)) }
		out, err := v.Find(ctx, "c", q)
		if err != nil {
			t.Fatal(err)
		}
		got[p] = out
	}
	// The first read, and the one below it.
	if want := fmt.Sprintf("[c@%d c@%d]", base, base-1); fmt.Sprint(built) != want {
		t.Fatalf("materialised %v, want %s", built, want)
	}
	plain := *r
	plain.NoImages = true
	for _, p := range points {
		want, err := workdb.OpenCollViews(&plain, p.tl, p.lsn).Find(ctx, "c", q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got[p]) != fmt.Sprint(want) {
			t.Fatalf("at %s@%d: %v\nwant %v", p.tl, p.lsn, got[p], want)
		}
	}
}

// A view whose database was dropped (by hand, or by gc after a reader
// read its record) is not read as an empty state: the read finds its
// owner record gone, forgets the view and builds it again.
func TestDroppedViewIsBuiltAgain(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	var docs []bson.Raw
	for i := 0; i < 5; i++ {
		d, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
		docs = append(docs, d)
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	var built []string
	read := func() (int, int64, bool) {
		v := workdb.OpenCollViews(r, b.Timeline, 5)
		v.Built = func(coll string, lsn int64) { built = append(built, fmt.Sprintf("%s@%d", coll, lsn)) }
		got, err := v.Find(ctx, "c", workdb.Query{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := workdb.OpenCollViews(r, b.Timeline, 5).Count(ctx, "c", nil)
		if err != nil {
			t.Fatal(err)
		}
		has, err := workdb.OpenCollViews(r, b.Timeline, 5).HasCollection(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		return len(got), n, has
	}
	if n, c, has := read(); n != 5 || c != 5 || !has {
		t.Fatalf("first read: %d documents, count %d, exists %v", n, c, has)
	}
	// This repo's views only: a server may hold other tests' too, some
	// under the same prefix (it keeps 16 bits of the metadata database's
	// name); the owner record tells.
	all, err := srv.Client.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(r.DatabasePrefix()+"-view-")}}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range all {
		if o, err := r.DBOwner(ctx, n); err == nil && o != nil && o.Meta == r.DB.Name() {
			names = append(names, n)
		}
	}
	if len(names) != 1 {
		t.Fatalf("view databases: %v", names)
	}
	if err := srv.Client.Database(names[0]).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if n, c, has := read(); n != 5 || c != 5 || !has {
		t.Fatalf("after the view's database was dropped: %d documents, count %d, exists %v", n, c, has)
	}
	if fmt.Sprint(built) != "[c@5 c@5]" {
		t.Fatalf("materialised %v, want c@5 twice", built)
	}
}

// seedOverlayState commits, on w, 30 documents {_id: i, v: i, tag: i % 3}
// to c and {_id: "x"} to d (two commits), the history the overlay tests
// read; it returns how they marshal a document.
func seedOverlayState(t *testing.T, ctx context.Context, w *workdb.Branch) func(bson.D) bson.Raw {
	t.Helper()
	raw := func(d bson.D) bson.Raw {
		out, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var docs []bson.Raw
	for i := 0; i < 30; i++ {
		docs = append(docs, raw(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int32(i)}, {Key: "tag", Value: int32(i % 3)}}))
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Insert(ctx, "d", []bson.Raw{raw(bson.D{{Key: "_id", Value: "x"}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	return raw
}

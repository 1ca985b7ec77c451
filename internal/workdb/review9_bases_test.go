package workdb_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// Two siblings forked from main at one LSN, main going on after the
// fork: views of main below, at and above the fork, of the sibling at
// the LSNs read, of a deleted branch forked at the same point, and of
// another project of the same metadata database at the same LSNs. Every
// read on each timeline answers what its own view does.
func TestReview9SiblingAndParentViews(t *testing.T) {
	h := newR9(t)
	h.insert("c", h.docs(0, 20)...)                     // 1..20
	h.set("c", int32(3), bson.D{{Key: "v", Value: 33}}) // 21
	h.del("c", int32(5))                                // 22
	fork := h.head()
	s1, err := h.r.CreateBranch(h.ctx, "p", "s1", h.b, fork)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := h.r.CreateBranch(h.ctx, "p", "s2", h.b, fork)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := h.r.CreateBranch(h.ctx, "p", "s3", h.b, fork)
	if err != nil {
		t.Fatal(err)
	}
	h.set("c", int32(6), bson.D{{Key: "v", Value: 66}})                                 // 23
	h.del("c", int32(0))                                                                // 24
	h.insert("c", bson.D{{Key: "_id", Value: int32(200)}, {Key: "v", Value: int32(1)}}) // 25
	h.set("c", int32(7), bson.D{{Key: "v", Value: 77}})                                 // 26
	h1, h2, h3 := h.on(s1), h.on(s2), h.on(s3)
	h1.del("c", int32(1))
	h1.insert("c", bson.D{{Key: "_id", Value: int32(100)}, {Key: "v", Value: int32(2)}})
	h1.set("c", int32(2), bson.D{{Key: "v", Value: 22}})
	h1.set("c", int32(8), bson.D{{Key: "v", Value: 88}})
	h2.set("c", int32(9), bson.D{{Key: "v", Value: 99}})
	h2.insert("c", bson.D{{Key: "_id", Value: int32(300)}, {Key: "v", Value: int32(3)}})
	h2.del("c", int32(4))
	h2.set("c", int32(10), bson.D{{Key: "v", Value: 1010}})
	h3.del("c", int32(11))
	h3.del("c", int32(12))
	h3.del("c", int32(13))
	h3.del("c", int32(14))
	// Another project, same metadata database, same LSNs.
	_, qb, err := h.r.CreateProject(h.ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	hq := h.on(qb)
	hq.insert("c", h.docs(500, 530)...)
	views := func() {
		for _, l := range []int64{fork - 2, fork, fork + 2, fork + 4} {
			h.view(h.b.Timeline, l, "c")
		}
		for _, l := range []int64{fork + 1, fork + 2, fork + 3, fork + 4} {
			h.view(s1.Timeline, l, "c")
			h.view(s3.Timeline, l, "c")
			h.view(qb.Timeline, l, "c")
		}
	}
	views()
	if _, _, err := h.r.DeleteBranch(h.ctx, "p", "s3"); err != nil {
		t.Fatal(err)
	}
	s3b, err := h.r.CreateBranch(h.ctx, "p", "s3", h.b, fork)
	if err != nil {
		t.Fatal(err)
	}
	h.on(s3b).set("c", int32(15), bson.D{{Key: "v", Value: 1515}})
	var points []r9Point
	for l := fork; l <= fork+4; l++ {
		points = append(points, r9Point{s2.Timeline, "s2", l}, r9Point{h.b.Timeline, "main", l})
	}
	points = append(points, r9Point{s3b.Timeline, "s3(new)", fork + 1})
	n := h.readAll(points, []string{"c"}, h.reads())
	t.Logf("%d of %d reads overlaid", n, len(points)*3)
}

// A branch forked inside a commit of main, views of main at the fork
// (inside the commit) and inside the same commit above it, and a view of
// the branch inside a commit of its own.
func TestReview9ForkInsideACommit(t *testing.T) {
	h := newR9(t)
	h.insert("c", h.docs(0, 20)...) // 1..20, one commit
	fork := int64(10)
	f, err := h.r.CreateBranch(h.ctx, "p", "f", h.b, fork)
	if err != nil {
		t.Fatal(err)
	}
	hf := h.on(f)
	hf.insert("c", bson.D{{Key: "_id", Value: int32(100)}, {Key: "v", Value: int32(1)}},
		bson.D{{Key: "_id", Value: int32(101)}, {Key: "v", Value: int32(2)}},
		bson.D{{Key: "_id", Value: int32(15)}, {Key: "v", Value: int32(3)}}) // 11..13; 15 exists on main from 16
	hf.del("c", int32(2))                                // 14
	hf.set("c", int32(3), bson.D{{Key: "v", Value: 33}}) // 15
	h.view(h.b.Timeline, fork, "c")
	h.view(h.b.Timeline, 15, "c")
	h.view(h.b.Timeline, 20, "c")
	h.view(f.Timeline, 12, "c")
	var points []r9Point
	for l := fork; l <= 15; l++ {
		points = append(points, r9Point{f.Timeline, "f", l})
	}
	for _, l := range []int64{11, 16, 19} {
		points = append(points, r9Point{h.b.Timeline, "main", l})
	}
	n := h.readAll(points, []string{"c"}, h.reads())
	t.Logf("%d of %d reads overlaid", n, len(points)*3)
}

// A view of the whole state (collections --at) as the base of reads of
// each collection, one of them created after it and one emptied.
func TestReview9WholeStateViewAsBase(t *testing.T) {
	h := newR9(t)
	h.insert("c", h.docs(0, 20)...)                 // 1..20
	h.insert("d", bson.D{{Key: "_id", Value: "x"}}) // 21
	at := h.head()
	h.wholeView(h.b.Timeline, at)
	h.set("c", int32(3), bson.D{{Key: "v", Value: 33}}) // 22
	h.insert("e", bson.D{{Key: "_id", Value: "y"}})     // 23
	h.del("d", "x")                                     // 24
	h.insert("c", bson.D{{Key: "_id", Value: int32(-1)}, {Key: "v", Value: int32(1)}})
	var points []r9Point
	for l := at; l <= h.head(); l++ {
		points = append(points, r9Point{h.b.Timeline, "main", l})
	}
	n := h.readAll(points, []string{"c", "d", "e"}, h.reads())
	if n != len(points)*3*3 {
		t.Errorf("%d of %d reads overlaid, want all", n, len(points)*9)
	}
}

// A fast-forward: main's old timeline closed by a moved slot at the fork
// point, main now on a fork of feat's head; views of the old timeline, of
// feat, and of feat after the move are bases of reads of main's new
// timeline; feat deleted afterwards (its timeline remains).
func TestReview9FastForwardedTimeline(t *testing.T) {
	h := newR9(t)
	h.insert("c", h.docs(0, 20)...)
	base := h.head()
	feat, err := h.r.CreateBranch(h.ctx, "p", "feat", h.b, -1)
	if err != nil {
		t.Fatal(err)
	}
	hf := h.on(feat)
	hf.set("c", int32(1), bson.D{{Key: "v", Value: 11}})
	hf.insert("c", bson.D{{Key: "_id", Value: "f"}, {Key: "v", Value: int32(5)}})
	hf.del("c", int32(2))
	theirs := hf.head()
	h.view(h.b.Timeline, base-3, "c")
	h.view(h.b.Timeline, base, "c")
	h.view(feat.Timeline, theirs-1, "c")
	root, err := h.r.ForkTimeline(h.ctx, "p", feat, -1)
	if err != nil {
		t.Fatal(err)
	}
	var puts []workdb.Put
	for _, id := range []any{int32(1), "f"} {
		d := h.raw(bson.D{{Key: "_id", Value: id}})
		puts = append(puts, workdb.Put{Coll: "c", ID: d.Lookup("_id")})
	}
	// The puts' documents: feat's.
	st, err := h.r.Fold(h.ctx, feat.Timeline, theirs, "c")
	if err != nil {
		t.Fatal(err)
	}
	for i := range puts {
		puts[i].Doc = st.Doc("c", string(wal.KeyOf(puts[i].ID)))
	}
	puts = append(puts, workdb.Put{Coll: "c", ID: h.raw(bson.D{{Key: "_id", Value: int32(2)}}).Lookup("_id")})
	if err := commit.New().Open(h.r, h.b).MovePuts(h.ctx, puts, root, base, "fast-forward to feat", wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	nb, err := h.r.Branch(h.ctx, "p", "main")
	if err != nil || nb.Timeline != root.TL {
		t.Fatalf("main: %v %v", nb, err)
	}
	hm := h.on(nb)
	hf.set("c", int32(7), bson.D{{Key: "v", Value: 77}}) // feat after the move
	hm.set("c", int32(8), bson.D{{Key: "v", Value: 88}})
	hm.del("c", int32(9))
	h.view(feat.Timeline, theirs+1, "c")
	if _, _, err := h.r.DeleteBranch(h.ctx, "p", "feat"); err != nil {
		t.Fatal(err)
	}
	var points []r9Point
	for l := theirs; l <= hm.head(); l++ {
		points = append(points, r9Point{nb.Timeline, "main", l})
	}
	n := h.readAll(points, []string{"c"}, h.reads())
	t.Logf("%d of %d reads overlaid", n, len(points)*3)
}

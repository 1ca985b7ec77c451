package workdb_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// Reads of a branch forked (inside a commit) from a past LSN of its
// parent, over an image of the parent below the fork; images of the
// parent above the fork and of the branch itself around.
func TestReview7ReadsAcrossAFork(t *testing.T) {
	t.Parallel()
	h := newR7(t)
	var docs []bson.D
	for i := int32(0); i < 20; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}})
	}
	h.insert("c", docs...)
	h.set("c", int32(3), bson.D{{Key: "v", Value: int32(33)}})
	h.del("c", int32(5))
	img := h.image() // main, 22
	h.set("c", int32(6), bson.D{{Key: "v", Value: int32(66)}})
	docs = nil
	for i := int32(100); i < 110; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}})
	}
	h.insert("c", docs...) // 24..33
	forkAt := img.LSN + 6  // inside that commit
	h.del("c", int32(0))
	h.set("c", int32(9), bson.D{{Key: "v", Value: int32(99)}})
	h.image() // main above the fork: not for the branch
	f, err := h.r.CreateBranch(h.ctx, "p", "f", h.b, forkAt)
	if err != nil {
		t.Fatal(err)
	}
	hf := h.on(f)
	hf.del("c", int32(1))
	hf.insert("c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(-1)}})
	hf.set("c", int32(101), bson.D{{Key: "v", Value: int32(0)}})
	hf.insert("c", bson.D{{Key: "_id", Value: int32(5)}, {Key: "v", Value: int32(5)}})
	mid := hf.head()
	hf.image() // the branch's own image
	hf.del("c", int32(2))
	hf.insert("d", bson.D{{Key: "_id", Value: "x"}})
	last := hf.head()
	fl := func(d bson.D) bson.Raw { return h.raw(d) }
	reads := []r7Read{
		{"all", workdb.Query{}},
		{"v lt 10", workdb.Query{Filter: fl(bson.D{{Key: "v", Value: bson.D{{Key: "$lt", Value: int32(10)}}}})}},
		{"skip 5 limit 4", workdb.Query{Skip: 5, Limit: 4}},
		{"no _id", workdb.Query{Projection: fl(bson.D{{Key: "_id", Value: 0}})}},
	}
	var lsns []int64
	for l := img.LSN; l <= last; l++ {
		lsns = append(lsns, l)
	}
	overlaid, _ := hf.compare(f.Timeline, lsns, []string{"c", "d"}, reads)
	t.Logf("branch: %d of %d reads over an image (fork at %d, branch image at %d)", overlaid, len(lsns)*2*len(reads), forkAt, mid)
	// HasCollection on the branch, without a view.
	for _, l := range lsns {
		for _, coll := range []string{"c", "d", "e"} {
			v := workdb.OpenCollViews(h.r, f.Timeline, l)
			got, err := v.HasCollection(h.ctx, coll)
			if err != nil {
				t.Fatal(err)
			}
			plain := *h.r
			plain.NoImages = true
			pv := workdb.OpenCollViews(&plain, f.Timeline, l)
			if _, err := pv.Find(h.ctx, coll, workdb.Query{Limit: 1}); err != nil {
				t.Fatal(err)
			}
			want, err := pv.HasCollection(h.ctx, coll)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("HasCollection(%s) at %d: %v, a view says %v", coll, l, got, want)
			}
		}
	}
	h.dropViews()
}

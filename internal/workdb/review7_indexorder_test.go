package workdb_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// Filters on indexed fields (the base view has the collection's indexes,
// the scratch collection none): the engine's order of an answer must be
// the order the documents came into being, or the merge reorders it.
func TestReview7IndexedFilters(t *testing.T) {
	h := newR7(t)
	var docs []bson.D
	for i := int32(0); i < 40; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: 1000 - i}, {Key: "v", Value: 40 - i}, {Key: "u", Value: "k" + string(rune('a'+i%26)) + string(rune('a'+i/26))}, {Key: "tag", Value: i % 4}})
	}
	h.insert("c", docs...)
	if _, _, _, err := h.w.CreateIndex(h.ctx, "c", h.raw(bson.D{{Key: "v", Value: 1}}), workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.w.CreateIndex(h.ctx, "c", h.raw(bson.D{{Key: "u", Value: -1}}), workdb.IndexOptions{Unique: true}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.w.CreateIndex(h.ctx, "c", h.raw(bson.D{{Key: "tag", Value: 1}, {Key: "v", Value: -1}}), workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	img := h.image()
	h.set("c", int32(990), bson.D{{Key: "v", Value: int32(-5)}})
	h.del("c", int32(995))
	h.insert("c", bson.D{{Key: "_id", Value: int32(995)}, {Key: "v", Value: int32(35)}, {Key: "u", Value: "zz"}, {Key: "tag", Value: int32(3)}})
	h.insert("c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(1)}, {Key: "u", Value: "aa"}, {Key: "tag", Value: int32(0)}})
	last := h.head()
	f := func(d bson.D) bson.Raw { return h.raw(d) }
	reads := []r7Read{
		{"v gt 10", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$gt", Value: int32(10)}}}})}},
		{"v gt 10 limit 5", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$gt", Value: int32(10)}}}}), Limit: 5}},
		{"v in", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$in", Value: bson.A{int32(3), int32(35), int32(1), int32(20)}}}}})}},
		{"u range", workdb.Query{Filter: f(bson.D{{Key: "u", Value: bson.D{{Key: "$gte", Value: "kb"}}}})}},
		{"u eq", workdb.Query{Filter: f(bson.D{{Key: "u", Value: "zz"}})}},
		{"tag 3", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(3)}})}},
		{"tag 3, v lt 30", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(3)}, {Key: "v", Value: bson.D{{Key: "$lt", Value: int32(30)}}}})}},
		{"_id range", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: bson.D{{Key: "$lte", Value: int32(995)}}}})}},
		{"_id in", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{int32(1), int32(995), int32(970), int32(990)}}}}})}},
		{"all limit 3 skip 36", workdb.Query{Skip: 36, Limit: 3}},
	}
	overlaid, _ := h.compare(h.b.Timeline, []int64{img.LSN + 1, img.LSN + 3, last}, []string{"c"}, reads)
	t.Logf("%d reads over the image", overlaid)
}

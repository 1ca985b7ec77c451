package workdb_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// Projections and filters of many shapes over an image's view, with
// changed, deleted, re-inserted and new documents, against full views.
func TestReview7ProjectionShapes(t *testing.T) {
	t.Parallel()
	h := newR7(t)
	var docs []bson.D
	for i := int32(0); i < 20; i++ {
		docs = append(docs, bson.D{
			{Key: "_id", Value: i},
			{Key: "a", Value: bson.A{i, i + 1, i + 2}},
			{Key: "s", Value: bson.D{{Key: "x", Value: i}, {Key: "y", Value: bson.A{bson.D{{Key: "k", Value: i}}, bson.D{{Key: "k", Value: i + 1}}}}}},
			{Key: "tag", Value: i % 3},
			{Key: "name", Value: "n"},
		})
	}
	h.insert("c", docs...)
	img := h.image()
	h.set("c", int32(4), bson.D{{Key: "a", Value: bson.A{int32(100), int32(5)}}, {Key: "tag", Value: int32(0)}})
	h.del("c", int32(7))
	h.insert("c", bson.D{{Key: "_id", Value: "new"}, {Key: "a", Value: bson.A{int32(5), int32(6)}}, {Key: "tag", Value: int32(1)}, {Key: "s", Value: bson.D{{Key: "x", Value: int32(50)}}}})
	h.del("c", int32(1))
	h.insert("c", bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: bson.A{int32(5)}}, {Key: "tag", Value: int32(1)}})
	h.set("c", int32(10), bson.D{{Key: "s.x", Value: int32(-1)}})
	h.insert("c", bson.D{{Key: "_id", Value: int64(7)}, {Key: "a", Value: bson.A{}}, {Key: "tag", Value: int32(2)}})
	last := h.head()

	f := func(d bson.D) bson.Raw { return h.raw(d) }
	reads := []r7Read{
		{"positional", workdb.Query{Filter: f(bson.D{{Key: "a", Value: int32(5)}}), Projection: f(bson.D{{Key: "a.$", Value: 1}})}},
		{"positional no _id", workdb.Query{Filter: f(bson.D{{Key: "a", Value: int32(5)}}), Projection: f(bson.D{{Key: "a.$", Value: 1}, {Key: "_id", Value: 0}})}},
		{"elemMatch", workdb.Query{Projection: f(bson.D{{Key: "a", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "$gt", Value: 5}}}}}})}},
		{"elemMatch no _id", workdb.Query{Projection: f(bson.D{{Key: "_id", Value: false}, {Key: "a", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "$gt", Value: 5}}}}}})}},
		{"slice", workdb.Query{Projection: f(bson.D{{Key: "a", Value: bson.D{{Key: "$slice", Value: 1}}}})}},
		{"slice no _id", workdb.Query{Projection: f(bson.D{{Key: "a", Value: bson.D{{Key: "$slice", Value: bson.A{1, 1}}}}, {Key: "_id", Value: 0}})}},
		{"dotted", workdb.Query{Projection: f(bson.D{{Key: "s.x", Value: 1}})}},
		{"dotted no _id", workdb.Query{Projection: f(bson.D{{Key: "s.y.k", Value: 1}, {Key: "_id", Value: 0}})}},
		{"dotted exclusion", workdb.Query{Projection: f(bson.D{{Key: "s.x", Value: 0}})}},
		{"_id only", workdb.Query{Projection: f(bson.D{{Key: "_id", Value: 1}})}},
		{"_id and tag", workdb.Query{Projection: f(bson.D{{Key: "_id", Value: 1}, {Key: "tag", Value: 1}})}},
		{"_id 1 exclusion", workdb.Query{Projection: f(bson.D{{Key: "a", Value: 0}, {Key: "_id", Value: 1}})}},
		{"exclusion no _id", workdb.Query{Projection: f(bson.D{{Key: "_id", Value: 0}, {Key: "tag", Value: 0}})}},
		{"_id 0.0", workdb.Query{Projection: f(bson.D{{Key: "tag", Value: 1}, {Key: "_id", Value: 0.0}})}},
		{"_id int64 0", workdb.Query{Projection: f(bson.D{{Key: "tag", Value: int64(1)}, {Key: "_id", Value: int64(0)}})}},
		{"empty projection", workdb.Query{Projection: f(bson.D{})}},
		{"only _id 0 limit 2 skip 3", workdb.Query{Projection: f(bson.D{{Key: "_id", Value: 0}}), Skip: 3, Limit: 2}},
		{"size", workdb.Query{Filter: f(bson.D{{Key: "a", Value: bson.D{{Key: "$size", Value: 3}}}})}},
		{"dotted filter", workdb.Query{Filter: f(bson.D{{Key: "s.y.k", Value: bson.D{{Key: "$gt", Value: 5}}}})}},
		{"or", workdb.Query{Filter: f(bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "tag", Value: 0}}, bson.D{{Key: "_id", Value: "new"}}}}})}},
		{"_id gt", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: 5}}}})}},
		{"_id in", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{int32(9), int32(1), "new", int64(7), 4.0}}}}})}},
		{"_id eq 7.0", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: 7.0}})}},
		{"_id type string", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: "string"}}}})}},
		{"exists s", workdb.Query{Filter: f(bson.D{{Key: "s", Value: bson.D{{Key: "$exists", Value: false}}}})}},
		{"elemMatch filter", workdb.Query{Filter: f(bson.D{{Key: "a", Value: bson.D{{Key: "$elemMatch", Value: bson.D{{Key: "$gte", Value: 5}, {Key: "$lt", Value: 7}}}}}})}},
		{"limit 1", workdb.Query{Limit: 1}},
		{"skip 1 limit 1", workdb.Query{Skip: 1, Limit: 1}},
		{"skip 17", workdb.Query{Skip: 17}},
		{"skip 19 limit 5", workdb.Query{Skip: 19, Limit: 5}},
		{"skip 20", workdb.Query{Skip: 20}},
		{"tag 1 skip 2 limit 2", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(1)}}), Skip: 2, Limit: 2}},
	}
	overlaid, _ := h.compare(h.b.Timeline, []int64{img.LSN + 2, img.LSN + 4, last}, []string{"c"}, reads)
	t.Logf("%d reads over the image", overlaid)
}

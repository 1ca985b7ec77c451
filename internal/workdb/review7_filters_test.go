package workdb_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// Counts and finds with filters of many operators: a count over an
// image's view is a find of _ids, a view's count is the server's
// countDocuments (an aggregation); both must agree with a full view.
func TestReview7CountFilters(t *testing.T) {
	h := newR7(t)
	var docs []bson.D
	for i := int32(0); i < 12; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}, {Key: "s", Value: "ab" + string(rune('a'+i))}, {Key: "a", Value: bson.A{i, "x"}}, {Key: "b", Value: int32(1) << (i % 4)}})
	}
	h.insert("c", docs...)
	img := h.image()
	h.set("c", int32(2), bson.D{{Key: "v", Value: int32(200)}, {Key: "s", Value: "zz"}})
	h.del("c", int32(3))
	h.insert("c", bson.D{{Key: "_id", Value: "n"}, {Key: "v", Value: 2.5}, {Key: "s", Value: "abq"}, {Key: "a", Value: bson.A{}}})
	f := func(d bson.D) bson.Raw { return h.raw(d) }
	reads := []r7Read{
		{"expr", workdb.Query{Filter: f(bson.D{{Key: "$expr", Value: bson.D{{Key: "$gt", Value: bson.A{"$v", int32(5)}}}}})}},
		{"jsonSchema", workdb.Query{Filter: f(bson.D{{Key: "$jsonSchema", Value: bson.D{{Key: "required", Value: bson.A{"b"}}}}})}},
		{"mod", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$mod", Value: bson.A{int32(3), int32(1)}}}}})}},
		{"bitsAllSet", workdb.Query{Filter: f(bson.D{{Key: "b", Value: bson.D{{Key: "$bitsAllSet", Value: int32(2)}}}})}},
		{"regex", workdb.Query{Filter: f(bson.D{{Key: "s", Value: bson.D{{Key: "$regex", Value: "^AB[a-c]"}, {Key: "$options", Value: "i"}}}})}},
		{"all", workdb.Query{Filter: f(bson.D{{Key: "a", Value: bson.D{{Key: "$all", Value: bson.A{"x"}}}}})}},
		{"type array", workdb.Query{Filter: f(bson.D{{Key: "a", Value: bson.D{{Key: "$type", Value: "array"}}}})}},
		{"not", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gt", Value: int32(4)}}}}}})}},
		{"nor", workdb.Query{Filter: f(bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "v", Value: int32(1)}}, bson.D{{Key: "_id", Value: "n"}}}}})}},
		{"comment", workdb.Query{Filter: f(bson.D{{Key: "$comment", Value: "x"}, {Key: "v", Value: bson.D{{Key: "$lt", Value: int32(3)}}}})}},
		{"where", workdb.Query{Filter: f(bson.D{{Key: "$where", Value: "this.v > 3"}})}},
		{"geoWithin", workdb.Query{Filter: f(bson.D{{Key: "loc", Value: bson.D{{Key: "$geoWithin", Value: bson.D{{Key: "$center", Value: bson.A{bson.A{0, 0}, 1}}}}}}})}},
		{"size 0", workdb.Query{Filter: f(bson.D{{Key: "a", Value: bson.D{{Key: "$size", Value: 0}}}})}},
		{"bad operator", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$nope", Value: 1}}}})}},
		{"top-level bad", workdb.Query{Filter: f(bson.D{{Key: "$nope", Value: 1}})}},
		{"expr with limit", workdb.Query{Filter: f(bson.D{{Key: "$expr", Value: bson.D{{Key: "$lt", Value: bson.A{"$v", int32(5)}}}}}), Limit: 2}},
	}
	overlaid, _ := h.compare(h.b.Timeline, []int64{img.LSN + 1, img.LSN + 3}, []string{"c"}, reads)
	t.Logf("%d reads over the image", overlaid)
}

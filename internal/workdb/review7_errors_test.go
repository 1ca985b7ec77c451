package workdb_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// A projection the server refuses for some documents only (a positional
// projection on a document whose array the filter does not match): a
// full view evaluates it on the documents it returns (after skip and
// limit); the overlay evaluates it on every changed document, and on the
// base view's documents up to skip + limit + changed keys, so it fails
// where a full view answers.
func TestReview7DataDependentErrors(t *testing.T) {
	h := newR7(t)
	var docs []bson.D
	for i := int32(0); i < 10; i++ {
		d := bson.D{{Key: "_id", Value: i}, {Key: "tag", Value: int32(1)}}
		if i == 3 { // in the image, third in order
			d = append(d, bson.E{Key: "a", Value: bson.A{int32(1), int32(2)}})
		}
		docs = append(docs, d)
	}
	h.insert("c", docs...)
	img := h.image()
	// LSN img+1..img+3: changed keys (no array) widen the base's limit
	// to reach _id 3: the base view fails.
	h.insert("c", bson.D{{Key: "_id", Value: int32(101)}, {Key: "tag", Value: int32(2)}})
	h.insert("c", bson.D{{Key: "_id", Value: int32(102)}, {Key: "tag", Value: int32(2)}})
	h.insert("c", bson.D{{Key: "_id", Value: int32(103)}, {Key: "tag", Value: int32(2)}})
	// LSN img+4: _id 3 loses its array (the base's limit reaches no
	// array now) and a changed document, born last, has an array the
	// filter does not match: the scratch evaluation fails.
	h.modify("c", workdb.Modification{Filter: h.raw(bson.D{{Key: "_id", Value: int32(3)}}), Update: h.raw(bson.D{{Key: "$unset", Value: bson.D{{Key: "a", Value: ""}}}})})
	h.insert("c", bson.D{{Key: "_id", Value: int32(100)}, {Key: "tag", Value: int32(1)}, {Key: "a", Value: bson.A{int32(1), int32(2)}}})
	f := func(d bson.D) bson.Raw { return h.raw(d) }
	positional := f(bson.D{{Key: "a.$", Value: 1}})
	tag1 := f(bson.D{{Key: "tag", Value: int32(1)}})
	reads := []r7Read{
		{"positional, limit 1", workdb.Query{Filter: tag1, Projection: positional, Limit: 1}},
		{"positional, limit 2", workdb.Query{Filter: tag1, Projection: positional, Limit: 2}},
		{"positional", workdb.Query{Filter: tag1, Projection: positional}},
		// The base's answer (its first 6, _id 3 excepted) has no array:
		// only the scratch evaluation of _id 100 fails.
		{"positional, not 3, limit 1", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(1)}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: int32(3)}}}}), Projection: positional, Limit: 1}},
	}
	_, differ := h.compare(h.b.Timeline, []int64{img.LSN, img.LSN + 2, img.LSN + 3, img.LSN + 5}, []string{"c"}, reads)
	if differ > 0 {
		t.Logf("%d reads fail over an image's view where a full view answers", differ)
	}
}

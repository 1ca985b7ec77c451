package workdb_test

import (
	"math"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// _id values of many BSON types (numbers of different types equal by
// value, documents with fields in different orders, ObjectIds, strings,
// dates, binaries, booleans), deleted and re-inserted under a value of
// another type, keys touched many times, over an image's view.
func TestReview7IDTypes(t *testing.T) {
	t.Parallel()
	h := newR7(t)
	oid1 := bson.NewObjectID()
	oid2 := bson.NewObjectID()
	when := bson.NewDateTimeFromTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	ids := []any{
		int32(1), int64(2), 3.5, "s", oid1,
		bson.D{{Key: "b", Value: int32(1)}, {Key: "a", Value: int32(2)}},
		bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: int32(2)}},
		bson.D{{Key: "x", Value: bson.D{{Key: "z", Value: int32(1)}, {Key: "y", Value: "q"}}}},
		true, when, bson.Binary{Subtype: 0, Data: []byte{1, 2, 3}},
		int64(1 << 40), -0.5, "", int32(-3),
	}
	var docs []bson.D
	for i, id := range ids {
		docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "i", Value: int32(i)}, {Key: "tag", Value: int32(i % 2)}})
	}
	h.insert("c", docs...)
	img := h.image()
	lsns := []int64{img.LSN}
	step := func() { lsns = append(lsns, h.head()) }
	// int32 1 deleted, then 1 as int64 and as a double.
	h.del("c", int32(1))
	h.insert("c", bson.D{{Key: "_id", Value: int64(1)}, {Key: "i", Value: int32(100)}, {Key: "tag", Value: int32(1)}})
	step()
	h.del("c", int64(1))
	h.insert("c", bson.D{{Key: "_id", Value: 1.0}, {Key: "i", Value: int32(101)}, {Key: "tag", Value: int32(1)}})
	step()
	// int64 2 changed by a filter of another type.
	h.modify("c", workdb.Modification{Filter: h.raw(bson.D{{Key: "_id", Value: 2.0}}), Update: h.raw(bson.D{{Key: "$set", Value: bson.D{{Key: "i", Value: int32(102)}}}})})
	step()
	// A document _id: changed, deleted and re-inserted.
	h.set("c", bson.D{{Key: "b", Value: int32(1)}, {Key: "a", Value: int32(2)}}, bson.D{{Key: "tag", Value: int32(5)}})
	h.del("c", bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: int32(2)}})
	h.insert("c", bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: int32(1)}, {Key: "b", Value: int32(2)}}}, {Key: "i", Value: int32(103)}})
	step()
	// One key touched many times, one deleted and re-inserted many times.
	for k := int32(0); k < 12; k++ {
		h.set("c", oid1, bson.D{{Key: "i", Value: 200 + k}})
		h.del("c", "s")
		h.insert("c", bson.D{{Key: "_id", Value: "s"}, {Key: "i", Value: 300 + k}, {Key: "tag", Value: k % 2}})
	}
	step()
	h.insert("c", bson.D{{Key: "_id", Value: oid2}, {Key: "i", Value: int32(400)}})
	h.del("c", true)
	h.insert("c", bson.D{{Key: "_id", Value: false}, {Key: "i", Value: int32(401)}})
	step()
	f := func(d bson.D) bson.Raw { return h.raw(d) }
	reads := []r7Read{
		{"all", workdb.Query{}},
		{"tag 1", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(1)}})}},
		{"_id 1", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: int32(1)}})}},
		{"_id gte 1", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int32(1)}}}})}},
		{"_id object", workdb.Query{Filter: f(bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: "object"}}}})}},
		{"_id.a", workdb.Query{Filter: f(bson.D{{Key: "_id.a", Value: int32(1)}})}},
		{"no _id", workdb.Query{Projection: f(bson.D{{Key: "_id", Value: 0}})}},
		{"i no _id limit 3 skip 2", workdb.Query{Projection: f(bson.D{{Key: "i", Value: 1}, {Key: "_id", Value: 0}}), Skip: 2, Limit: 3}},
		{"limit 4", workdb.Query{Limit: 4}},
		{"skip 10 limit 4", workdb.Query{Skip: 10, Limit: 4}},
	}
	overlaid, _ := h.compare(h.b.Timeline, lsns, []string{"c"}, reads)
	t.Logf("%d of %d reads over the image", overlaid, len(lsns)*len(reads))
}

// _id values the engine may store differently from their bytes (negative
// zero, NaN, large doubles), and documents with unusual field names.
func TestReview7OddIDs(t *testing.T) {
	h := newR7(t)
	negz := math.Copysign(0, -1)
	h.insert("c",
		bson.D{{Key: "_id", Value: negz}, {Key: "v", Value: int32(1)}},
		bson.D{{Key: "_id", Value: float64(1 << 60)}, {Key: "v", Value: int32(4)}},
		bson.D{{Key: "_id", Value: "k"}, {Key: "w", Value: int32(6)}},
	)
	img := h.image()
	h.set("c", "k", bson.D{{Key: "v", Value: int32(50)}})
	h.del("c", negz)
	h.insert("c", bson.D{{Key: "_id", Value: 0.0}, {Key: "v", Value: int32(10)}})
	h.insert("c", bson.D{{Key: "_id", Value: int64(7)}, {Key: "v", Value: int32(11)}})
	reads := []r7Read{
		{"all", workdb.Query{}},
		{"no _id", workdb.Query{Projection: h.raw(bson.D{{Key: "_id", Value: 0}})}},
		{"v gt 2 limit 2", workdb.Query{Filter: h.raw(bson.D{{Key: "v", Value: bson.D{{Key: "$gt", Value: int32(2)}}}}), Limit: 2}},
	}
	overlaid, _ := h.compare(h.b.Timeline, h.lsnRange(img.LSN, h.head()), []string{"c"}, reads)
	t.Logf("%d reads over the image", overlaid)
}

package workdb_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// An image inside a commit (inline and spilled commits), read at LSNs
// inside the same commit and after it.
func TestReview7ImageInsideACommit(t *testing.T) {
	t.Parallel()
	h := newR7(t)
	var docs []bson.D
	for i := int32(0); i < 150; i++ { // spilled
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}, {Key: "tag", Value: i % 7}})
	}
	h.insert("c", docs...) // 1..150
	// An update of many, spilled: 151..
	h.modify("c", workdb.Modification{Filter: h.raw(bson.D{{Key: "v", Value: bson.D{{Key: "$gte", Value: int32(20)}}}}),
		Update: h.raw(bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: int32(1000)}}}}), Many: true})
	upd := h.head()
	h.del("c", int32(40))
	h.insert("c", bson.D{{Key: "_id", Value: int32(40)}, {Key: "v", Value: int32(-40)}, {Key: "tag", Value: int32(0)}})
	// Inline commit of 5:
	h.modify("c", workdb.Modification{Filter: h.raw(bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: int32(5)}}}}), Delete: true, Many: true})
	last := h.head()
	imgA, err := h.r.TakeImage(h.ctx, "p", h.b.Timeline, 100) // inside the insert
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.TakeImage(h.ctx, "p", h.b.Timeline, 200); err != nil { // inside the update
		t.Fatal(err)
	}
	if _, err := h.r.TakeImage(h.ctx, "p", h.b.Timeline, last-2); err != nil { // inside the delete
		t.Fatal(err)
	}
	f := func(d bson.D) bson.Raw { return h.raw(d) }
	reads := []r7Read{
		{"all", workdb.Query{}},
		{"tag 3 skip 4 limit 6", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(3)}}), Skip: 4, Limit: 6}},
		{"v lt 100 no _id", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$lt", Value: int32(100)}}}}), Projection: f(bson.D{{Key: "_id", Value: 0}, {Key: "tag", Value: 0}})}},
	}
	lsns := []int64{imgA.LSN, 101, 120, 150, 151, 175, 199, 200, 201, upd - 1, upd, upd + 1, upd + 2, last - 3, last - 2, last - 1, last}
	overlaid, _ := h.compare(h.b.Timeline, lsns, []string{"c"}, reads)
	t.Logf("%d of %d reads over an image", overlaid, len(lsns)*len(reads))
}

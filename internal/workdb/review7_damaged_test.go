package workdb_test

import (
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// Images whose chunks were damaged (a chunk's bytes changed, a chunk
// gone, the chunk collection dropped), with an older good image below:
// reads over them answer what full views answer.
func TestReview7DamagedImages(t *testing.T) {
	t.Parallel()
	for _, damage := range []string{"bytes", "missing chunk", "dropped"} {
		t.Run(damage, func(t *testing.T) {
			h := newR7(t)
			var docs []bson.D
			for i := int32(0); i < 20; i++ {
				docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}})
			}
			h.insert("c", docs...)
			h.insert("d", bson.D{{Key: "_id", Value: "a"}})
			good := h.image()
			h.set("c", int32(3), bson.D{{Key: "v", Value: int32(33)}})
			h.del("c", int32(5))
			h.insert("c", bson.D{{Key: "_id", Value: int32(5)}, {Key: "v", Value: int32(55)}})
			bad := h.image()
			h.set("c", int32(6), bson.D{{Key: "v", Value: int32(66)}})
			h.del("c", int32(3))
			h.insert("c", bson.D{{Key: "_id", Value: int32(3)}, {Key: "v", Value: int32(-3)}})
			last := h.head()
			chunks := h.r.DB.Collection(bad.Coll)
			switch damage {
			case "bytes":
				var d struct {
					ID   string `bson:"_id"`
					Data []byte `bson:"data"`
				}
				if err := chunks.FindOne(h.ctx, bson.D{}).Decode(&d); err != nil {
					t.Fatal(err)
				}
				d.Data[len(d.Data)-1] ^= 1
				if _, err := chunks.UpdateOne(h.ctx, bson.D{{Key: "_id", Value: d.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: d.Data}}}}); err != nil {
					t.Fatal(err)
				}
			case "missing chunk":
				if _, err := chunks.DeleteMany(h.ctx, bson.D{}); err != nil {
					t.Fatal(err)
				}
			case "dropped":
				if err := chunks.Drop(h.ctx); err != nil {
					t.Fatal(err)
				}
			}
			f := func(d bson.D) bson.Raw { return h.raw(d) }
			reads := []r7Read{
				{"all", workdb.Query{}},
				{"v gt 4 limit 3", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$gt", Value: int32(4)}}}}), Limit: 3}},
				{"no _id skip 2", workdb.Query{Projection: f(bson.D{{Key: "_id", Value: 0}}), Skip: 2}},
			}
			overlaid, _ := h.compare(h.b.Timeline, h.lsnRange(good.LSN, last), []string{"c", "d"}, reads)
			t.Logf("%d reads over an image", overlaid)
		})
	}
}

// A collection absent at the image and created after it; one emptied
// (every document deleted) after it; one emptied and refilled. Reads,
// counts and HasCollection answer what full views answer.
func TestReview7CollectionsCreatedAndEmptied(t *testing.T) {
	t.Parallel()
	h := newR7(t)
	h.insert("gone", bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "_id", Value: int32(2)}})
	h.insert("back", bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "old"}})
	h.insert("keep", bson.D{{Key: "_id", Value: int32(1)}})
	img := h.image()
	h.insert("late", bson.D{{Key: "_id", Value: int32(2)}}, bson.D{{Key: "_id", Value: int32(1)}})
	h.modify("gone", workdb.Modification{Filter: h.raw(bson.D{}), Delete: true, Many: true})
	h.del("back", int32(1))
	h.insert("back", bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: "new"}})
	h.insert("late", bson.D{{Key: "_id", Value: int32(0)}})
	last := h.head()
	colls := []string{"gone", "back", "late", "keep", "never"}
	reads := []r7Read{
		{"all", workdb.Query{}},
		{"limit 1 skip 1", workdb.Query{Limit: 1, Skip: 1}},
		{"no _id", workdb.Query{Projection: h.raw(bson.D{{Key: "_id", Value: 0}})}},
	}
	overlaid, _ := h.compare(h.b.Timeline, h.lsnRange(img.LSN, last), colls, reads)
	t.Logf("%d reads over an image", overlaid)
	plain := *h.r
	plain.NoImages = true
	for _, l := range h.lsnRange(img.LSN, last) {
		for _, coll := range colls {
			got, err := workdb.OpenCollViews(h.r, h.b.Timeline, l).HasCollection(h.ctx, coll)
			if err != nil {
				t.Fatal(err)
			}
			pv := workdb.OpenCollViews(&plain, h.b.Timeline, l)
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

// A negative skip: a view's find ignores it (read.go sets a skip only
// when positive); over an image's view with changed keys it must not
// panic.
func TestReview7NegativeSkip(t *testing.T) {
	h := newR7(t)
	h.insert("c", bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "_id", Value: int32(2)}})
	img := h.image()
	h.insert("c", bson.D{{Key: "_id", Value: int32(3)}})
	h.pagesMustNotPanic(img.LSN+1, []r7Read{
		{"skip -1", workdb.Query{Skip: -1}},
		{"skip -1 limit 1", workdb.Query{Skip: -1, Limit: 1}},
		{"limit -2", workdb.Query{Limit: -2}},
	})
}

// pagesMustNotPanic compares each read at lsn with a full view's answer,
// and reports a read over an image's view that panics.
func (h *r7) pagesMustNotPanic(lsn int64, reads []r7Read) {
	h.t.Helper()
	for _, rd := range reads {
		var err any
		func() {
			defer func() { err = recover() }()
			h.compare(h.b.Timeline, []int64{lsn}, []string{"c"}, []r7Read{rd})
		}()
		if err != nil {
			h.noScratch()
			h.dropViews()
			plain := *h.r
			plain.NoImages = true
			want := h.readOne(&plain, h.b.Timeline, lsn, "c", rd.q)
			h.t.Errorf("%s (skip %d, limit %d) panics: %v; a full view answers %s", rd.name, rd.q.Skip, rd.q.Limit, err, want)
			h.dropViews()
		}
	}
}

// The largest limit (what --limit accepts: any non-negative int64) with a
// skip: the overlay's end of page, skip + limit, overflows.
func TestReview7HugeLimit(t *testing.T) {
	h := newR7(t)
	h.insert("c", bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "_id", Value: int32(2)}})
	img := h.image()
	h.insert("c", bson.D{{Key: "_id", Value: int32(3)}})
	reads := []r7Read{
		{"skip 1 limit max", workdb.Query{Skip: 1, Limit: math.MaxInt64}},
		{"limit max", workdb.Query{Limit: math.MaxInt64}},
		{"skip max limit max", workdb.Query{Skip: math.MaxInt64, Limit: math.MaxInt64}},
	}
	h.pagesMustNotPanic(img.LSN+1, reads)
}

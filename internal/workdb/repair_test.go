package workdb_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// A repair of more than 5,000 keys of one collection goes key by key,
// by queries of a thousand _ids where reads by _id are indexed
// (ScanReads unset, as on MongoDB) and by one scan of the collection on
// FerretDB: an application's uncommitted change to another document of
// the collection stays either way. (Until review31, FerretDB rebuilt the
// collection from the log past 5,000 keys, and that change was lost.)
func TestLargeRepairKeepsOtherDocuments(t *testing.T) {
	t.Parallel()
	const touched = 5001
	for _, scans := range []bool{false, true} {
		_, r, b := waltest.Project(t)
		ctx := context.Background()
		w := commit.New().Open(r, b)
		var docs []bson.Raw
		for i := 0; i <= touched; i++ {
			raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: 1}})
			docs = append(docs, raw)
		}
		res, err := w.Insert(ctx, "c", docs, wal.CommitInfo{})
		if err != nil {
			t.Fatal(err)
		}
		// A write that did not commit changed the first 5,001 documents;
		// an application changed the last one and did not commit.
		c := w.DB.Collection("c")
		lt := bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: touched}}}}
		if _, err := c.DeleteMany(ctx, lt); err != nil {
			t.Fatal(err)
		}
		var changed []any
		var keys []wal.KeyRef
		for i := 0; i < touched; i++ {
			changed = append(changed, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: 99}})
			raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
			keys = append(keys, wal.KeyRef{Coll: "c", Key: wal.KeyOf(bson.Raw(raw).Lookup("_id"))})
		}
		// It also inserted documents the log does not hold.
		for i := 0; i < 10; i++ {
			changed = append(changed, bson.D{{Key: "_id", Value: int32(100000 + i)}})
			raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(100000 + i)}})
			keys = append(keys, wal.KeyRef{Coll: "c", Key: wal.KeyOf(bson.Raw(raw).Lookup("_id"))})
		}
		if _, err := c.InsertMany(ctx, changed); err != nil {
			t.Fatal(err)
		}
		if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: touched}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}}); err != nil {
			t.Fatal(err)
		}

		w.ScanReads = scans
		if err := w.Repair(ctx, res.Head, keys); err != nil {
			t.Fatal(err)
		}
		committed, err := c.CountDocuments(ctx, bson.D{{Key: "v", Value: 1}})
		if err != nil {
			t.Fatal(err)
		}
		var app bson.M
		if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: touched}}).Decode(&app); err != nil {
			t.Fatal(err)
		}
		kept := app["v"] == int32(7)
		all, err := c.CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if committed != touched || !kept || all != touched+1 {
			t.Errorf("scans %v: %d documents back at v 1 (want %d), %d in all (want %d), the application's change kept: %v (want true)",
				scans, committed, touched, all, touched+1, kept)
		}
	}
}

package workdb_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// A repair of more than 5,000 keys of one collection goes key by key on
// an engine whose reads by _id are indexed (ScanReads unset, as on
// MongoDB): an application's uncommitted change to another document of
// the collection stays. On FerretDB, where each 1,000 keys cost a scan,
// the collection is rebuilt from the log instead, and that change is lost
// (ARCHITECTURE).
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
		switch {
		case !scans && (committed != touched || !kept):
			t.Errorf("key by key: %d documents back at v 1 (want %d), the application's change kept: %v (want true)", committed, touched, kept)
		case scans && (committed != touched+1 || kept):
			t.Errorf("rebuilt: %d documents at v 1 (want %d), the application's change kept: %v (want false)", committed, touched+1, kept)
		}
	}
}

package workdb

import (
	"context"
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
)

// withStoredID gives the _id the engine stores for the _id as sent
// (inserted as is, read back): -0.0, nested documents whose _id is not
// first, at any depth, in arrays. On a FerretDB server too, which argon
// treats the same way (ScanReads).
func TestWithStoredIDMatchesTheEngine(t *testing.T) {
	srv := enginetest.Start(t)
	if !srv.Embedded && !srv.FerretDB {
		t.Skip("argon normalises _id only on FerretDB")
	}
	ctx := context.Background()
	c := srv.Client.Database(srv.DB + "_w").Collection("c")
	negz := math.Copysign(0, -1)
	ids := []any{
		negz,
		bson.D{{Key: "a", Value: negz}},
		bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 2}},
		bson.D{{Key: "x", Value: bson.D{{Key: "b", Value: 1}, {Key: "_id", Value: 2}}}},
		bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "b", Value: 1}, {Key: "_id", Value: 3}}}}},
		bson.D{{Key: "a", Value: bson.A{negz}}},
		bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: bson.D{{Key: "q", Value: 1}, {Key: "_id", Value: negz}}}},
	}
	for i, id := range ids {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "i", Value: i}})
		if _, err := c.InsertOne(ctx, raw); err != nil {
			t.Fatalf("case %d: insert %v: %v", i, bson.Raw(raw), err)
		}
		back, err := c.FindOne(ctx, bson.D{{Key: "i", Value: i}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		norm, err := withStoredID(raw)
		if err != nil {
			t.Fatal(err)
		}
		want, got := norm.Lookup("_id"), back.Lookup("_id")
		if got.Type != want.Type || string(got.Value) != string(want.Value) {
			t.Errorf("case %d: the engine stored %v, withStoredID gives %v", i, got, want)
		}
	}
	if err := c.Database().Drop(ctx); err != nil {
		t.Fatal(err)
	}
}

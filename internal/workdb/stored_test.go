package workdb

import (
	"bytes"
	"context"
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
)

// The documents storedAsSent accepts come back from the engine byte for
// byte; the ones it rejects really are changed by the engine, or the
// shortcut would be pointless for them.
func TestStoredAsSent(t *testing.T) {
	srv := enginetest.Start(t)
	if !srv.Embedded {
		t.Skip("the shortcut is for the embedded engine")
	}
	ctx := context.Background()
	c := srv.Client.Database(srv.DB + "_w").Collection("c")
	cases := []struct {
		doc  bson.D
		same bool
	}{
		{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: bson.D{{Key: "x", Value: 1.5}, {Key: "y", Value: bson.A{"s", int64(2), bson.D{{Key: "z", Value: true}}}}}}}, true},
		{bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: bson.D{{Key: "_id", Value: 1}, {Key: "b", Value: 2}}}}, true},
		{bson.D{{Key: "_id", Value: 3}, {Key: "n", Value: bson.D{{Key: "b", Value: 2}, {Key: "_id", Value: 1}}}}, false},
		{bson.D{{Key: "_id", Value: 4}, {Key: "z", Value: math.Copysign(0, -1)}}, false},
		{bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 5}}, false},
		{bson.D{{Key: "_id", Value: 6}, {Key: "arr", Value: bson.A{bson.D{{Key: "k", Value: 1}, {Key: "_id", Value: 2}}}}}, false},
	}
	for _, tc := range cases {
		raw, _ := bson.Marshal(tc.doc)
		if got := storedAsSent(raw); got != tc.same {
			t.Errorf("storedAsSent(%v) = %v, want %v", bson.Raw(raw), got, tc.same)
		}
		if _, err := c.InsertOne(ctx, raw); err != nil {
			t.Fatal(err)
		}
		id := bson.Raw(raw).Lookup("_id")
		back, err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		if same := bytes.Equal(back, raw); same != tc.same {
			t.Errorf("engine returned %v for %v: same=%v, storedAsSent said %v", back, bson.Raw(raw), same, tc.same)
		}
	}
}

package store

import (
	"context"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Review (passes): on the embedded engine {_id: s} (answered from the
// engine's pushdown on _ferretdb_sjson->'$._id') finds exactly what
// {_id: {$in: [s]}} finds, for strings whose JSON form has escapes.
func TestReviewIDEqualityMatchesInForEscapedStrings(t *testing.T) {
	dir := t.TempDir()
	client := engineClient(t, dir)
	ctx := context.Background()
	c := client.Database("d").Collection("c")
	ids := []any{"a<b>&c", "line\u2028sep\u2029", "nul\x00byte", "tab\tq\"b\\s/", "é€𝄞", "\x7f\x01", "", bson.NewObjectID()}
	for _, id := range ids {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
	}
	// With argon's _id index too, as the engine's lookups use it.
	if colls, err := idIndexes(filepath.Join(dir, "d.sqlite"), true, nil); err != nil || len(colls) != 1 {
		t.Fatalf("index: %v %v", colls, err)
	}
	for _, id := range ids {
		eq, err := c.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		in, err := c.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{id}}}}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		cur, err := c.Find(ctx, bson.D{{Key: "_id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			n++
		}
		if eq != 1 || in != 1 || n != 1 {
			t.Errorf("%q: count {_id: v} %d, $in %d, find %d", id, eq, in, n)
		}
	}
}

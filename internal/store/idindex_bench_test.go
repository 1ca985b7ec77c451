package store

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkEngineUpdateMany times the embedded engine's own updateMany of
// 2,000 documents ($inc on every one), on a collection without argon's
// _id index and with it: the engine writes each document back with an
// UPDATE by the _id expression (see idIndexes).
//
//	go test -run '^$' -bench EngineUpdateMany -benchtime 3x ./internal/store/
func BenchmarkEngineUpdateMany(b *testing.B) {
	dir := b.TempDir()
	e, err := StartEngine(dir, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer e.Stop()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(e.URI))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(ctx)
	const n = 2000
	for _, indexed := range []bool{false, true} {
		b.Run(fmt.Sprintf("indexed=%v", indexed), func(b *testing.B) {
			c := client.Database("app").Collection("c")
			if err := c.Drop(ctx); err != nil {
				b.Fatal(err)
			}
			docs := make([]any, n)
			for i := range docs {
				docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "n", Value: 0}}
			}
			if _, err := c.InsertMany(ctx, docs); err != nil {
				b.Fatal(err)
			}
			if indexed {
				if err := IndexIDsIn(dir, "app"); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

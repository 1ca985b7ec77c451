package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// An application's open cursor holds a read snapshot; IndexIDs's
// wal_checkpoint(TRUNCATE) then waits for it while holding the WAL write
// lock, so writes of the engine stall.
func TestReviewCheckpointStallsWriters(t *testing.T) {
	dir := t.TempDir()
	e, err := StartEngine(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(e.URI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database("app")
	a := db.Collection("a")
	for i := 0; i < 300; i++ {
		if _, err := a.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("x%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	s := &Store{dataDir: dir}
	if err := s.IndexIDs("app"); err != nil {
		t.Fatal(err)
	}
	cur, err := a.Find(ctx, bson.D{}, options.Find().SetBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(ctx)
	cur.Next(ctx)
	// an application creates a collection: it has no argon index yet
	if _, err := db.Collection("b").InsertOne(ctx, bson.D{{Key: "_id", Value: "b1"}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.IndexIDs("app") }()
	time.Sleep(300 * time.Millisecond)
	w := time.Now()
	_, werr := a.InsertOne(ctx, bson.D{{Key: "_id", Value: "during"}})
	t.Logf("application insert during IndexIDs: %v, err %v", time.Since(w), werr)
	err = <-done
	t.Logf("IndexIDs: %v, err %v", time.Since(start), err)
	_ = filepath.Join
}

package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Review (passes): a dropDatabase sent unacknowledged (w: 0, moreToCome),
// pipelined on one connection
// ahead of 50 inserts, is held while the indexer has the file open, and
// the inserts that follow it are all there once the serve has stopped.
func TestReviewServeIndexerHoldsUnacknowledgedDrop(t *testing.T) {
	held, release := make(chan string, 1), make(chan struct{})
	var once sync.Once
	testIndexHold = func(db string) {
		if db != "victim" {
			return
		}
		once.Do(func() {
			held <- db
			<-release
		})
	}
	defer func() { testIndexHold = nil }()
	dir := t.TempDir()
	ctx := context.Background()
	u, stop := serveAt(t, dir)
	client, err := mongo.Connect(options.Client().ApplyURI(u).SetMaxPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	coll := client.Database("victim").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "old"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the indexer never looked at the new database")
	}
	w0 := options.Database().SetWriteConcern(writeconcern.Unacknowledged())
	if err := client.Database("victim", w0).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		close(release)
	}()
	var want []string
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("new%02d", i)
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	_ = client.Disconnect(ctx)
	stop()

	client = engineClient(t, filepath.Join(dir, "data"))
	cur, err := client.Database("victim").Collection("c").Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.ID)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after a w:0 drop and 50 acknowledged inserts: %v, want %v", got, want)
	}
}

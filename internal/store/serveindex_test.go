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
)

// serveWithData runs argon serve over a new workspace folder until the
// test ends, and returns the folder's data directory and a client.
func serveWithData(t *testing.T) (string, *mongo.Client) {
	t.Helper()
	dir := t.TempDir()
	u, _ := serveAt(t, dir)
	client, err := mongo.Connect(options.Client().ApplyURI(u))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return filepath.Join(dir, "data"), client
}

// waitIndexed waits until collection coll of database file db has
// argon's _id index, and fails the test when it has none after a minute
// (the serve adds it in the background).
func waitIndexed(t *testing.T, data, db, coll string) {
	t.Helper()
	file := filepath.Join(data, db+".sqlite")
	deadline := time.Now().Add(time.Minute)
	for {
		tb := tableOf(t, file, coll)
		p := plan(t, file, tb)
		if strings.Contains(p, idIndexPrefix+tb) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s.%s: plan %q after a minute, want argon's index", db, coll, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Collections created while argon serve runs get argon's _id index too:
// in a database the serve had at its start, in a new database, after a
// collection was dropped and created again, after a whole database was,
// and after a rename.
func TestServeIndexesNewCollections(t *testing.T) {
	data, client := serveWithData(t)
	ctx := context.Background()
	insert := func(db, coll string, id any) {
		t.Helper()
		if _, err := client.Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
	}
	insert("one", "a", "x")
	waitIndexed(t, data, "one", "a")
	insert("one", "b", "x")
	waitIndexed(t, data, "one", "b")
	if err := client.Database("two").CreateCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, data, "two", "c")
	if _, err := client.Database("two").Collection("u").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, data, "two", "u")

	// Dropped and created again: a new table, which the serve indexes
	// although it had seen the collection's name indexed.
	if err := client.Database("one").Collection("a").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	insert("one", "a", "y")
	waitIndexed(t, data, "one", "a")
	if err := client.Database("two").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	insert("two", "c", "z")
	waitIndexed(t, data, "two", "c")
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "one.b"}, {Key: "to", Value: "one.r"}}).Err(); err != nil {
		t.Fatal(err)
	}
	insert("one", "b", "w")
	waitIndexed(t, data, "one", "b")
	waitIndexed(t, data, "one", "r")
}

// The serve's indexer and a dropDatabase never overlap (see
// serveIndexer): a dropDatabase waits while the indexer has the file
// open, and writes acknowledged after the database was created again are
// all there once the serve has stopped and the files are read afresh.
func TestServeIndexerWaitsForNoDrop(t *testing.T) {
	dir, client, stop, release := serveWithVictimHeld(t, options.Client())
	ctx := context.Background()
	dropped := make(chan error, 1)
	go func() { dropped <- client.Database("victim").Drop(ctx) }()
	select {
	case err := <-dropped:
		t.Fatalf("dropDatabase answered (%v) while the indexer had the file open", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-dropped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		// Measured without the wait: the engine's drop, run with the
		// indexer's connection open, never ends (and stopping the serve
		// then hangs too: the test fails by its -timeout).
		t.Fatal("dropDatabase did not end a minute after the indexer closed the file")
	}
	want := insertFifty(t, client)
	_ = client.Disconnect(ctx)
	stop()
	if got := victimIDs(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after the drop and 50 acknowledged inserts: %v, want %v", got, want)
	}
}

// serveWithVictimHeld runs argon serve over a new workspace folder whose
// indexer, once, keeps database victim's file open until release is
// closed: it returns once that has happened, after a first insert into
// victim.c by client (made with opts), and returns the folder, the client
// and the serve's stop.
func serveWithVictimHeld(t *testing.T, opts *options.ClientOptions) (dir string, client *mongo.Client, stop func(), release chan struct{}) {
	t.Helper()
	held := make(chan string, 1)
	release = make(chan struct{})
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
	t.Cleanup(func() { testIndexHold = nil })
	dir = t.TempDir()
	u, stop := serveAt(t, dir)
	client, err := mongo.Connect(opts.ApplyURI(u))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Database("victim").Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: "old"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the indexer never looked at the new database")
	}
	return dir, client, stop, release
}

// insertFifty inserts new00 to new49 into victim.c, each acknowledged,
// and returns their _ids.
func insertFifty(t *testing.T, client *mongo.Client) []string {
	t.Helper()
	var ids []string
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("new%02d", i)
		if _, err := client.Database("victim").Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// victimIDs reads the _ids of victim.c, in order, from the files of the
// stopped serve of workspace folder dir, with an engine of its own.
func victimIDs(t *testing.T, dir string) []string {
	t.Helper()
	ctx := context.Background()
	client := engineClient(t, filepath.Join(dir, "data"))
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
	var ids []string
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	return ids
}

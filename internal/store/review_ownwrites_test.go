package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Found by an adversarial review: the client's command monitor counts a
// write when the driver starts it, the guard when it passes it on. A write
// the client started that never reached the engine (here one the guard
// refuses and answers itself; equally one whose connection failed before
// it was sent) left the client's count one ahead of the guard's, and a
// single foreign write between the two tokens then evened the counts:
// keepCleanServed recorded as clean a token that named an application's
// uncommitted write. A failed write now makes the counts untrusted.
func TestReviewKeepCleanServedRefusedOwnWriteHidesForeignWrite(t *testing.T) {
	dir := t.TempDir()
	uri, _ := serveAt(t, dir)
	ctx := context.Background()

	// The argon process: a Store with the own-writes monitor, as Open
	// makes one for a client of argon serve.
	s, err := openURI(ctx, uri, 10*time.Second, false, nil, "argon")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Client.Disconnect(ctx) })
	s.Embedded, s.Served = true, true
	s.dataDir = filepath.Join(dir, "data")
	f := s.DBFiles()

	// An application, on its own connection.
	app, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Disconnect(ctx) })

	own := s.Client.Database("w").Collection("c")
	if _, err := own.InsertOne(ctx, bson.D{{Key: "_id", Value: "committed"}}); err != nil {
		t.Fatal(err)
	}
	// The database is clean here (a status scan found it so).
	fp, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetClean("w", fp); err != nil {
		t.Fatal(err)
	}

	// The argon process's write: one request the guard refuses (counted
	// by the monitor, never by the guard) and one that goes through.
	if _, err := own.InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}, {Key: "v", Value: bson.MinKey{}}}); err == nil {
		t.Fatal("the guard took a MinKey")
	}
	if _, err := own.InsertOne(ctx, bson.D{{Key: "_id", Value: "argon's"}}); err != nil {
		t.Fatal(err)
	}
	// Meanwhile an application writes and does not commit.
	if _, err := app.Database("w").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "application's uncommitted"}}); err != nil {
		t.Fatal(err)
	}

	if err := f.KeepClean("w"); err != nil {
		t.Fatal(err)
	}
	now, err := WriteToken(ctx, s.Client, "w")
	if err != nil {
		t.Fatal(err)
	}
	if f.Clean("w") == now {
		t.Errorf("recorded %q as clean: it names the application's uncommitted insert (status would say nothing changed)", now)
	}
}

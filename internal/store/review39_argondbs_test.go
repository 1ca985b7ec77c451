package store

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// makeMetadata makes db a metadata database as wal.EnsureSchema does: the
// log's unique indexes on slots and branches, and a slot.
func makeMetadata(t *testing.T, db *mongo.Database) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Collection("slots").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "tl", Value: 1}, {Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("branches").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "project", Value: 1}, {Key: "name", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("slots").InsertOne(ctx, bson.D{{Key: "_id", Value: "s1"}, {Key: "tl", Value: "t"}, {Key: "n", Value: 0}}); err != nil {
		t.Fatal(err)
	}
}

// review39: argon serve took any database where argon's client wrote a
// collection named slots or leases for a metadata database, so a branch
// whose data held such a collection (a booking application's slots, a
// property application's leases) refused every write of its
// applications ("holds argon's log"), and went on refusing after the
// serve restarted. A metadata database is now known by the log's unique
// index on slots, and never when it holds a working database's marker.
// Checked while the serve runs and, after a restart, from the files.
func TestReview39ApplicationsWriteCollectionsNamedLikeTheLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	uri, stop := serveAt(t, dir)
	ctx := context.Background()
	argon, app := connectAs(t, uri, holdAppPrefix+"cli"), connectAs(t, uri, "")
	// A working database (its marker) whose data has slots and leases,
	// and even an index named like the log's on its slots; an export
	// target with slots and leases and no marker; a metadata database.
	work, export := argon.Database("ar_p__main"), argon.Database("shop_export")
	if _, err := work.Collection("_argon").InsertOne(ctx, bson.D{{Key: "_id", Value: "marker"}}); err != nil {
		t.Fatal(err)
	}
	for _, db := range []*mongo.Database{work, export} {
		for _, coll := range []string{"slots", "leases"} {
			if _, err := db.Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: "mon-9am"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The log's index on slots, in the working database and in the
	// export target (review41: the export was taken for a log).
	for _, db := range []*mongo.Database{work, export} {
		if _, err := db.Collection("slots").Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "tl", Value: 1}, {Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
			t.Fatal(err)
		}
	}
	makeMetadata(t, argon.Database("argon_p"))
	check := func(when string, app *mongo.Client) {
		t.Helper()
		for _, db := range []string{"ar_p__main", "shop_export"} {
			for _, coll := range []string{"slots", "leases", "users"} {
				if _, err := app.Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
					t.Errorf("%s: an application's insert into %s.%s: %v, want it written", when, db, coll, err)
				}
			}
		}
		_, err := app.Database("argon_p").Collection("slots").InsertOne(ctx, bson.D{{Key: "_id", Value: "forged"}})
		if err == nil || !strings.Contains(err.Error(), "holds argon's log") {
			t.Errorf("%s: an application's insert into the metadata database's slots: %v, want the serve's refusal", when, err)
		}
	}
	check("while the serve runs", app)
	stop()
	uri, _ = serveAt(t, dir)
	check("after a restart", connectAs(t, uri, ""))
}

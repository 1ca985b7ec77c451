package main

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// review36Deleted: a served workspace with main {_id: 1} and a branch g
// (holding {_id: 2}) deleted; it returns the run function, the app's
// client and g's (dropped) database name.
func review36Deleted(t *testing.T, p string) (func(args ...string) string, *mongo.Client, string) {
	dir, run := r15Workspace(t, p)
	must := mustRun(t, run)
	must("init", p)
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	app := serveWorkspace(t, dir)
	var db string
	for _, l := range strings.Split(must("status", "--branch", "g"), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "database" {
			db = f[1]
		}
	}
	must("branch", "delete", "g", "--yes")
	return must, app, db
}

func review36Exists(t *testing.T, app *mongo.Client, db string) bool {
	names, err := app.ListDatabaseNames(context.Background(), bson.D{{Key: "name", Value: db}})
	if err != nil {
		t.Fatal(err)
	}
	return len(names) > 0
}

// renameCollection runs on admin (classify: db ""), so droppedRefusal
// never sees the target: an application's collection moved into the
// deleted branch's database re-creates it, acknowledged.
func TestReview36RenameIntoADeletedBranchsDatabase(t *testing.T) {
	_, app, db := review36Deleted(t, "r36ren")
	ctx := context.Background()
	if _, err := app.Database("appdb").Collection("x").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	err := app.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "appdb.x"}, {Key: "to", Value: db + ".c"}}).Err()
	t.Logf("renameCollection appdb.x -> %s.c: %v", db, err)
	if err == nil || review36Exists(t, app, db) {
		t.Errorf("renameCollection into %s, the deleted branch's database: acknowledged (%v), database exists: %v", db, err, review36Exists(t, app, db))
	}
}

// aggregate $out / $merge naming the deleted branch's database from
// another database: counted against the source database.
func TestReview36OutIntoADeletedBranchsDatabase(t *testing.T) {
	_, app, db := review36Deleted(t, "r36out")
	ctx := context.Background()
	if _, err := app.Database("appdb").Collection("x").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	for _, stage := range []bson.D{
		{{Key: "$out", Value: bson.D{{Key: "db", Value: db}, {Key: "coll", Value: "c"}}}},
		{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "db", Value: db}, {Key: "coll", Value: "c"}}}}}},
	} {
		cur, err := app.Database("appdb").Collection("x").Aggregate(ctx, mongo.Pipeline{stage})
		if err == nil {
			_ = cur.Close(ctx)
		}
		t.Logf("%v: %v; %s exists: %v", stage, err, db, review36Exists(t, app, db))
		if err == nil && review36Exists(t, app, db) {
			t.Errorf("%v into the deleted branch's database %s was acknowledged and re-created it", stage, db)
		}
	}
}

// Was a defect (fixed in the twenty-third session). A new branch of the deleted one's name gets the same database name; an
// application that takes it from argon status and writes before argon
// built it (the flow 9394f7b's FillIn serves) is refused as "its branch
// was deleted", though the branch exists.
func TestReview36NewBranchOfADeletedNameBeforeItsBuilt(t *testing.T) {
	must, app, db := review36Deleted(t, "r36new")
	must("branch", "create", "g")
	st := must("status", "--branch", "g")
	if !strings.Contains(st, db) {
		t.Skipf("the new g has another database:\n%s", st)
	}
	_, err := app.Database(db).Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: "app"}})
	if err != nil {
		t.Errorf("an application's insert into %s, the working database of the live branch g (not built yet): %v", db, err)
	}
}

// An application drops and re-seeds the working database of its branch
// right after argon restore/rebuilt it: argon's own writes since end the
// note; the app's drop is not argon's.
func TestReview36AppReseedAfterRestore(t *testing.T) {
	dir, run := r15Workspace(t, "r36rs")
	must := mustRun(t, run)
	must("init", "r36rs")
	must("insert", "c", `{"_id": 1}`)
	app := serveWorkspace(t, dir)
	var db string
	for _, l := range strings.Split(must("status"), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "database" {
			db = f[1]
		}
	}
	ctx := context.Background()
	if _, err := app.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 5}}); err != nil {
		t.Fatal(err)
	}
	must("restore", "--yes")
	if err := app.Database(db).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 7}}); err != nil {
		t.Errorf("re-seed after restore: %v", err)
	}
	must("checkout", "main", "--force")
	if _, err := app.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 8}}); err != nil {
		t.Errorf("write after checkout --force: %v", err)
	}
}

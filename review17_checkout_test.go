package main

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// r17App connects an application to argon serve's URI and returns the
// name of branch's working database.
func r17App(t *testing.T, uri string, run func(dir string, args ...string) (int, string, string), dir, branch string) (*mongo.Client, string) {
	t.Helper()
	code, out, errOut := run(dir, "status", "--branch", branch, "--json")
	if code != 0 || !strings.Contains(out, `"database":"`) {
		t.Fatalf("status of %s: exit %d, %s %s", branch, code, out, errOut)
	}
	db := out[strings.Index(out, `"database":"`)+len(`"database":"`):]
	db = db[:strings.Index(db, `"`)]
	app, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Disconnect(context.Background()) })
	return app, db
}

// DEFECT. `argon checkout -b NEW START --force` whose START does not
// resolve discards the current branch's uncommitted changes, then fails
// (exit 4) without creating or switching anything. runCheckout checks
// NEW first (951aad3: "the target is checked first"), but not START:
// leaveCurrent restores the working database before runBranchCreate
// resolves START. git refuses `git checkout -f -b new nosuch` before it
// touches the working tree. An error leaves the application's work
// destroyed.
func TestReview17CheckoutForceWithABadStartKeepsChanges(t *testing.T) {
	dir, uri, run := r15ServedWorkspace(t, "r17co")
	app, db := r17App(t, uri, run, dir, "main")
	ctx := context.Background()
	if _, err := app.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(dir, "checkout", "-b", "new", "nosuch", "--force")
	if code != 4 {
		t.Errorf("checkout -b new nosuch --force: exit %d, %q, %q; want 4", code, out, errOut)
	}
	if strings.Contains(errOut, "discarded") {
		t.Errorf("checkout -b new nosuch --force failed and said %q", errOut)
	}
	n, err := app.Database(db).Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: "app"}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("after the failed checkout -b new nosuch --force, the application's uncommitted document is gone from main's working database (stderr %q)", errOut)
	}
	// The same for a NEW that runBranchCreate refuses: a tag's name.
	if code, _, errOut := run(dir, "tag", "v1"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut = run(dir, "checkout", "-b", "v1", "--force")
	if code == 0 {
		t.Fatalf("checkout -b v1 --force (v1 a tag): exit 0, %q", out)
	}
	if n, err := app.Database(db).Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil || n != 1 {
		t.Errorf("after the failed checkout -b v1 --force (v1 a tag; exit %d, %q), the application's uncommitted document is gone (%d, %v)", code, errOut, n, err)
	}
}

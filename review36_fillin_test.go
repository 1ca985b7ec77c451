package main

// Review 36: workdb.Branch.FillIn (9394f7b) and serve's refusal of writes
// to a database argon dropped (17eccfe).

import (
	"context"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/wal"
)

// review36Unbuilt: a project whose main holds docs (and, by setup, more),
// and a branch f argon has not built; it returns the workspace, an
// application's client and f's working database (never built).
func review36Unbuilt(t *testing.T, p, docs string, setup ...[]string) (string, func(args ...string) (int, string, string), *mongo.Database) {
	t.Helper()
	dir, app, _ := projectOnServer(t, p, docs)
	run := func(args ...string) (int, string, string) { return review5Argon(dir, args...) }
	must := mustRun(t, run)
	for _, s := range setup {
		must(s...)
	}
	must("branch", "create", "f")
	if st := must("status", "--branch", "f", "--json"); !strings.Contains(st, `"built":false`) {
		t.Fatalf("f is built already: %s", st)
	}
	return dir, run, app.Database(wal.DatabasePrefix(testMetaDB()) + p + "__f")
}

func testMetaDB() string {
	if v := os.Getenv("ARGON_DB"); v != "" {
		return v
	}
	return wal.DefaultDatabase
}

// Was a defect (fixed in the twenty-third session). The application writes {_id: 1} (a 32-bit int) where the committed
// document is {_id: 1L}: one _id to the server. FillIn compares exact
// key bytes (wal.KeyOf), finds 1L "missing" and inserts it: E11000, and
// every command on f fails, restore included.
func TestReview36FillInIDOfAnotherNumberType(t *testing.T) {
	for _, tc := range []struct{ name, committed string }{
		{"long", `{"_id": {"$numberLong": "1"}, "n": "a"}`},
		{"double", `{"_id": {"$numberDouble": "1.0"}, "n": "a"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, run, db := review36Unbuilt(t, "r36num"+tc.name, tc.committed)
			if _, err := db.Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: int32(1)}, {Key: "n", Value: "app"}}); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := run("status", "--branch", "f", "--verbose")
			t.Logf("status: exit %d\n%s%s", code, out, errOut)
			if code != 0 {
				t.Errorf("status of f after the application wrote _id 1 over committed %s: exit %d\n%s%s", tc.committed, code, out, errOut)
			}
			code, out, errOut = run("restore", "--branch", "f", "--yes")
			if code != 0 {
				t.Errorf("restore --branch f: exit %d %s%s", code, out, errOut)
			}
		})
	}
}

// Was a defect (fixed in the twenty-third session). The application's document takes a value of a committed unique index
// (no index yet: argon never built the database). FillIn inserts the
// committed documents, then fails creating the unique index.
func TestReview36FillInUniqueCollision(t *testing.T) {
	_, run, db := review36Unbuilt(t, "r36uniq", `{"_id": 1, "email": "a@x"}`,
		[]string{"index", "create", "c", `{"email": 1}`, "--unique", "--name", "email_1"})
	if _, err := db.Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: int32(2)}, {Key: "email", Value: "a@x"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("status", "--branch", "f", "--verbose")
	t.Logf("status: exit %d\n%s%s", code, out, errOut)
	if code != 0 {
		t.Errorf("status of f: exit %d %s", code, errOut)
	}
	code, out, errOut = run("restore", "--branch", "f", "--yes")
	if code != 0 {
		t.Errorf("restore --branch f: exit %d %s%s", code, out, errOut)
	}
	if code, out, errOut = run("status", "--branch", "f"); code != 0 || !strings.Contains(out, "changes\tnone") {
		t.Errorf("status after restore: exit %d\n%s%s", code, out, errOut)
	}
}

// Was a defect (fixed in the twenty-third session). The application created an index on the committed index's keys under
// another name: the committed one cannot be created beside it.
func TestReview36FillInSameKeysOtherName(t *testing.T) {
	_, run, db := review36Unbuilt(t, "r36keys", `{"_id": 1, "n": "a"}`,
		[]string{"index", "create", "c", `{"n": 1}`, "--name", "by_n"})
	if _, err := db.Collection("c").Indexes().CreateOne(context.Background(), mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("status", "--branch", "f", "--verbose")
	t.Logf("status: exit %d\n%s%s", code, out, errOut)
	if code != 0 {
		t.Errorf("status of f: exit %d %s", code, errOut)
	}
}

// The application created an index under a committed name with another
// spec: it stays, and shows as an index change.
func TestReview36FillInSameNameOtherSpec(t *testing.T) {
	_, run, db := review36Unbuilt(t, "r36name", `{"_id": 1, "n": "a", "m": 1}`,
		[]string{"index", "create", "c", `{"n": 1}`, "--name", "ix"})
	if _, err := db.Collection("c").Indexes().CreateOne(context.Background(), mongo.IndexModel{Keys: bson.D{{Key: "m", Value: 1}}, Options: options.Index().SetName("ix")}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("status", "--branch", "f", "--verbose")
	t.Logf("status: exit %d\n%s%s", code, out, errOut)
	if code != 0 || !strings.Contains(out, "1 index change") {
		t.Errorf("status of f: exit %d\n%s%s", code, out, errOut)
	}
	run("restore", "--branch", "f", "--yes")
	code, out, errOut = run("index", "list", "c", "--branch", "f")
	t.Logf("index list after restore: %s%s", out, errOut)
	if !strings.Contains(out, `"n"`) {
		t.Errorf("after restore, ix is not the committed {n: 1}: %s", out)
	}
}

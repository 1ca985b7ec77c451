package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// review23 (b6ee8c0, "Merges, resets and reverts read and delete by _id
// on the embedded engine"). These tests held up: they pin what the
// review tried against the point reads (preImages) and the delete
// statement per string _id (Branch.deleteIDs) on both engines: the
// embedded one, and a FerretDB server when ARGON_TEST_URI is set.

// r23Workspace is r18Workspace on either engine: on a server, in a
// metadata database of its own, dropped at the end.
func r23Workspace(t *testing.T, p string) (string, func(args ...string) (int, string, string), func(args ...string) string) {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"ARGON_URI": "", "ARGON_DB": "", "ARGON_PROJECT": "", "ARGON_BRANCH": "", "ARGON_COMMIT_DATE": "",
		"ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir, "ARGON_SNAPSHOT_EVERY": ""}
	if uri := os.Getenv("ARGON_TEST_URI"); uri != "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		db := "argon_test_" + hex.EncodeToString(b[:])
		env["ARGON_URI"], env["ARGON_DB"] = uri, db
		t.Cleanup(func() { dropTestDatabases(uri, db) })
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		io, _, stdout, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return code, stdout.String(), errOut.String()
	}
	must := mustRun(t, run)
	must("init", p)
	return dir, run, must
}

// r23AppColl returns collection coll of branch main's working database as
// an application sees it: through argon serve on the embedded engine,
// on the server otherwise.
func r23AppColl(t *testing.T, dir string, must func(args ...string) string, coll string) *mongo.Collection {
	t.Helper()
	var db string
	for _, l := range strings.Split(must("status"), "\n") {
		if v, ok := strings.CutPrefix(l, "database\t"); ok {
			db = v
		}
	}
	uri := os.Getenv("ARGON_TEST_URI")
	if uri == "" {
		return serveWorkspace(t, dir).Database(db).Collection(coll)
	}
	app, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Disconnect(context.Background()) })
	return app.Database(db).Collection(coll)
}

// r23Clean fails the test unless main's working database is its
// committed state and fsck finds nothing.
func r23Clean(t *testing.T, must func(args ...string) string, what string) {
	t.Helper()
	if out := must("status"); !strings.Contains(out, "changes\tnone\n") {
		t.Errorf("%s: status:\n%s", what, out)
	}
	if out := must("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("%s: fsck:\n%s", what, out)
	}
}

// r23StringDocs inserts n documents {_id: "sNNNNN", u: i} into c with a
// unique index on u, and a branch f where every u moved up by 1,000,000
// and the last document took u = -1.
func r23StringDocs(must func(args ...string) string, n int) {
	var docs []string
	for i := 0; i < n; i++ {
		docs = append(docs, fmt.Sprintf(`{"_id": "s%05d", "u": %d}`, i, i))
	}
	must("insert", "c", "["+strings.Join(docs, ",")+"]")
	must("index", "create", "c", `{"u": 1}`, "--unique")
	must("branch", "create", "f")
	must("update", "c", `{}`, `{"$inc": {"u": 1000000}}`, "--many", "--branch", "f")
	must("update", "c", fmt.Sprintf(`{"_id": "s%05d"}`, n-1), `{"$set": {"u": -1}}`, "--branch", "f")
}

// A merge (three-way, and a fast-forward) of up to 100 (point reads),
// past 100 (one scan) and past 1,000 string _ids, whose inserts break a
// unique index after its deletes went through: an application inserted a
// document holding u = -1 once the merge held its lease (after every
// check). The merge must fail, and the working database must be the
// committed state plus the application's document.
func TestReview23ApplyInsertFailsAfterDeletes(t *testing.T) {
	for _, n := range []int{5, 150, 1200} {
		for _, ff := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d_ff=%v", n, ff), func(t *testing.T) {
				dir, run, must := r23Workspace(t, fmt.Sprintf("r23i%d%v", n, ff))
				r23StringDocs(must, n)
				if !ff {
					must("insert", "c", `{"_id": "zz", "u": -2}`)
				}
				before := must("find", "c", "--sort", `{"_id": 1}`)
				coll := r23AppColl(t, dir, must, "c")
				done := atLease(t, func(ctx context.Context) error {
					_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}, {Key: "u", Value: -1}})
					return err
				})
				code, out, errOut := run("merge", "f")
				if !done() {
					t.Fatal("the application's write did not happen")
				}
				if code == 0 {
					t.Errorf("merge f over the application's u = -1: exit 0, %q", out)
				}
				if st := must("status"); !strings.Contains(st, "changes\t1 added, 0 modified, 0 deleted\n") {
					t.Errorf("status after the failed merge (%q): %s", errOut, st)
				}
				if _, err := coll.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: "app"}}); err != nil {
					t.Fatal(err)
				}
				if after := must("find", "c", "--sort", `{"_id": 1}`); after != before {
					t.Errorf("the failed merge changed the working database")
				}
				r23Clean(t, must, "after the failed merge")
			})
		}
	}
}

// An application's uncommitted update, delete or insert of a string _id
// the merge writes, made once the merge held its lease: the merge must
// refuse, and leave the application's change in place.
func TestReview23ApplyRefusesAppChanges(t *testing.T) {
	for i, op := range []string{"update", "delete", "insert"} {
		for _, n := range []int{3, 150} {
			t.Run(fmt.Sprint(op, n), func(t *testing.T) {
				dir, run, must := r23Workspace(t, fmt.Sprintf("r23a%d%d", i, n))
				var docs []string
				for i := 0; i < n; i++ {
					docs = append(docs, fmt.Sprintf(`{"_id": "s%05d", "v": 0}`, i))
				}
				must("insert", "c", "["+strings.Join(docs, ",")+"]")
				must("branch", "create", "f")
				must("update", "c", `{}`, `{"$set": {"v": 1}}`, "--many", "--branch", "f")
				must("insert", "c", `{"_id": "new", "v": 1}`, "--branch", "f")
				must("insert", "c", `{"_id": "main", "v": 0}`)
				coll := r23AppColl(t, dir, must, "c")
				want := map[string]string{"update": "0 added, 1 modified, 0 deleted", "delete": "0 added, 0 modified, 1 deleted", "insert": "1 added, 0 modified, 0 deleted"}[op]
				done := atLease(t, func(ctx context.Context) error {
					var err error
					switch op {
					case "update":
						_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "s00001"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}})
					case "delete":
						_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: "s00001"}})
					case "insert":
						_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "new"}, {Key: "v", Value: "app"}})
					}
					return err
				})
				code, out, errOut := run("merge", "f")
				if !done() {
					t.Fatal("the application's write did not happen")
				}
				if code == 0 || !strings.Contains(errOut, "uncommitted") {
					t.Errorf("merge f over the application's %s: exit %d, %q, %q; want the refusal of an uncommitted change", op, code, out, errOut)
				}
				if st := must("status"); !strings.Contains(st, "changes\t"+want+"\n") {
					t.Errorf("status after the refused merge: %s", st)
				}
				if out := must("fsck"); !strings.Contains(out, " 0 problems") {
					t.Errorf("fsck: %s", out)
				}
			})
		}
	}
}

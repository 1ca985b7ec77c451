package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// review5Project makes project p on a fresh server with no argon serve in
// front (ARGON_URI: the working database is never known clean, so every
// insert asks the log), with {_id: 1} and {_id: 2} (32-bit ints)
// committed in c, then deletes {_id: 2} as an application would, without
// committing. It returns the workspace and an application's client.
func review5Project(t *testing.T, p string) (string, *mongo.Client) {
	t.Helper()
	dir, app, db := projectOnServer(t, p, `[{"_id": 1}, {"_id": 2}]`)
	if r, err := app.Database(db).Collection("c").DeleteOne(context.Background(), bson.D{{Key: "_id", Value: int32(2)}}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("application's delete: %v, %v", r, err)
	}
	return dir, app
}

// review5Argon runs an argon command line in-process and returns its exit
// code, output and error output.
func review5Argon(dir string, args ...string) (int, string, string) {
	io, _, out, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
	return code, out.String(), errOut.String()
}

// An application deleted the committed document {_id: 2} (a 32-bit int)
// and did not commit. A CLI insert or import of the same _id written as
// another number type (2.0, the 64-bit 2) is the same _id to the server
// (on a clean branch it fails on the duplicate key), but
// refuseDeletedIDs/committedIDs look the log up by the exact key bytes
// (wal.KeyOf: type byte + value), find nothing under the double's or the
// long's bytes, and let the write through. The commit then records a put
// of a second key for one _id over the application's uncommitted delete:
// the committed state at the head holds {_id: 2} AND {_id: 2.0}, which no
// MongoDB collection can hold. `argon find --at main` and `argon export`
// then fail with E11000 when they materialise the head, `argon restore`
// and any checkout of that state cannot build it, and `argon fsck` reports
// 0 problems. (Importing in upsert/merge mode looks the batch's pre-images
// up by value and maps a stored 2L onto the stored 2, but the document is
// gone, so nothing is mapped, and the same exact-bytes lookup misses.)
func TestReview5InsertOfADeletedIDAsAnotherNumberType(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		file string
	}{
		{name: "insert 2.0", args: []string{"insert", "c", `{"_id": 2.0, "v": "cli"}`}},
		{name: "insert 64-bit 2", args: []string{"insert", "c", `{"_id": {"$numberLong": "2"}, "v": "cli"}`}},
		{name: "import", args: []string{"import"}, file: `{"_id": {"$numberLong": "2"}, "v": "imp"}`},
		{name: "import upsert", args: []string{"import", "--mode", "upsert"}, file: `{"_id": {"$numberLong": "2"}, "v": "imp"}`},
		{name: "import merge", args: []string{"import", "--mode", "merge"}, file: `{"_id": 2.0, "v": "imp"}`},
		// Not new in these commits: refuseDeleted (an upsert by {_id:
		// value} that matched nothing) looks the log up by the same
		// exact bytes.
		{name: "update upsert by _id 2.0", args: []string{"update", "c", `{"_id": 2.0}`, `{"$set": {"x": 1}}`, "--upsert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := review5Project(t, "r5num")
			args := tc.args
			if tc.file != "" {
				f := filepath.Join(dir, "c.json")
				if err := os.WriteFile(f, []byte(tc.file+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append([]string{args[0], f}, args[1:]...)
			}
			code, out, errOut := review5Argon(dir, args...)
			_, log, _ := review5Argon(dir, "log", "--entries")
			_, findOut, findErr := review5Argon(dir, "find", "c", "--at", "main")
			if code != 1 || !strings.Contains(errOut, "uncommitted changes") {
				t.Errorf("argon %v after an application deleted the committed {_id: 2}: exit %d\n%s%s"+
					"want exit 1 and the uncommitted-changes refusal (on a clean branch it fails on the duplicate key)\n"+
					"log --entries:\n%s"+
					"find c --at main (the committed head):\n%s%s",
					args, code, out, errOut, log, findOut, findErr)
			}
			if strings.Contains(findErr, "duplicate key") {
				_, _, restoreErr := review5Argon(dir, "restore", "--yes")
				_, _, coErr := review5Argon(dir, "checkout", "-b", "copy")
				_, fsckOut, _ := review5Argon(dir, "fsck")
				t.Errorf("the committed head can no longer be materialised: %s\nrestore --yes: %scheckout -b copy: %sfsck: %s",
					strings.TrimSpace(findErr), restoreErr, coErr, fsckOut)
			}
		})
	}
}

// The same as TestReview5InsertOfADeletedIDAsAnotherNumberType on the
// embedded engine with argon serve in front, the setting of
// worktree_cli_insert_deleted.txtar (the application deletes through the
// serve; the database is then not known clean and the insert asks the
// log, by exact key bytes).
func TestReview5InsertDeletedOtherTypeScript(t *testing.T) {
	dir := t.TempDir()
	script := `# An application deleted the committed {_id: 2} and did not commit: an
# insert of 2.0 (the same _id to the server) must be refused too.
mkdir ws
cd ws
exec argon init demo
exec argon insert users '[{"_id": 1, "n": 1}, {"_id": 2, "n": 2}, {"_id": 3, "n": 3}]'
[!remote] exec argon serve &serve&
[!remote] waitserve
app $SERVE_URI ${WDB_PREFIX}demo__main delete users '{"_id": 2}'
exits 1 argon insert users '{"_id": 2.0, "n": 20}'
stderr 'uncommitted changes'
exits 1 argon insert users '{"_id": {"$numberLong": "2"}, "n": 20}'
stderr 'uncommitted changes'
exec argon find users --at main --sort '{"_id": 1}'
cmp stdout $WORK/head
[!remote] kill -INT serve
[!remote] wait serve
-- head --
{"_id":1,"n":1}
{"_id":2,"n":2}
{"_id":3,"n":3}
`
	if err := os.WriteFile(filepath.Join(dir, "review5_insert_deleted_other_type.txtar"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup:               setupScript,
		Condition: func(cond string) (bool, error) {
			if cond == "remote" {
				return os.Getenv("ARGON_TEST_URI") != "", nil
			}
			return false, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"app":       cmdApp,
			"exits":     cmdExits,
			"waitserve": cmdWaitServe,
		},
	})
}

// An upsert whose filter is not {_id: value} but whose new document's _id
// is known before it is sent (workdb.upsertID: the replacement's own _id,
// or $setOnInsert's) inserts a document of an _id the log holds and the
// working database lacks: an application deleted it and did not commit.
// Modify checks the log (refuseDeleted) only when the filter names the
// _id (intent != nil), so the upsert goes through and its commit records
// the application's delete plus the new document as a change of the
// committed {_id: 2}; argon status then shows nothing, the delete is gone
// without a trace. On a clean branch the same command fails on the
// duplicate key. The case refuseDeletedIDs now refuses for insert and
// import, reached through update/replace --upsert.
func TestReview5UpsertOfAKnownIDOverADeletedDocument(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"update setOnInsert", []string{"update", "c", `{"name": "bob"}`, `{"$setOnInsert": {"_id": 2}, "$set": {"x": 1}}`, "--upsert"}},
		{"replace with _id", []string{"replace", "c", `{"name": "bob"}`, `{"_id": 2, "name": "bob"}`, "--upsert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := review5Project(t, "r5ups")
			code, out, errOut := review5Argon(dir, tc.args...)
			_, status, _ := review5Argon(dir, "status", "-s")
			_, log, _ := review5Argon(dir, "log", "--entries")
			if code != 1 || !strings.Contains(errOut, "uncommitted changes") {
				t.Errorf("argon %v after an application deleted the committed {_id: 2}: exit %d\n%s%s"+
					"want exit 1 and the uncommitted-changes refusal\nstatus -s:\n%slog --entries:\n%s",
					tc.args, code, out, errOut, status, log)
			}
		})
	}
}

// What held (passes): the refusal reaches a deleted _id in the second
// insert batch (batchSize 1000), past foldKeys (the collection folded
// once), in a collection the application dropped whole, and in an
// import's second batch in upsert mode; nothing is committed and the
// application's delete is left as it was (the first batch's documents
// are repaired away).
func TestReview5InsertDeletedHolds(t *testing.T) {
	docs := func(from, n int, extra string) string {
		var b strings.Builder
		b.WriteString("[")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `{"_id": %d},`, from+i)
		}
		b.WriteString(extra + "]")
		return b.String()
	}
	for _, tc := range []struct {
		name string
		run  func(dir string) (int, string, string)
		drop bool
	}{
		{name: "second insert batch", run: func(dir string) (int, string, string) {
			return review5Argon(dir, "insert", "c", docs(5000, 1100, `{"_id": 2}`))
		}},
		{name: "past foldKeys", run: func(dir string) (int, string, string) {
			return review5Argon(dir, "insert", "c", docs(5000, 300, `{"_id": 2}`))
		}},
		{name: "collection dropped", drop: true, run: func(dir string) (int, string, string) {
			return review5Argon(dir, "insert", "c", `{"_id": 2}`)
		}},
		{name: "second import batch upsert", run: func(dir string) (int, string, string) {
			var b strings.Builder
			for i := 0; i < 1100; i++ {
				fmt.Fprintf(&b, "{\"_id\": %d}\n", 5000+i)
			}
			b.WriteString(`{"_id": 2, "v": "imp"}` + "\n")
			f := filepath.Join(dir, "c.json")
			if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			return review5Argon(dir, "import", f, "--mode", "upsert")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, app := review5Project(t, "r5held")
			if tc.drop {
				names, _ := app.ListDatabaseNames(context.Background(), bson.D{})
				for _, n := range names {
					if strings.HasSuffix(n, "_r5held__main") {
						if err := app.Database(n).Collection("c").Drop(context.Background()); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			code, _, errOut := tc.run(dir)
			if code != 1 || !strings.Contains(errOut, "document 2 of c has uncommitted changes") {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			_, status, _ := review5Argon(dir, "status", "-s")
			want := "## main (head 2)\nD c 1\nD c 2\n"
			if !tc.drop {
				want = "## main (head 2)\nD c 2\n"
			}
			if status != want {
				t.Fatalf("status after the refusal:\n%swant:\n%s", status, want)
			}
		})
	}
}

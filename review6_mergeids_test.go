package main

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/workdb"
)

// Observation (passes; logs what it saw): two branches add an ObjectId
// and its hex string as _id. MongoDB and wal.ValueKey take them as two
// _ids, the embedded engine's unique index as one (the _id's JSON text).
// The merge finds no conflict in its plan; the engine refuses the write
// and argon reports a unique-index conflict, nothing written, which
// neither --ours nor --theirs settles. Nested _ids by value ({a: 2} and
// {a: 2.0}) are a planned conflict, as for top-level numbers.
func TestReview6MergeEngineEqualIDs(t *testing.T) {
	oid := bson.NewObjectID().Hex()
	for _, tc := range []struct{ name, ours, theirs string }{
		{"objectid and hex string", `{"_id": {"$oid": "` + oid + `"}}`, `{"_id": "` + oid + `"}`},
		{"nested numbers", `{"_id": {"a": 2}}`, `{"_id": {"a": 2.0}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, _ := projectOnServer(t, "r6m", `{"_id": 1}`)
			steps := [][]string{{"branch", "create", "b"}, {"insert", "c", tc.ours}, {"checkout", "b"}, {"insert", "c", tc.theirs}, {"checkout", "main"}}
			for _, s := range steps {
				if code, _, e := review5Argon(dir, s...); code != 0 {
					t.Fatalf("argon %v: %d %s", s, code, e)
				}
			}
			for _, flag := range []string{"", "--theirs"} {
				args := []string{"merge", "b", "-m", "m"}
				if flag != "" {
					args = append(args, flag)
				}
				code, out, errOut := review5Argon(dir, args...)
				t.Logf("argon %v: exit %d\n%s%s", args, code, out, errOut)
			}
			_, find, findErr := review5Argon(dir, "find", "c", "--at", "main")
			if strings.Contains(findErr, "E11000") {
				t.Errorf("head unbuildable: %s", findErr)
			}
			t.Logf("find --at main:\n%s%s", find, findErr)
		})
	}
}

// The base holds {_id: 2.0}; ours changes it, theirs deletes it and adds
// {_id: 2} (int32). merge --theirs plans the delete of 2.0 twice: once as
// the settled delete-versus-change conflict of key 2.0, once more from
// put's value conflict (Apply{ID: o.ID} then theirs' put). ApplyPuts
// then logs two deletes of 2.0 in one commit and calls changed(2.0, nil)
// twice, which XORs the document's hash out and back in: the marker's
// fingerprint still counts the deleted 2.0. The state is right, but the
// log holds a redundant entry and status can never take its fast path
// (fingerprints differ, so every status folds the log and scans).
func TestReview6MergeTheirsDeletesOursSpellingTwice(t *testing.T) {
	dir, app, db := projectOnServer(t, "r6twice", `[{"_id": 1}, {"_id": 2.0, "v": "base"}]`)
	steps := [][]string{
		{"branch", "create", "b"},
		{"update", "c", `{"_id": 2.0}`, `{"$set": {"v": "ours"}}`},
		{"checkout", "b"},
		{"delete", "c", `{"_id": 2.0}`},
		{"insert", "c", `{"_id": 2, "v": "theirs"}`},
		{"checkout", "main"},
		{"merge", "b", "-m", "m", "--theirs"},
	}
	for _, s := range steps {
		if code, _, e := review5Argon(dir, s...); code != 0 {
			t.Fatalf("argon %v: %d %s", s, code, e)
		}
	}
	_, log, _ := review5Argon(dir, "log", "--entries")
	_, find, _ := review5Argon(dir, "find", "c")
	if n := strings.Count(log, "\tdel\tc\t2.0\n"); n != 1 {
		t.Errorf("the merge commit logs %d deletes of 2.0, want 1:\n%s", n, log)
	}
	// The marker's fingerprint against what the database holds.
	_, status, _ := review5Argon(dir, "status", "-s")
	t.Logf("find c:\n%sstatus -s:\n%s(database %s)", find, status, db)
	if sumsDiffer(t, app, db) {
		t.Errorf("after the merge, the working database's fingerprint differs from its marker's: status folds and scans every time")
	}
}

// sumsDiffer reports whether the marker of working database db holds a
// fingerprint other than the one a scan of db computes.
func sumsDiffer(t *testing.T, app *mongo.Client, db string) bool {
	t.Helper()
	ctx := context.Background()
	var m workdb.Marker
	if err := app.Database(db).Collection(workdb.MarkerCollection).FindOne(ctx, bson.D{{Key: "_id", Value: "marker"}}).Decode(&m); err != nil {
		t.Fatal(err)
	}
	now, err := workdb.ScanSums(ctx, app.Database(db))
	if err != nil {
		t.Fatal(err)
	}
	if m.Sums == nil {
		t.Logf("marker has no fingerprint")
		return false
	}
	t.Logf("marker sums %v, scanned %v", m.Sums, now)
	return !now.Equal(m.Sums)
}

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// r19Respell is an application's replacement, in collection c of the
// working database, of the committed document with the 32-bit _id id by a
// document with the same _id value spelled as a double (id.0): one _id to
// the server's unique index and to its $in, two keys to the log.
func r19Respell(c *mongo.Collection, id int32) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			return err
		}
		_, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: float64(id)}, {Key: "v", Value: "app"}})
		return err
	}
}

// Was a defect (fixed; high: a merge commits a result without the source's delete,
// exit 0). The application replaces the committed {_id: 2} by {_id: 2.0}
// (its uncommitted change) after the merge's own check of uncommitted
// changes, before the merge holds the branch; the merge deletes _id 2
// (the source deleted it). applyDocs (internal/workdb/apply.go) reads the
// pre-images by $in, which the server matches by value, but keeps only
// the documents whose key is byte for byte a put's (preImages: want[k]):
// the 2.0 is dropped, the 2 counts as missing, refuseDeletedIDs finds a
// document of its value there and lets it through ("those there fail the
// write on their duplicate key"), and a delete with no pre-image logs
// nothing. The merge prints "no document changed (the merge is recorded)"
// and commits an empty merge whose merge_of says f's delete is merged:
// main's committed state keeps {_id: 2, v: 0}, the next `merge f` is up to
// date, and `argon restore` brings the document back. Revert and a merge
// commit share the path.
func TestReview19MergeDropsADeleteOverARespelledID(t *testing.T) {
	dir, run, must := r18Workspace(t, "r19d")
	must("insert", "c", `[{"_id": 1}, {"_id": 2, "v": 0}]`)
	must("branch", "create", "f")
	must("delete", "c", `{"_id": 2}`, "--branch", "f")
	must("insert", "c", `{"_id": 3}`)
	app := serveWorkspace(t, dir)
	done := atLease(t, r19Respell(app.Database("ar_r19d__main").Collection("c"), 2))
	code, out, errOut := run("merge", "f")
	if !done() {
		t.Fatal("the application's write did not happen")
	}
	if code != 0 {
		if !strings.Contains(errOut, "uncommitted changes") {
			t.Errorf("merge f: exit %d, %q, %q; want the refusal of the uncommitted change of _id 2", code, out, errOut)
		}
		return
	}
	if n := strings.TrimSpace(must("count", "c", `{"_id": 2}`, "--at", "HEAD")); n != "0" {
		t.Errorf("merge f exited 0 (%q) but main's committed state still holds %s document with _id 2, which f deleted; log:\n%s",
			out, n, must("log", "--entries"))
	}
}

// Was a defect (fixed; high: the branch is unusable until its uncommitted changes are
// discarded). As above, the application replaces the committed {_id: 4}
// by {_id: 4.0} once the reset has checked for uncommitted changes; the
// reset (or a merge, a revert) puts _id 4. The under-lease check misses
// the 4.0 (exact-key match of the pre-images), nothing deletes it, and the
// insert of 4 fails on the _id index: "duplicate key in collection c:
// changing _id 4 would duplicate a key" (a merge reports it as a unique
// index conflict, exit 3), not the uncommitted change it is. The failed
// write's repair (Repair, internal/workdb/workdb.go, also by exact key)
// then puts the log's {_id: 4} back over the application's 4.0, fails on
// the same duplicate, and every later command of the branch (status,
// find, fsck, another reset) fails with "repair what a write that did not
// complete changed ... E11000"; only `argon restore`, which discards the
// application's change, gets out.
func TestReview19ResetOverARespelledIDWedgesTheBranch(t *testing.T) {
	dir, run, must := r18Workspace(t, "r19w")
	must("insert", "c", `[{"_id": 1}, {"_id": 4, "v": 0}]`)
	must("update", "c", `{"_id": 4}`, `{"$set": {"v": 1}}`)
	app := serveWorkspace(t, dir)
	coll := app.Database("ar_r19w__main").Collection("c")
	done := atLease(t, r19Respell(coll, 4))
	code, out, errOut := run("reset", "main~1")
	if !done() {
		t.Fatal("the application's write did not happen")
	}
	if code == 0 || !strings.Contains(errOut, "uncommitted changes") {
		t.Errorf("reset main~1 over the application's uncommitted 4.0: exit %d, %q, %q; want the refusal of an uncommitted change", code, out, errOut)
	}
	if scode, sout, serr := run("status"); scode != 0 || !strings.Contains(sout, "changes\t1 added, 0 modified, 1 deleted\n") {
		t.Errorf("status after the failed reset: exit %d, %q, %q", scode, sout, serr)
	}
	var doc bson.M
	if err := coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: 4}}).Decode(&doc); err != nil || doc["v"] != "app" {
		t.Errorf("the application's {_id: 4.0, v: \"app\"} is now %v (%v)", doc, err)
	}
}

// Was a defect (fixed; medium: --dry-run reports a conflict the command does not
// have, exit 3 against exit 0). On the engines argon runs (FerretDB), a
// unique index never compares a document that lacks one of its fields
// with another (measured: `index create c '{"u": 1}' --unique` over two
// documents without u succeeds; two explicit nulls collide). CheckUnique
// (internal/workdb/unique.go, uniqueKey) takes a missing field as null,
// as MongoDB does, and since 4ed1a7d judges every document of the
// collection against a unique index the puts create or redefine: the
// dry run of the revert of a unique index's drop, in a collection where
// two documents lack the field, prints "conflict c 1 unique index u_1"
// and exits 3; the revert itself succeeds (exit 0). merge --dry-run of a
// branch that created such an index does the same.
func TestReview19RevertDryRunMissingFieldsOfAUniqueIndex(t *testing.T) {
	_, run, must := r18Workspace(t, "r19n")
	must("insert", "c", `[{"_id": 1}, {"_id": 2}, {"_id": 3, "u": 1}]`)
	must("index", "create", "c", `{"u": 1}`, "--unique") // LSN 4: the engine takes it
	must("index", "drop", "c", "u_1")                    // LSN 5
	dcode, dout, derr := run("revert", "5", "--dry-run")
	code, out, errOut := run("revert", "5")
	if dcode != code {
		t.Errorf("revert 5 --dry-run: exit %d, %q, %q; revert 5: exit %d, %q, %q", dcode, dout, derr, code, out, errOut)
	}
	r18Clean(t, must)
}

// Was a defect (fixed; medium: an application's uncommitted change is lost by a merge
// that was refused). The under-lease check is made per collection inside
// applyDocs (internal/workdb/apply.go), after putter has already dropped
// the redefined indexes and written every earlier collection: a refusal in
// collection b comes after collection a was rewritten, and the failed
// write is repaired from the log. Past 5,000 keys of a collection on the
// embedded engine and FerretDB, Repair (internal/workdb/workdb.go) rebuilt
// that collection whole from the log until review31, which discarded
// applications' uncommitted changes in it. Here the merge
// rewrites 5,001 documents of a and one of b; the application, after the
// merge's own check, changes b's document (the merge refuses it: "document
// 1 of b has uncommitted changes", exit 1) and a document of a the merge
// does not touch: that change is gone afterwards, though the merge said
// nothing was changed (ARCHITECTURE: "before it changes anything,
// applyDocs reads ... and refuses"). Fix: read and check the pre-images of
// every collection before the first index drop and the first delete.
func TestReview19RefusedMergeLosesAnUntouchedUncommittedChange(t *testing.T) {
	dir, run, must := r18Workspace(t, "r19x")
	var b strings.Builder
	b.WriteString(`[{"_id": "keep", "w": 0}`)
	for i := 1; i <= 5001; i++ {
		fmt.Fprintf(&b, `, {"_id": %d, "v": 0}`, i)
	}
	b.WriteString("]")
	must("insert", "a", b.String())
	must("insert", "b", `{"_id": 1, "v": 0}`)
	must("branch", "create", "f")
	must("update", "a", `{"v": 0}`, `{"$set": {"v": 1}}`, "--many", "--branch", "f")
	must("update", "b", `{"_id": 1}`, `{"$set": {"v": 1}}`, "--branch", "f")
	must("insert", "b", `{"_id": 2}`)
	app := serveWorkspace(t, dir)
	db := app.Database("ar_r19x__main")
	done := atLease(t, func(ctx context.Context) error {
		if _, err := db.Collection("a").UpdateOne(ctx, bson.D{{Key: "_id", Value: "keep"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "w", Value: "app"}}}}); err != nil {
			return err
		}
		_, err := db.Collection("b").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}})
		return err
	})
	code, out, errOut := run("merge", "f")
	if !done() {
		t.Fatal("the application's writes did not happen")
	}
	if code == 0 {
		t.Fatalf("merge f over the application's uncommitted change of b's _id 1 exited 0: %q", out)
	}
	if got := must("find", "a", `{"_id": "keep"}`); got != "{\"_id\":\"keep\",\"w\":\"app\"}\n" {
		t.Errorf("after the refused merge (%q), the application's uncommitted change of a's \"keep\" is lost: find shows %q; status:\n%s",
			errOut, got, must("status"))
	}
}

// Was a defect (medium; found with review19, fixed): merge --dry-run
// missed a unique-index conflict the engine finds. FerretDB's unique
// indexes compare values as their JSON text, so a date and the integer of
// its milliseconds are one key there (as for _id: wal.FerretValue); the
// dry run compared them as two values.
func TestReview19DryRunDateAndIntegerUniqueKey(t *testing.T) {
	_, run, must := r18Workspace(t, "r19e")
	must("index", "create", "c", `{"u": 1}`, "--unique")
	must("branch", "create", "f")
	must("insert", "c", `{"_id": 1, "u": 2}`)
	must("insert", "c", `{"_id": 2, "u": {"$date": {"$numberLong": "2"}}}`, "--branch", "f")
	dcode, dout, derr := run("merge", "f", "--dry-run")
	code, out, errOut := run("merge", "f")
	if dcode != 3 || code != 3 {
		t.Errorf("merge f --dry-run: exit %d, %q, %q; merge f: exit %d, %q, %q; want 3 for both", dcode, dout, derr, code, out, errOut)
	}
	r18Clean(t, must)
}

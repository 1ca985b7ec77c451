package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// r18Workspace is r15Workspace with the workspace made: project p, the
// current branch main, nothing committed.
func r18Workspace(t *testing.T, p string) (string, func(args ...string) (int, string, string), func(args ...string) string) {
	t.Helper()
	dir, run := r15Workspace(t, p)
	must := mustRun(t, run)
	must("init", p)
	return dir, run, must
}

// r18Clean fails the test unless branch main's working database agrees
// with its log (status: changes none) and fsck finds no problem.
func r18Clean(t *testing.T, must func(args ...string) string) {
	t.Helper()
	if out := must("status"); !strings.Contains(out, "changes\tnone\n") {
		t.Errorf("status after the reset:\n%s", out)
	}
	if out := must("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck after the reset:\n%s", out)
	}
}

// DEFECT. A reset to a state whose index of a name is not unique, from a
// head where the index of that name is unique, fails whenever the target
// state holds duplicates of its key: `argon reset A` exits 1 with
// "duplicate key in collection c: changing _id 2 would break unique index
// u_1", though A is a committed state (it was the branch's head). The
// putter (internal/workdb/apply.go, shared with merge and the
// fast-forward) drops first only the indexes the target lacks; an index
// the target has with other options is dropped and created last, after
// the documents, so the target's documents are inserted while the head's
// unique index still stands. The same holds for an index whose partial
// filter or collation changes. Fix: in putter, drop before the documents
// every index whose spec changes (p.Index && the name exists with a
// different spec), and create the new spec last.
func TestReview18ResetToANonUniqueIndexOfTheSameName(t *testing.T) {
	_, run, must := r18Workspace(t, "r18u")
	must("index", "create", "c", `{"u": 1}`)
	must("insert", "c", `[{"_id": 1, "u": "a"}, {"_id": 2, "u": "a"}]`)
	must("tag", "A")
	must("delete", "c", `{"_id": 2}`)
	must("index", "drop", "c", "u_1")
	must("index", "create", "c", `{"u": 1}`, "--unique")
	code, out, errOut := run("reset", "A")
	if code != 0 {
		t.Fatalf("reset A (a committed state): exit %d, %q, %q", code, out, errOut)
	}
	if got, want := must("find", "c", "--sort", `{"_id": 1}`), must("find", "c", "--at", "A", "--sort", `{"_id": 1}`); got != want {
		t.Errorf("after reset A, find c:\n%s\nwant (find --at A):\n%s", got, want)
	}
	if got, want := must("index", "list", "c"), must("index", "list", "c", "--at", "A"); got != want {
		t.Errorf("after reset A, index list c:\n%s\nwant (--at A):\n%s", got, want)
	}
	r18Clean(t, must)
}

// DEFECT. A reset without --force checks for applications' uncommitted
// changes (cmd/reset.go: uncommitted) before it plans the move and takes
// the branch; an application write that lands in between (here: while the
// reset has just taken its lease, commit.Hook "leased", before argon
// serve holds the database's writes) is overwritten by the move's puts
// when the reset changes that document: the reset exits 0, status says
// "changes none", and the application's acknowledged (uncommitted) write
// is gone, with no notice, though the reset was not forced. The window is
// the whole diff (diff.Between) and ForkTimeline, so an application that
// writes steadily hits it. merge and revert (ApplyPuts) share the pattern
// but their commit logs what they overwrite; a reset leaves no trace.
// Fix: check the working database under the lease (after the hold) in
// Move/MovePuts, e.g. refuseUncommitted on the pre-images the putter
// reads (or a workingChanges check once held), and fail with the
// uncommitted refusal when anything changed.
func TestReview18ResetOverwritesAWriteMadeAfterItsCheck(t *testing.T) {
	dir, run, must := r18Workspace(t, "r18w")
	must("insert", "c", `{"_id": 1, "v": 0}`)
	must("update", "c", `{"_id": 1}`, `{"$set": {"v": 1}}`)
	app := serveWorkspace(t, dir)
	coll := app.Database("ar_r18w__main").Collection("c")
	ctx := context.Background()
	fired := false
	var appErr error
	commit.Hook = func(point string) {
		if point != "leased" || fired {
			return
		}
		fired = true
		_, appErr = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}})
	}
	defer func() { commit.Hook = nil }()
	code, out, errOut := run("reset", "main~1")
	commit.Hook = nil
	if !fired || appErr != nil {
		t.Fatalf("the application's write did not happen (fired %v): %v", fired, appErr)
	}
	var doc bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	status := must("status")
	t.Logf("reset main~1: exit %d, %q, %q; document now %v", code, out, errOut, doc)
	if code == 0 && doc["v"] != "app" && !strings.Contains(errOut, "discarded") {
		t.Errorf("reset main~1 (no --force) exited 0 and silently overwrote the application's write of {_id: 1, v: \"app\"} that came after its check: the document is %v; status:\n%s", doc, status)
	}
}

// DEFECT (on MongoDB; reached by argon reset, and by the fast-forward and
// merge commits that share the putter). The putter says "every document
// the merge changes or deletes is taken out, then the new versions go in,
// so that a unique key moving from one document to another never collides
// on the way", but on an engine whose reads by _id are indexed (ScanReads
// false: MongoDB; cmd sets ScanReads only for FerretDB) applyDocs takes out
// and puts back batch by batch (batchSize 1000): a reset over more than
// 1,000 changed documents of one collection, where a unique value moves
// from a document of a later batch to one of an earlier batch, inserts the
// earlier batch's new version while the later batch's old version still
// holds the value, and fails with a duplicate key, though the target is a
// committed state. Here, as runReset does it (diff.Between from the head
// to the target, MovePuts onto a fork at the target), 1,200 documents
// changed since A and the unique u "X" moved from _id 1 (at A) to _id 1200
// (at the head). Fix: in applyDocs without a scan, read the pre-images and
// delete every touched _id of the collection (all batches) before the
// first insert, as preImages does for FerretDB.
func TestReview18ResetMovesAUniqueValueAcrossBatches(t *testing.T) {
	_, r, mainB := waltest.Project(t)
	ctx := context.Background()
	p := commit.New()
	w := p.Open(r, mainB)
	info := wal.CommitInfo{Message: "m"}
	raw := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var docs []bson.Raw
	for i := int32(1); i <= 1200; i++ {
		u := "u" + strconv.Itoa(int(i))
		if i == 1 {
			u = "X"
		}
		docs = append(docs, raw(bson.D{{Key: "_id", Value: i}, {Key: "u", Value: u}, {Key: "v", Value: 0}}))
	}
	if _, err := w.Insert(ctx, "c", docs, info); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.CreateIndex(ctx, "c", raw(bson.D{{Key: "u", Value: 1}}), workdb.IndexOptions{Name: "u_1", Unique: true}, info); err != nil {
		t.Fatal(err)
	}
	head := func() diff.Point {
		h, err := r.Head(ctx, mainB.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		return diff.Point{TL: mainB.Timeline, LSN: h.LSN}
	}
	a := head()
	modify := func(filter, update bson.D, many bool) {
		t.Helper()
		if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: raw(filter), Update: raw(update), Many: many}, workdb.Limits{}, info); err != nil {
			t.Fatal(err)
		}
	}
	modify(bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}, true)
	modify(bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "u", Value: "moved"}}}}, false)
	modify(bson.D{{Key: "_id", Value: 1200}}, bson.D{{Key: "$set", Value: bson.D{{Key: "u", Value: "X"}}}}, false)
	h := head()
	// What runReset does.
	changes, _, err := diff.Between(ctx, r, h, a, "")
	if err != nil {
		t.Fatal(err)
	}
	puts := make([]workdb.Put, len(changes))
	for i, c := range changes {
		puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.To}
	}
	root, err := r.ForkTimeline(ctx, "p", &wal.Branch{Project: "p", Name: "A", Timeline: a.TL}, a.LSN)
	if err != nil {
		t.Fatal(err)
	}
	w = p.Open(r, mainB)
	w.ScanReads = false // as on MongoDB
	if err := w.MovePuts(ctx, puts, root, h.LSN, "reset to A", wal.CommitInfo{Message: "reset to A"}); err != nil {
		t.Fatalf("reset of %d changed documents to committed state A: %v", len(puts), err)
	}
}

package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/ui"
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

// Was a defect (fixed). A reset to a state whose index of a name is not unique, from a
// head where the index of that name is unique, fails whenever the target
// state holds duplicates of its key: `argon reset A` exits 1 with
// "duplicate key in collection c: changing _id 2 would break unique index
// u_1", though A is a committed state (it was the branch's head). The
// putter (internal/workdb/apply.go, shared with merge and the
// fast-forward) drops first only the indexes the target lacks; an index
// the target has with other options is dropped and created last, after
// the documents, so the target's documents are inserted while the head's
// unique index still stands (untested: likely the same for a unique
// index whose partial filter changes). Fixed by: in putter, drop before the documents
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

// Was a defect (fixed). A reset without --force checks for applications' uncommitted
// changes (cmd/reset.go: uncommitted) before it plans the move and takes
// the branch; an application write that lands in between (here: while the
// reset is about to take its lease, commit.Hook "leasing", before argon
// serve holds the database's writes) is overwritten by the move's puts
// when the reset changes that document: the reset exits 0, status says
// "changes none", and the application's acknowledged (uncommitted) write
// is gone, with no notice, though the reset was not forced. The window is
// the whole diff (diff.Between) and ForkTimeline, so an application that
// writes steadily hits it. merge and revert (ApplyPuts) share the pattern
// but their commit logs what they overwrite; a reset leaves no trace.
// Fixed by: check the working database under the lease (after the hold) in
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
	fired := atLease(t, func(ctx context.Context) error {
		_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}})
		return err
	})
	code, out, errOut := run("reset", "main~1")
	if !fired() {
		t.Fatal("the application's write did not happen")
	}
	var doc bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	// Refused under the lease, nothing written: the application's
	// document stays, and status shows it.
	if code != 1 || out != "" || !strings.Contains(errOut, "argon: error: document 1 of c has uncommitted changes in the working database of branch main") || doc["v"] != "app" {
		t.Errorf("reset main~1 after an application's write: exit %d, %q, %q; document %v; want exit 1, the uncommitted refusal, the document kept", code, out, errOut, doc)
	}
	if st := must("status"); !strings.Contains(st, "changes\t0 added, 1 modified, 0 deleted\n") {
		t.Errorf("status after the refused reset:\n%s", st)
	}
	if log := must("log", "--oneline", "-n", "1"); !strings.HasPrefix(log, "2..2 ") {
		t.Errorf("the branch moved: %s", log)
	}
}

// Was a defect (fixed; on MongoDB; reached by argon reset, and by the fast-forward and
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
// (at the head). Fixed by: in applyDocs without a scan, read the pre-images and
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

// r18StoppedAt runs argon args in dir and stops it at commit.Hook point
// (a panic there, recovered here, stands for the process killed at that
// point: nothing after it runs, the deferred releases do).
func r18StoppedAt(t *testing.T, dir, point string, args ...string) {
	t.Helper()
	stopped := false
	commit.Hook = func(p string) {
		if p == point {
			stopped = true
			panic("r18: stopped at " + point)
		}
	}
	defer func() { commit.Hook = nil }()
	func() {
		defer func() { _ = recover() }()
		io, _, _, _ := ui.Test()
		cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
	}()
	if !stopped {
		t.Fatalf("argon %v never reached %s", args, point)
	}
}

// Was a defect: a reset stopped after its move (the moved slot inserted,
// the binding not yet repointed: ARCHITECTURE "If the process stops
// between 4 and 5 ... the branch's next read or write follows the moved
// slot") was not followed by the next reset: `argon reset 3` back to the
// state before the stopped reset printed "main is already at 3 (head LSN
// 3): nothing to do" and exited 0 while the branch was at LSN 1. The move
// is the reset's commit point, so the branch is at LSN 1: a ref is now
// resolved after the reset's first read has completed the move, `reset 3`
// names an LSN past that head (exit 4), and the reflog, which records the
// completed reset, takes the branch back.
func TestReview18ResetAfterAStoppedResetSeesTheMove(t *testing.T) {
	dir, run, must := r18Workspace(t, "r18s")
	must("insert", "c", `{"_id": 1}`)
	must("insert", "c", `{"_id": 2}`)
	must("insert", "c", `{"_id": 3}`)
	serveWorkspace(t, dir) // the stopped command leaves no workspace lock behind
	r18StoppedAt(t, dir, "after-commit", "reset", "main~2")
	code, out, errOut := run("reset", "3")
	if code != 4 || errOut != "argon: error: LSN 3 is past the head of branch main (head is 1)\n" {
		t.Errorf("reset 3 after the stopped reset: exit %d, %q, %q; want exit 4, past the head (1)", code, out, errOut)
	}
	if n := strings.TrimSpace(must("count", "c")); n != "1" {
		t.Errorf("count c is %s after the stopped reset, want 1", n)
	}
	must("reset", "main@{1}")
	if n := strings.TrimSpace(must("count", "c")); n != "3" {
		t.Errorf("count c is %s after reset main@{1}, want 3", n)
	}
	r18Clean(t, must)
}

// Was a defect (low; fixed). `argon reset HEAD --force` (git's `reset --hard HEAD`,
// the usual way to throw away what is not committed) returns "main is
// already at HEAD (head LSN 2): nothing to do", exit 0, and keeps the
// applications' uncommitted changes, though the help says "--force
// discards them first" and ARCHITECTURE "Uncommitted changes of
// applications are refused, or discarded first with --force". runReset
// returns on `to == head` before it looks at the working database. Fix:
// with --force, discard (Restore) before the "already at" return, and say
// so; or document that only argon restore does it.
func TestReview18ResetHEADForceDiscards(t *testing.T) {
	dir, run, must := r18Workspace(t, "r18h")
	must("insert", "c", `{"_id": 1, "v": 0}`)
	must("insert", "c", `{"_id": 2}`)
	app := serveWorkspace(t, dir)
	coll := app.Database("ar_r18h__main").Collection("c")
	ctx := context.Background()
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("reset", "HEAD", "--force")
	status := must("status")
	if code != 0 || !strings.Contains(status, "changes\tnone\n") {
		t.Errorf("reset HEAD --force: exit %d, %q, %q; status after it:\n%s", code, out, errOut, status)
	}
}

// Was a defect (low; merge --dry-run shared it; fixed). `argon revert 4 --dry-run`
// of a commit that dropped a unique index, after a later commit gave two
// documents the same key, answers "would revert LSN 4..4 on main: 1
// document or index to change, 0 conflicts settled", exit 0; the revert
// itself then fails, exit 3, "the merged documents break unique index u_1;
// nothing was written". workdb.CheckUnique (cmd/revert.go's dry run)
// judges only the documents the puts write against the unique indexes,
// not the documents already there against a unique index the puts create.
// Fixed by: in CheckUnique, for each unique index a put creates (or changes),
// check the collection's documents after the puts for duplicates of its
// key.
func TestReview18RevertDryRunMissesAUniqueIndexItCreates(t *testing.T) {
	_, run, must := r18Workspace(t, "r18d")
	must("insert", "c", `[{"_id": 1, "u": "a"}, {"_id": 2, "u": "b"}]`)
	must("index", "create", "c", `{"u": 1}`, "--unique")
	must("index", "drop", "c", "u_1")
	must("update", "c", `{"_id": 2}`, `{"$set": {"u": "a"}}`)
	dcode, dout, derr := run("revert", "4", "--dry-run")
	code, out, errOut := run("revert", "4")
	if dcode != code {
		t.Errorf("revert 4 --dry-run: exit %d, %q, %q; revert 4: exit %d, %q, %q", dcode, dout, derr, code, out, errOut)
	}
}

// Was a defect (low; fixed). A revert names the commit it undoes by its LSNs alone, in
// its output and in the message it commits ("This reverts LSN 2..2."),
// also when that commit is not the branch's commit at those LSNs: a
// commit of another branch (revert feature~1 on main), or one the branch
// left by a reset (revert main@{1}), whose LSNs the branch reuses. Here
// main's LSN 2 is the insert of {_id: 3}; the revert of feature's LSN 2
// (the update of {_id: 1}) commits "This reverts LSN 2..2.", and `argon
// show 2` on main shows the insert. git names the commit by its hash.
// Fixed by: name the commit as a ref that resolves to it when the branch's own
// LSN does not (BRANCH@LSN for a live branch's timeline, else
// TIMELINE@LSN), in the message, the output and --json.
func TestReview18RevertMessageNamesTheCommit(t *testing.T) {
	_, _, must := r18Workspace(t, "r18m")
	must("insert", "c", `{"_id": 1, "v": 0}`)
	must("branch", "create", "feature")
	must("update", "c", `{"_id": 1}`, `{"$set": {"v": 1}}`, "--branch", "feature")
	must("insert", "c", `{"_id": 3}`)
	must("merge", "feature")
	out := must("revert", "feature@2")
	msg := must("log", "-n", "1")
	show := must("show", "2")
	if strings.Contains(msg, "This reverts LSN 2..2.") && strings.Contains(show, "insert") {
		t.Errorf("revert feature@2 printed %q and committed:\n%s\nbut LSN 2 of main is another commit:\n%s", out, msg, show)
	}
}

// Holds (pins): merges after a reset take their base from the history the
// branches have now, not from a merge_of state the reset left. main merged
// f (merge_of f@2, where f added F); f is reset to before F and adds G;
// merging f into main again keeps F (git: base f@1) and brings G.
func TestReview18MergeAfterTheSourceWasReset(t *testing.T) {
	_, _, must := r18Workspace(t, "r18b")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "f")
	must("insert", "c", `{"_id": "M"}`)
	must("insert", "c", `{"_id": "F"}`, "--branch", "f")
	must("merge", "f")
	must("reset", "f~1", "--branch", "f")
	must("insert", "c", `{"_id": "G"}`, "--branch", "f")
	must("merge", "f")
	if got := must("find", "c", "--sort", `{"_id": 1}`); got != "{\"_id\":1}\n{\"_id\":\"F\"}\n{\"_id\":\"G\"}\n{\"_id\":\"M\"}\n" {
		t.Errorf("after the second merge, main holds:\n%s", got)
	}
	r18Clean(t, must)
}

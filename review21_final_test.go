package main

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
)

// Was a defect (medium: a documented guard is bypassed; fixed). reset refuses "an LSN
// inside a commit of several entries" (README "Differences from git",
// argon help refs, reset --help) only when the commit was made on the
// state's own timeline. Every commit a branch holds through an ancestor
// timeline passes the check, not only the fork point the exception was
// meant for (review20): on any branch made from another (its parent's
// commits), on a branch that was fast-forwarded (the source's commits), on
// a branch that was reset once (all of its own earlier commits, now on the
// timeline it left), and on a branch made from a tag. Each reset below
// exits 0 and leaves the branch holding part of a commit, which `argon
// log` then shows as "2..3 (feature, inherited) insert 3 documents" (a
// commit of 3 documents holding 2). On main itself, `reset 1` after the
// same first commit is refused (exit 2).
//
// Cause: cmd/reset.go:219, insideACommit returns nil whenever it.TL !=
// to.TL. Fix: for an inherited item, allow only the fork point, i.e.
// to.LSN equal to the Base of the timeline of to.TL's ancestry that
// forked from it.TL (r.Ancestry(to.TL)); otherwise refuse, and name as the
// way out the commit's end clipped to that fork point.
func TestReview21ResetInsideAnInheritedCommit(t *testing.T) {
	cases := []struct {
		name  string
		setup func(must func(args ...string) string)
		ref   string
	}{
		{"a branch made from main", func(must func(args ...string) string) {
			must("insert", "c", `[{"_id": 1}, {"_id": 2}]`) // main 1..2
			must("insert", "c", `{"_id": 3}`)               // main 3..3
			must("checkout", "-b", "feature")
		}, "1"},
		{"after a fast-forward", func(must func(args ...string) string) {
			must("insert", "c", `{"_id": 1}`) // main 1..1
			must("branch", "create", "feature")
			must("insert", "c", `[{"_id": 2}, {"_id": 3}, {"_id": 4}]`, "--branch", "feature") // feature 2..4
			must("merge", "feature")                                                           // fast-forward
		}, "main@3"},
		{"after a reset", func(must func(args ...string) string) {
			must("insert", "c", `{"_id": 1}`)                           // 1..1
			must("insert", "c", `[{"_id": 2}, {"_id": 3}, {"_id": 4}]`) // 2..4
			must("insert", "c", `{"_id": 5}`)                           // 5..5
			must("reset", "main~1")                                     // to 4, on a new timeline
		}, "3"},
		{"a branch made from a tag", func(must func(args ...string) string) {
			must("insert", "c", `{"_id": 1}`)                           // 1..1
			must("insert", "c", `[{"_id": 2}, {"_id": 3}, {"_id": 4}]`) // 2..4
			must("tag", "v1")
			must("checkout", "-b", "fromtag")
			must("reset", "v1")
		}, "fromtag@3"},
	}
	for i, c := range cases {
		_, run, must := r18Workspace(t, "r21i"+string(rune('a'+i)))
		c.setup(must)
		before := must("find", "c", "--sort", `{"_id": 1}`)
		code, out, errOut := run("reset", c.ref)
		if code != 2 {
			t.Errorf("%s: reset %s (inside a commit of several entries): exit %d, %q, %q; want exit 2, as on the commit's own branch; log now:\n%s",
				c.name, c.ref, code, strings.TrimSpace(out), strings.TrimSpace(errOut), must("log", "--oneline"))
		}
		if after := must("find", "c", "--sort", `{"_id": 1}`); after != before {
			t.Errorf("%s: reset %s changed the branch from\n%s to\n%s", c.name, c.ref, before, after)
		}
	}
}

// Was a defect (medium: reset --force discards and then does not move; fixed).
// `argon reset --force REF` (and --hard) discards the working database's
// uncommitted changes (Restore, its own lease) and only then takes the
// branch for the move (MovePuts, a second lease). An application write
// that lands between the two, to a document the reset changes, makes the
// move refuse it as uncommitted (the check under the lease of review18):
// the reset exits 1 with "document 2 of c has uncommitted changes ...
// discard every uncommitted change with `argon restore`; then run this
// command again", after "argon: notice: discarded 0 added, 1 modified, 0
// deleted on main". The branch did not move, and the application's earlier
// uncommitted change ({_id: 1, v: "app1"}), which the user gave up only to
// move the branch, is gone. The window is the head read, diff.Between and
// ForkTimeline.
//
// Cause: cmd/reset.go:122 (w.Restore) and :156 (w.MovePuts) are two
// writes. Fix: with --force, discard under the move's lease: e.g. a
// MovePuts option that, once held, rebuilds (or takes the pre-images from
// the log instead of refusing uncommitted ones) so that discard and move
// are one step; or, without that, retry the whole reset once when MovePuts
// refuses after a discard, and never print "discarded" for a reset that
// fails.
func TestReview21ResetForceDiscardsThenFailsOnARace(t *testing.T) {
	dir, run, must := r18Workspace(t, "r21f")
	must("insert", "c", `{"_id": 1, "v": 0}`)
	must("insert", "c", `{"_id": 2, "v": 0}`)
	app := serveWorkspace(t, dir)
	coll := app.Database("ar_r21f__main").Collection("c")
	ctx := context.Background()
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app1"}}}}); err != nil {
		t.Fatal(err)
	}
	// The first lease taken once {_id: 1} is discarded: the move's.
	fired := false
	var appErr error
	commit.Hook = func(point string) {
		if point != "leasing" || fired {
			return
		}
		var d bson.M
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&d); err != nil || d["v"] == "app1" {
			return
		}
		fired = true
		_, appErr = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app2"}}}})
	}
	defer func() { commit.Hook = nil }()
	code, out, errOut := run("reset", "--force", "main~1")
	commit.Hook = nil
	if !fired || appErr != nil {
		t.Fatalf("the application's write did not happen (fired %v): %v", fired, appErr)
	}
	var doc bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if code != 0 && doc["v"] != "app1" {
		t.Errorf("reset --force main~1 failed (exit %d: %q, %q) after discarding the application's uncommitted change: {_id: 1} is now %v, and the branch did not move (head %s)",
			code, strings.TrimSpace(out), strings.TrimSpace(errOut), doc, strings.TrimSpace(must("log", "--oneline", "-n", "1")))
	}
}

// Was a defect (low: silent loss without --force; fixed). review18 made the move check,
// under its lease, that the documents it replaces are still the log's, so
// that an application write after reset's own check is refused rather than
// overwritten. Indexes were left out: an application that creates an index
// after the check, under a name the reset changes (here u_1, which the
// target state has as {u: 1}), has it dropped and replaced by the target's;
// `argon reset main~1` (no --force) exits 0, prints nothing about it, and
// `status` no longer shows the change. The application's document write
// made in the same window (to a document the reset does not touch) is
// kept, as it should be.
//
// Cause: internal/workdb/apply.go:110, putter drops an existing index of a
// put's name whose spec differs from the put's, without comparing it with
// the head's committed spec. Fix: in putter (for MovePuts and ApplyPuts),
// before any change, compare each put index's current spec with the log's
// at base and refuse as uncommitted when it differs, as checkedPreImages
// does for documents.
func TestReview21ResetReplacesAnApplicationsIndex(t *testing.T) {
	dir, run, must := r18Workspace(t, "r21x")
	must("insert", "c", `[{"_id": 1, "u": 1, "v": 1}, {"_id": 2, "u": 2, "v": 1}]`)
	must("index", "create", "c", `{"u": 1}`)
	must("index", "drop", "c", "u_1")
	app := serveWorkspace(t, dir)
	db := app.Database("ar_r21x__main")
	done := atLease(t, func(ctx context.Context) error {
		return db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: bson.A{
			bson.D{{Key: "key", Value: bson.D{{Key: "v", Value: 1}}}, {Key: "name", Value: "u_1"}}}}}).Err()
	})
	code, out, errOut := run("reset", "main~1")
	if !done() {
		t.Fatal("the application's index was not created")
	}
	list := must("index", "list", "c")
	if code == 0 && !strings.Contains(list, `{"v":1}`) && !strings.Contains(errOut, "discarded") {
		t.Errorf("reset main~1 (no --force): exit 0, %q, %q, and the application's uncommitted index u_1 {v: 1}, made after the reset's check, is gone without a word: index list c:\n%sstatus:\n%s",
			strings.TrimSpace(out), strings.TrimSpace(errOut), list, must("status"))
	}
}

// Was a defect (low: exit code; fixed). A legal branch or tag name that starts with a
// digit and is not a WHEN (a version tag like 1.1) is an "invalid point",
// exit 2, for --at when no branch or tag has that name, while diff, log,
// show and reset say "not found", exit 4, as argon help refs promises
// ("Unknown branches and tags exit 4 ... malformed refs exit 2"). A script
// that checks for a tag with `count c --at 1.1` reads a usage error.
//
// Cause: cmd/at.go:112, the --at fallback takes any name starting with a
// digit, '-' or '+' as a malformed WHEN. Fix: say not found (exit 4, with
// the --at hint) when wal.ValidateBranch accepts the name and
// refs.ParseWhen would fail on it for a reason other than its form, e.g.
// when it holds a character no WHEN has ('.', '/', or letters besides a
// duration's unit).
func TestReview21AtUnknownVersionNameIsNotFound(t *testing.T) {
	_, run, must := r18Workspace(t, "r21v")
	must("insert", "c", `{"_id": 1}`)
	must("tag", "1.0")
	if code, _, errOut := run("count", "c", "--at", "1.0"); code != 0 {
		t.Fatalf("count c --at 1.0 (a tag): exit %d, %q", code, errOut)
	}
	for _, args := range [][]string{
		{"diff", "1.1", "main"}, // the reference: exit 4
		{"count", "c", "--at", "1.1"},
		{"find", "c", "--at", "1.1"},
	} {
		if code, _, errOut := run(args...); code != 4 {
			t.Errorf("argon %s: exit %d (%q), want 4 (no branch or tag 1.1), as diff gives", strings.Join(args, " "), code, strings.TrimSpace(errOut))
		}
	}
}

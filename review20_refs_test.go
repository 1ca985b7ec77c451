package main

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Was a defect (fixed). `argon reset --hard REF` discards the working database's
// uncommitted changes before it resolves REF, so a REF that names
// nothing (a typo: exit 4), a malformed one (main^2: exit 2), or an LSN
// inside a commit of several entries (refused since 3611fa4: exit 2)
// throws away applications' uncommitted work and then fails: the branch
// does not move, and the work is gone. git reset --hard with a bad ref
// fails before it touches the working tree. Before 3611fa4 --hard was
// accepted and ignored, so only --force took this path; --hard now sets
// force (cmd/reset.go: o.force = true) and runReset calls w.Restore
// before f.resolveRef and the mid-commit check.
func TestReview20ResetHardBadRefKeepsUncommittedWork(t *testing.T) {
	for i, ref := range []string{"nosuch", "main^2", "1"} {
		p := "r20h" + string(rune('a'+i))
		dir, run, must := r18Workspace(t, p)
		must("insert", "c", `[{"_id": 1, "v": 0}, {"_id": 2, "v": 0}]`) // LSN 1..2
		must("insert", "c", `{"_id": 3, "v": 0}`)
		app := serveWorkspace(t, dir)
		coll := app.Database("ar_" + p + "__main").Collection("c")
		ctx := context.Background()
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}}); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := run("reset", "--hard", ref)
		if code == 0 {
			t.Fatalf("reset --hard %s: exit 0 (%q), want a failure", ref, out)
		}
		var doc bson.M
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 3}}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc["v"] != "app" {
			t.Errorf("reset --hard %s failed (exit %d: %q) but first discarded the application's uncommitted write: {_id: 3} is now %v", ref, code, strings.TrimSpace(errOut), doc)
		}
	}
}

// Was a defect (fixed). On a branch made from an LSN inside a commit of several
// entries (branch create child --from main@1, main's commit 1..2), the
// state the branch was made at is refused by reset, though it is the
// end of a commit in the branch's own log (argon log: "1..1 (main,
// inherited)") and what HEAD~1 names once the branch has a commit:
// `argon reset HEAD~1` on child exits 2 with "child~1 (LSN 1) is inside
// the commit 1..2: reset to its end (LSN 2) or to before it (LSN 0)",
// and LSN 2 on child is inside child's own commit 2..3, refused in turn.
// The same refusal blocks undoing a move of such a branch with
// BRANCH@{1} (the reflog's OLD is the fork point), which `argon reflog`
// and the README suggest. git's HEAD~1 is always a state reset takes.
// Cause: cmd/reset.go's mid-commit check takes commitAt (cmd/show.go),
// which widens an inherited commit clipped at the fork point to its
// whole range on the parent (it.To = s.LSN), so the fork point reads as
// inside it.
func TestReview20ResetToTheForkPointOfABranchMadeInsideACommit(t *testing.T) {
	_, run, must := r18Workspace(t, "r20f")
	must("insert", "c", `[{"_id": 1}, {"_id": 2}]`) // LSN 1..2
	must("branch", "create", "child", "--from", "main@1")
	must("checkout", "child")
	must("insert", "c", `[{"_id": 10}, {"_id": 11}]`) // child's 2..3
	want := must("find", "c", "--at", "HEAD~1", "--sort", `{"_id": 1}`)
	code, out, errOut := run("reset", "HEAD~1")
	if code != 0 {
		t.Errorf("reset HEAD~1 on child (made from main@1): exit %d, %q, %q", code, out, errOut)
	} else if got := must("find", "c", "--sort", `{"_id": 1}`); got != want {
		t.Errorf("after reset HEAD~1, find c:\n%s\nwant:\n%s", got, want)
	}

	// Undoing a move of such a branch: child2 made at main@1, moved to
	// main's head, then taken back with child2@{1}.
	must("branch", "create", "child2", "--from", "main@1")
	must("reset", "main", "--branch", "child2")
	code, out, errOut = run("reset", "child2@{1}", "--branch", "child2")
	if code != 0 {
		t.Errorf("reset child2@{1} (undo the reset of a branch made at main@1): exit %d, %q, %q", code, out, errOut)
	}
}

// Was a defect (fixed). `argon find --at 'nosuch^'` (a branch that does not exist, one
// commit back) exits 2 with "invalid point", while `--at 'nosuch~1'`,
// and every other command given nosuch^ (diff, show, log, reset), exit 4
// "branch nosuch not found". The --at fallback in cmd/at.go (openAt)
// treats a ref without '@' or '~' whose name fails ValidateBranch as a
// malformed point; the new '^' suffix is not in its strings.ContainsAny
// "@~", and "nosuch^" fails ValidateBranch for its '^'.
func TestReview20AtCaretOfAnUnknownBranch(t *testing.T) {
	_, run, must := r18Workspace(t, "r20c")
	must("insert", "c", `{"_id": 1}`)
	must("insert", "c", `{"_id": 2}`)
	for _, args := range [][]string{
		{"find", "c", "--at", "nosuch~1"},
		{"find", "c", "--at", "nosuch^"},
		{"count", "c", "--at", "nosuch^"},
		{"show", "nosuch^"},
	} {
		if code, _, errOut := run(args...); code != 4 {
			t.Errorf("argon %s: exit %d (%q), want 4 (branch not found), as for nosuch~1", strings.Join(args, " "), code, strings.TrimSpace(errOut))
		}
	}
}

// Was a defect (fixed). 3611fa4 made a ref no branch could be named (main^2, a..b) a
// usage error (exit 2) "in diff, merge, show, export, reset and revert"
// (its message; argon help refs: "malformed refs exit 2"), but export,
// log, branch create --from and tag NAME REF still say 'branch "main^2"
// not found' and exit 4: they call resolvePoint without invalidRef
// (cmd/export.go exportState, cmd/log.go, cmd/branch.go startPoint,
// cmd/tag.go), and exportState first opens "main^2" as a branch.
func TestReview20MalformedRefExitsTwoEverywhere(t *testing.T) {
	dir, run, must := r18Workspace(t, "r20m")
	must("insert", "c", `{"_id": 1}`)
	must("insert", "c", `{"_id": 2}`)
	for _, ref := range []string{"main^2", "a..b"} {
		for _, args := range [][]string{
			{"diff", ref, "main"}, // the reference: exit 2
			{"export", ref, "--dir", dir + "/dump"},
			{"log", ref},
			{"branch", "create", "x", "--from", ref},
			{"tag", "x", ref},
		} {
			if code, _, errOut := run(args...); code != 2 {
				t.Errorf("argon %s: exit %d (%q), want 2 as diff gives (invalid ref)", strings.Join(args, " "), code, strings.TrimSpace(errOut))
			}
		}
	}
}

// Was a defect (fixed). reset's refusal of a state inside a commit names the ways out
// as bare LSNs ("reset to its end (LSN 3) or to before it (LSN 1)"), but
// a bare LSN given to reset is an LSN of the branch being reset (refArg:
// cur@N), not of the branch the ref named. Resetting branch other to
// main@2 (inside main's commit 2..3) advises "LSN 3"; `argon reset 3` on
// other names other@3, other's own head: "other is already at 3". The
// hint should name the states as refs (main@3, main@1). cmd/reset.go,
// the usageErrorf after commitAt.
func TestReview20ResetInsideACommitHintNamesTheRightBranch(t *testing.T) {
	_, run, must := r18Workspace(t, "r20n")
	must("insert", "c", `{"_id": 1}`) // main 1..1
	must("branch", "create", "other", "--from", "main@0")
	must("insert", "c", `[{"_id": 20}, {"_id": 21}, {"_id": 22}]`, "--branch", "other") // other 1..3
	must("insert", "c", `[{"_id": 2}, {"_id": 3}]`)                                     // main 2..3
	code, _, errOut := run("reset", "main@2", "--branch", "other")
	if code != 2 {
		t.Fatalf("reset main@2 --branch other: exit %d, %q; want 2 (inside main's commit 2..3)", code, errOut)
	}
	if !strings.Contains(errOut, "main@3") {
		t.Errorf("reset main@2 --branch other: %q: the way out is main@3 (or main@1), but the hint names bare LSNs, which reset reads on other", strings.TrimSpace(errOut))
	}
}

// Was a defect (minor; fixed). 3611fa4 refuses an empty ref "instead of meaning
// HEAD", but only where refArg reads it (show, reset, revert, tag):
// `argon diff ” main` compares the current branch with main and exits
// 0, `argon export ” --dir D` exports the current branch's head, and
// `argon merge ”` says "cannot merge  into itself". refs.Resolve takes
// an empty name for the default branch (name == "" || name == "HEAD"),
// which diff (resolveRef), export (exportState) and merge reach directly.
func TestReview20EmptyRefRefusedEverywhere(t *testing.T) {
	dir, run, must := r18Workspace(t, "r20z")
	must("insert", "c", `{"_id": 1}`)
	for _, args := range [][]string{
		{"show", ""}, // the reference: exit 2, "the ref is empty"
		{"diff", "", "main"},
		{"diff", "main", ""},
		{"export", "", "--dir", dir + "/dump"},
		{"merge", ""},
	} {
		if code, _, errOut := run(args...); code != 2 || !strings.Contains(errOut, "empty") {
			t.Errorf("argon %q: exit %d (%q), want 2 and the ref is empty, as show gives", args, code, strings.TrimSpace(errOut))
		}
	}
}

package main

import (
	"testing"
)

// DEFECT (regression of eb389b8). `argon tag` accepts a name that reads
// as a WHEN (a date such as 2026-11-25, a common tag name), and `argon
// branch create NEW --from NAME` no longer reaches it: since eb389b8 a
// bare --from that parses as a WHEN is rewritten to CURRENT@NAME before
// any branch or tag is looked up, so it now names a time on the current
// branch (here: exit 4, "before branch main existed"); before, it named
// the tag. `argon help refs` lists `TAG` as a ref and says `branch create
// --from` takes refs. The same holds for a branch named `2` or `10m`
// (`--from 2` silently forks from main@2 instead of branch 2's head).
// Either refusing such names or resolving the existing tag is a right
// answer.
func TestReview17FromDoesNotReachATagNamedLikeADate(t *testing.T) {
	_, run := r15Workspace(t, "r17w")
	must := mustRun(t, run)
	must("init", "r17w")
	must("insert", "c", `{"_id": 1}`)
	must("insert", "c", `{"_id": 2}`)
	if code, _, _ := run("tag", "2026-11-25", "main@1"); code != 0 {
		return // refusing a tag name that refs read as a time is a right answer
	}
	code, out, errOut := run("branch", "create", "x", "--from", "2026-11-25")
	if code != 0 {
		t.Fatalf("branch create x --from 2026-11-25 (an existing tag at main@1): exit %d, %q, %q; want the branch created at the tag", code, out, errOut)
	}
	if got := must("count", "c", "--branch", "x"); got != "1\n" {
		t.Errorf("count c on x (created --from the tag 2026-11-25 = main@1): %q; want \"1\\n\"", got)
	}
}

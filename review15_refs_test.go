package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// DEFECT. A tag may take the name of a timeline id. README and `argon help
// refs`: a deleted branch's timeline stays reachable as TIMELINE@LSN, the
// position `argon reflog` prints (`argon branch create back --from
// TIMELINE@3`); names are looked up as a branch, then a tag, then a
// timeline id (internal/refs). `argon tag 6b09...` (the id the reflog
// printed) is accepted, and from then on TIMELINE@LSN is refused, exit 2:
// "invalid ref ...: ... is a tag, which names one state". Tags are kept
// from taking branches' names for the same reason (a branch would hide
// the tag); nothing keeps them (or branches) from hiding a timeline.
func TestReview15TagNamedLikeATimelineHidesTheReflogPosition(t *testing.T) {
	_, run := r15Workspace(t, "r15r")
	must := mustRun(t, run)
	must("init", "r15r")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	var del struct {
		Timeline string `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(must("branch", "delete", "g", "--yes", "--json")), &del); err != nil || del.Timeline == "" {
		t.Fatalf("branch delete --json: %v", err)
	}
	ref := del.Timeline + "@2"
	if code, out, errOut := run("count", "c", "--at", ref); code != 0 || out != "2\n" {
		t.Fatalf("count c --at %s before the tag: exit %d, %q, %q", ref, code, out, errOut)
	}
	run("tag", del.Timeline, "main") // refusing this name is a right answer
	if code, out, errOut := run("count", "c", "--at", ref); code != 0 || out != "2\n" {
		t.Errorf("count c --at %s (the deleted branch's position in argon reflog) after `argon tag %s main`: exit %d, stdout %q, stderr %q; want exit 0 and \"2\\n\"",
			ref, del.Timeline, code, out, errOut)
	}
}

// DEFECT (message). After a branch name is deleted and created again,
// BRANCH@{1} is refused with "the reflog of g holds 1 earlier positions",
// which names @{1} as the one position there is; the position is @{2} (the
// OLD of the delete record), and @{3} gets the same message.
// internal/refs resolveReflog counts the records with an OLD position, but
// N counts every record.
func TestReview15ReflogRangeMessageAfterARecreatedName(t *testing.T) {
	_, run := r15Workspace(t, "r15m")
	must := mustRun(t, run)
	must("init", "r15m")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	must("branch", "delete", "g", "--yes")
	must("branch", "create", "g")
	if code, out, _ := run("count", "c", "--at", "g@{2}"); code != 0 || out != "2\n" {
		t.Fatalf("count c --at g@{2}: exit %d, %q; want 2 (g before its deletion)", code, out)
	}
	code, out, errOut := run("count", "c", "--at", "g@{1}")
	if code != 4 || out != "" {
		t.Fatalf("count c --at g@{1}: exit %d, %q, %q; want exit 4", code, out, errOut)
	}
	// Today: "the reflog of g holds 1 earlier positions (argon reflog g)".
	if !strings.Contains(errOut, "g@{2}") {
		t.Errorf("count c --at g@{1}: %q; want the message to name g@{2}, the one earlier position there is (it says 1 earlier position, and refuses @{1})", errOut)
	}
}

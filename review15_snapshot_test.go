package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// r15Workspace makes an empty folder for a workspace of the embedded
// engine and returns it with a runner of argon commands in it (exit
// code, stdout, stderr).
func r15Workspace(t *testing.T, p string) (string, func(args ...string) (int, string, string)) {
	t.Helper()
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine")
	}
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "", "ARGON_PROJECT": "", "ARGON_BRANCH": "", "ARGON_COMMIT_DATE": "",
		"ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir, "ARGON_SNAPSHOT_EVERY": ""} {
		t.Setenv(k, v)
	}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		io, _, stdout, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return code, stdout.String(), errOut.String()
	}
	return dir, run
}

// DEFECT. `argon snapshot list` names an image on a deleted branch's
// timeline after the deleted branch, "g (deleted)", as if it were a
// branch: in the table, and as the value of "branch" in --json.
// docs/JSON.md: `snapshot list`: "`branch` (absent when no branch points
// at the image's timeline)"; `argon snapshot list --help`: "the branch
// whose history holds each (a timeline id when no branch points at it any
// more)". cmd/snapshot.go takes the names from Repo.BranchNames, which
// gives deleted branches' timelines "NAME (deleted)" (for argon log), so
// its `name == ""` case never happens for them. A script reading
// "branch" gets a name no ref resolves ("g (deleted)").
func TestReview15SnapshotListNamesADeletedBranch(t *testing.T) {
	_, run := r15Workspace(t, "r15s")
	must := mustRun(t, run)
	must("init", "r15s")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	must("snapshot", "g")
	var made struct {
		Image struct {
			Timeline string `json:"timeline"`
		} `json:"image"`
	}
	if err := json.Unmarshal([]byte(must("snapshot", "g", "--json")), &made); err != nil || made.Image.Timeline == "" {
		t.Fatalf("snapshot g --json: %v", err)
	}
	tl := made.Image.Timeline
	must("branch", "delete", "g", "--yes")

	var imgs []map[string]any
	if err := json.Unmarshal([]byte(must("snapshot", "list", "--json")), &imgs); err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0]["timeline"] != tl {
		t.Fatalf("snapshot list --json: %v; want the one image, on timeline %s", imgs, tl)
	}
	if b, ok := imgs[0]["branch"]; ok {
		t.Errorf("snapshot list --json: \"branch\": %q for the image on deleted branch g's timeline; want no \"branch\" (docs/JSON.md: absent when no branch points at the image's timeline)", b)
	}
	out := must("snapshot", "list")
	if want := "timeline:" + tl + "\t2\t"; !strings.HasPrefix(out, want) {
		t.Errorf("snapshot list: %q; want the row to start %q (the timeline id: no branch points at it)", out, want)
	}
}

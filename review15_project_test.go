package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/ui"
)

// r15ServedWorkspace makes a workspace of the embedded engine with
// project p (main holds c {_id 1}), serves it with argon serve, and
// returns the directory, the served URI and a runner of argon commands in
// a folder (exit code, stdout, stderr).
func r15ServedWorkspace(t *testing.T, p string) (string, string, func(dir string, args ...string) (int, string, string)) {
	t.Helper()
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine")
	}
	root := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "", "ARGON_PROJECT": "", "ARGON_BRANCH": "", "ARGON_COMMIT_DATE": "",
		"ARGON_AUTHOR": "tester", "HOME": root, "XDG_CONFIG_HOME": root, "ARGON_SNAPSHOT_EVERY": ""} {
		t.Setenv(k, v)
	}
	run := func(dir string, args ...string) (int, string, string) {
		t.Helper()
		io, _, stdout, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return code, stdout.String(), errOut.String()
	}
	dir := filepath.Join(root, "ws")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", p}, {"insert", "c", `{"_id": 1}`}} {
		if code, _, errOut := run(dir, args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	uc, errc := make(chan string, 1), make(chan error, 1)
	go func() {
		errc <- store.Serve(ctx, dir+"/.argon", "127.0.0.1:0", 10*time.Second, func(u string) { uc <- u })
	}()
	var uri string
	select {
	case uri = <-uc:
	case err := <-errc:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-errc
	})
	return dir, uri, run
}

// DEFECT. `argon --project OTHER branch rename OLD NEW`, run in a
// workspace whose current branch is also called OLD, renames OTHER's
// branch and then rewrites the workspace's current branch to NEW
// (cmd/branch.go runBranchRename compares only the names: `cur == old`,
// whatever the project). The workspace's project has no branch NEW: every
// command of the workspace then fails with `branch "NEW" not found`
// (exit 4), though nothing happened to its branches. (The same root,
// Factory.CurrentBranch ignoring --project, makes `argon --project OTHER
// branch delete OLD --yes` refuse "it is the current branch", and marks
// OTHER's branch OLD with '*' in `argon --project OTHER branch`.)
func TestReview15RenameInAnotherProjectMovesTheWorkspaceHEAD(t *testing.T) {
	dir, uri, run := r15ServedWorkspace(t, "r15pa")
	must := func(dir string, args ...string) {
		t.Helper()
		if code, _, errOut := run(dir, args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut)
		}
	}
	// A second project on the same engine, made from another folder.
	other := filepath.Join(filepath.Dir(dir), "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	must(other, "init", "r15pb", "--uri", uri)
	must(other, "branch", "create", "x")
	// The workspace (project r15pa) works on its own branch x.
	must(dir, "checkout", "-b", "x")

	code, out, errOut := run(dir, "--project", "r15pb", "branch", "rename", "x", "y")
	if code != 0 || out != "Renamed branch x to y\n" {
		t.Fatalf("argon --project r15pb branch rename x y: exit %d, %q, %q", code, out, errOut)
	}
	head, err := os.ReadFile(filepath.Join(dir, ".argon", "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(head)) != "x" {
		t.Errorf("the workspace of project r15pa names current branch %q after a rename in project r15pb; want x (its own branch x was not renamed)", strings.TrimSpace(string(head)))
	}
	code, out, errOut = run(dir, "status", "-s")
	if code != 0 || out != "## x (head 1)\n" {
		t.Errorf("argon status -s in the workspace of r15pa: exit %d, stdout %q, stderr %q; want exit 0 and \"## x (head 1)\\n\"", code, out, errOut)
	}
	// The other project's branches: its main is the one its commands
	// use (as without a workspace), not the workspace's x; and checkout,
	// which moves the workspace's current branch, refuses.
	want := `[{"branch":"main","current":true,"head":0,"base":0,"parent":""},{"branch":"y","current":false,"head":0,"base":0,"parent":"main"}]` + "\n"
	if code, out, _ := run(dir, "--project", "r15pb", "branch", "--json"); code != 0 || out != want {
		t.Errorf("argon --project r15pb branch --json: exit %d, %s; want %s", code, out, want)
	}
	code, _, errOut = run(dir, "--project", "r15pb", "checkout", "main")
	if code != 2 || !strings.HasPrefix(errOut, "argon: error: checkout switches the workspace's own project (r15pa), and --project or --db name another\n") {
		t.Errorf("argon --project r15pb checkout main: exit %d, %q; want exit 2", code, errOut)
	}
}

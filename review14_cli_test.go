package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// r14Workspace makes a workspace of the embedded engine with project p:
// main holds c {_id 1} (LSN 1) and c {_id 2} (LSN 2); feature forks main
// at 2 and adds c {_id 3} (LSN 3); main then adds c {_id 4} (its LSN 3). The
// current branch is main. It returns the directory and a runner that
// gives the exit code, standard output and standard error.
func r14Workspace(t *testing.T, p string) (string, func(args ...string) (int, string, string)) {
	t.Helper()
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine")
	}
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "", "ARGON_PROJECT": "", "ARGON_BRANCH": "", "ARGON_COMMIT_DATE": "",
		"ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir} {
		t.Setenv(k, v)
	}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		io, _, stdout, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return code, stdout.String(), errOut.String()
	}
	must := func(args ...string) {
		t.Helper()
		if code, _, errOut := run(args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut)
		}
	}
	must("init", p)
	must("insert", "c", `{"_id": 1}`)
	must("insert", "c", `{"_id": 2}`)
	must("branch", "create", "feature")
	must("insert", "c", `{"_id": 3}`, "--branch", "feature")
	must("insert", "c", `{"_id": 4}`)
	return dir, run
}

// DEFECT (2175684). Flags of a command given before its name worked, as
// cobra strips them to find the command: 'argon -n 1 log', 'argon
// --branch main log', 'argon --at 1 count c'. The pre-scan in
// cmd/root.go unknownCommand skips only the root's flags, so it takes the
// flag's value for the command name: 'unknown command "1" for argon',
// with the hint 'did you mean `argon gc`?' (exit 2).
func TestReview14CommandFlagsBeforeTheCommand(t *testing.T) {
	_, run := r14Workspace(t, "r14a")
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"-n", "1", "log", "--oneline"}, "3..3 (main) insert 1 document into c\n"},
		{[]string{"--branch", "feature", "log", "-n", "1", "--oneline"}, "3..3 (feature) insert 1 document into c\n"},
		{[]string{"--at", "1", "count", "c"}, "1\n"},
	} {
		code, out, errOut := run(c.args...)
		if code != 0 || out != c.out {
			t.Errorf("argon %s: exit %d, stdout %q, stderr %q; want exit 0 and %q (as before 2175684)",
				strings.Join(c.args, " "), code, out, errOut, c.out)
		}
	}
}

// PINNED (2175684). What the pre-scan must keep: unknown commands with
// flags are exit 2; the root's flags with values in every spelling,
// aliases, help, completion and __complete still reach their command.
func TestReview14UnknownCommandPrescan(t *testing.T) {
	_, run := r14Workspace(t, "r14b")
	for _, args := range [][]string{
		{"xyzzy", "--help"},
		{"rebase", "--onto", "main"},
		{"--lock-timeout", "1s", "xyzzy", "-n", "3"},
		{"--uri", "mongodb://127.0.0.1:1", "xyzzy"},
		{"-q", "--json", "xyzzy"},
	} {
		if code, out, errOut := run(args...); code != 2 || out != "" || !strings.Contains(errOut, `unknown command`) {
			t.Errorf("argon %v: exit %d, stdout %q, stderr %q; want exit 2, unknown command", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{
		{"--lock-timeout", "5s", "log", "-n", "1", "--oneline"},
		{"--lock-timeout=5s", "--no-pager", "-q", "log", "-n", "1", "--oneline"},
		{"--project", "r14b", "log", "-n", "1", "--oneline"},
		{"--project=r14b", "--json=false", "log", "-n", "1", "--oneline"},
		{"--timeout", "5s", "switch", "main"},
		{"help", "log"},
		{"help", "refs"},
		{"__complete", "log", ""},
		{"__completeNoDesc", "log", ""},
		{"version"},
		{"--help"},
		{"-h"},
	} {
		if code, _, errOut := run(args...); code != 0 {
			t.Errorf("argon %v: exit %d: %s", args, code, errOut)
		}
	}
}

// DEFECT (4886297). 'argon help refs': HEAD is "the current branch (or
// --branch) ... HEAD@LSN". With --branch, --at HEAD~1 reads --branch's
// history, but --at HEAD@2 is refused: cmd/at.go openReader compares
// the ref's name "HEAD" with --branch ("--branch feature and --at HEAD@2
// name different branches", exit 2).
func TestReview14AtHEADWithBranchFlag(t *testing.T) {
	_, run := r14Workspace(t, "r14c")
	if code, out, errOut := run("count", "c", "--branch", "feature", "--at", "HEAD~1"); code != 0 || out != "2\n" {
		t.Errorf("count --branch feature --at HEAD~1: exit %d, %q, %q; want 2", code, out, errOut)
	}
	if code, out, errOut := run("count", "c", "--branch", "feature", "--at", "HEAD@3"); code != 0 || out != "3\n" {
		t.Errorf("count --branch feature --at HEAD@3: exit %d, stdout %q, stderr %q; want 3 (feature@3, as --at feature@3)", code, out, errOut)
	}
}

// DEFECT (4886297). export takes a REF, yet 'argon export HEAD' looks for
// a branch named HEAD (cmd/export.go exportState opens a plain name as a
// branch without refs.Resolve): 'branch "HEAD" not found', exit 4, while
// HEAD~0 and HEAD@N export.
func TestReview14ExportHEAD(t *testing.T) {
	dir, run := r14Workspace(t, "r14d")
	if code, _, errOut := run("export", "HEAD~0", "--dir", filepath.Join(dir, "a")); code != 0 {
		t.Fatalf("export HEAD~0: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run("export", "HEAD", "--dir", filepath.Join(dir, "b")); code != 0 {
		t.Errorf("export HEAD: exit %d: %s; want main's head exported, as export main does", code, errOut)
	}
}

// DEFECT (4886297, HEAD semantics). HEAD is the current branch "as in
// git". On main, 'argon merge HEAD --into feature' resolves HEAD against
// the merge's target (cmd/merge.go runMerge passes target as the default
// branch to resolveRef), so it says "cannot merge HEAD into itself"
// (exit 2) instead of merging main into feature as 'merge main --into
// feature' does.
func TestReview14MergeHEADInto(t *testing.T) {
	_, run := r14Workspace(t, "r14e")
	code, want, errOut := run("merge", "main", "--into", "feature", "--dry-run", "--json")
	if code != 0 {
		t.Fatalf("merge main --into feature --dry-run: exit %d: %s", code, errOut)
	}
	code, got, errOut := run("merge", "HEAD", "--into", "feature", "--dry-run", "--json")
	if code != 0 || strings.Replace(got, `"source":"HEAD"`, `"source":"main"`, 1) != want {
		t.Errorf("on main, merge HEAD --into feature --dry-run: exit %d, stdout %q, stderr %q; want what merge main --into feature reports:\n%s", code, got, errOut, want)
	}
}

// DEFECT (d12acd6). 'argon log TAG' labels the tag's commits with the
// branch name stored in the tag when it was made (cmd/log.go runLog:
// branch = p.Tag.Branch). After the branch is renamed, that name is no
// branch at all, while 'argon tag' lists the tag as feat2@3 and 'argon
// log feat2' and 'argon show v1' say feat2.
func TestReview14LogTagLabelAfterRename(t *testing.T) {
	_, run := r14Workspace(t, "r14f")
	for _, args := range [][]string{{"tag", "v1", "feature"}, {"branch", "rename", "feature", "feat2"}} {
		if code, _, errOut := run(args...); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut)
		}
	}
	_, byBranch, _ := run("log", "feat2", "--oneline")
	code, byTag, errOut := run("log", "v1", "--oneline")
	if code != 0 || byTag != byBranch {
		t.Errorf("log v1 --oneline: exit %d, %q (stderr %q); want the log of feat2, where v1 points:\n%s", code, byTag, errOut, byBranch)
	}
	if _, show, _ := run("show", "v1"); !strings.Contains(show, "(feat2)") {
		t.Errorf("show v1: %q", show)
	}
}

// DEFECT (497ca4f). The repository's clock keeps milliseconds so that a
// record printed as written shows the time later reads show; but
// ARGON_COMMIT_DATE replaces the clock un-truncated (cmd/factory.go, r.Now
// = t.UTC()), so 'tag --json' prints .123456789Z and 'tag --json' later
// .123Z.
func TestReview14CommitDateMilliseconds(t *testing.T) {
	_, run := r14Workspace(t, "r14g")
	t.Setenv("ARGON_COMMIT_DATE", "2026-01-02T15:04:05.123456789Z")
	code, made, errOut := run("tag", "v1", "main", "--json")
	if code != 0 {
		t.Fatalf("tag --json: exit %d: %s", code, errOut)
	}
	_, listed, _ := run("tag", "--json")
	var m struct {
		Tag struct {
			Created string `json:"created_at"`
		} `json:"tag"`
	}
	var l []struct {
		Created string `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(made), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(listed), &l); err != nil || len(l) != 1 {
		t.Fatalf("tag --json: %q, %v", listed, err)
	}
	if m.Tag.Created != l[0].Created {
		t.Errorf("tag --json as made: %s; as read back: %s; want the same time", m.Tag.Created, l[0].Created)
	}
}

// PINNED (d12acd6, 05f883c, 4886297, 8890ac5). log REF and HEAD.
func TestReview14LogRefAndHEAD(t *testing.T) {
	_, run := r14Workspace(t, "r14h")
	if code, _, errOut := run("tag", "t3", "feature"); code != 0 {
		t.Fatal(errOut)
	}
	ok := []struct {
		args []string
		out  string
	}{
		{[]string{"log", "HEAD~1", "--oneline"}, "2..2 (main) insert 1 document into c\n1..1 (main) insert 1 document into c\n"},
		{[]string{"log", "main@1", "--oneline"}, "1..1 (main) insert 1 document into c\n"},
		{[]string{"log", "feature~1", "--oneline"}, "2..2 (main, inherited) insert 1 document into c\n1..1 (main, inherited) insert 1 document into c\n"},
		{[]string{"log", "t3", "-n", "1", "--oneline"}, "3..3 (feature) insert 1 document into c\n"},
		{[]string{"log", "HEAD", "-n", "1", "--oneline"}, "3..3 (main) insert 1 document into c\n"},
		{[]string{"log", "feature", "--graph", "-n", "1"}, "* 3..3 (feature) insert 1 document into c\n"},
		{[]string{"log", "feature~1", "--entries"}, "2\tput\tc\t2\n1\tput\tc\t1\n"},
		{[]string{"count", "c", "--at", "HEAD~2"}, "1\n"},
		{[]string{"diff", "HEAD~1", "HEAD", "--name-only"}, ""},
	}
	for _, c := range ok {
		code, out, errOut := run(c.args...)
		if code != 0 || (c.out != "" && out != c.out) {
			t.Errorf("argon %v: exit %d, %q, %q; want %q", c.args, code, out, errOut, c.out)
		}
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"log", "nosuch"}, 4},
		{[]string{"log", "main~9"}, 4},
		{[]string{"log", "main@99"}, 4},
		{[]string{"log", "main~x"}, 2},
		{[]string{"log", "main@zzz"}, 2},
		{[]string{"log", "t3@1"}, 2},
		{[]string{"log", "main", "--branch", "feature"}, 2},
		{[]string{"log", "--entries", "--graph"}, 2},
		{[]string{"log", "a", "b"}, 2},
		{[]string{"branch", "create", "HEAD"}, 1}, // as every invalid name (branch.txtar)
		{[]string{"tag", "HEAD", "main"}, 1},
		{[]string{"init", ""}, 2},
	} {
		if code, out, errOut := run(c.args...); code != c.code {
			t.Errorf("argon %v: exit %d (%q, %q); want %d", c.args, code, out, errOut, c.code)
		}
	}
	if code, out, errOut := run("checkout", "main"); code != 0 || !strings.HasPrefix(out, "Already on branch main (head LSN 3)\n") {
		t.Errorf("checkout main on main: exit %d, %q, %q", code, out, errOut)
	}
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A process killed during update --many's write-back (right after the
// server answered its delete of the matched documents, before their new
// versions are inserted) leaves the working database without them; the
// next command takes the branch over and repairs the announced keys from
// the log: status is clean, fsck finds nothing, the log holds no commit of
// the update. The killed process's scratch folder (argon-scratch-* in
// TMPDIR) stays, and argon gc does not remove it (ARCHITECTURE: only the
// system's cleaning of its temporary directory does; gc's help still says
// it drops what an interrupted update --many left).
func TestReview13KilledWriteBack(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine's scratch engine")
	}
	// How many writes the update sends to the working database, unkilled
	// (the write-back's delete and insert, the marker).
	total := func() int {
		dir, run := statusWorkspace(t, "kl")
		run("insert", "c", `[{"_id": 2, "n": 2}, {"_id": 3, "n": 3}, {"_id": "app", "n": 0}]`)
		env := append(os.Environ(), "TMPDIR="+t.TempDir(), "ARGON_AUTHOR=tester", "HOME="+dir, "XDG_CONFIG_HOME="+dir, "ARGON_URI=", "ARGON_PROJECT=")
		n, _, out := review4Kill(t, dir, env, "ar_kl__main", 0, "update", "c", `{"n": {"$gte": 1}}`, `{"$inc": {"n": 10}}`, "--many")
		t.Logf("unkilled: %d writes: %s", n, out)
		return n
	}()
	for n := 1; n <= total; n++ {
		t.Run(fmt.Sprint("kill", n), func(t *testing.T) { r13KillAt(t, n) })
	}
}

func r13KillAt(t *testing.T, n int) {
	dir, run := statusWorkspace(t, "kl")
	run("insert", "c", `[{"_id": 2, "n": 2}, {"_id": 3, "n": 3}, {"_id": "app", "n": 0}]`)
	_, logBefore := run("log", "--oneline")
	tmp := t.TempDir()
	env := append(os.Environ(), "TMPDIR="+tmp, "ARGON_AUTHOR=tester", "HOME="+dir, "XDG_CONFIG_HOME="+dir, "ARGON_URI=", "ARGON_PROJECT=")
	_, killed, out := review4Kill(t, dir, env, "ar_kl__main", n, "update", "c", `{"n": {"$gte": 1}}`, `{"$inc": {"n": 10}}`, "--many")
	if !killed {
		t.Fatalf("not killed: %s", out)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "argon-scratch-*"))
	t.Logf("scratch folders left by the killed process: %v", left)
	if _, out := run("status", "-s"); strings.Count(out, "\n") != 1 {
		t.Errorf("status -s after the takeover: %q, want clean", out)
	}
	_, lg := run("log", "--oneline", "-n", "1")
	want := "{\"_id\":3,\"n\":3}\n"
	if strings.Contains(lg, "update") {
		want = "{\"_id\":3,\"n\":13}\n"
	}
	if _, out := run("find", "c", `{"_id": 3}`); out != want {
		t.Errorf("find 3 after the takeover: %q, want %q (log %q)", out, want, lg)
	}
	if _, out := run("log", "--oneline"); out != logBefore && !strings.HasPrefix(out, "6..8 (main) update") {
		t.Errorf("log after the takeover: %q, want %q or the update committed", out, logBefore)
	}
	if _, out := run("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck: %q", out)
	}
	t.Setenv("TMPDIR", tmp)
	run("gc")
	after, _ := filepath.Glob(filepath.Join(tmp, "argon-scratch-*"))
	if len(left) != 1 || len(after) != 1 {
		t.Errorf("scratch folders: %v after the kill, %v after gc; want the one left (documented)", left, after)
	}
}

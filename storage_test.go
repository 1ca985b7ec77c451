package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// A full disk under the embedded engine: the write that runs out of space
// fails with a hint saying what to do, nothing committed is lost, and once
// space is freed the next command discards the failed write and argon
// works on. The workspace lives on a small tmpfs, which needs root (as in
// CI); elsewhere the test cannot make a disk full and says so.
func TestFullDisk(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine's storage")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	home := t.TempDir()
	for k, v := range map[string]string{"ARGON_AUTHOR": "tester", "HOME": home, "XDG_CONFIG_HOME": home, "NO_COLOR": "1"} {
		t.Setenv(k, v)
	}
	run := func(args ...string) (int, string, string) {
		io, _, out, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
		return code, out.String(), errOut.String()
	}
	must := func(args ...string) string {
		code, out, e := run(args...)
		if code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, e)
		}
		return out
	}
	must("init", "full")
	must("insert", "kept", `{"_id": 1, "v": "committed before the disk filled"}`)
	var big strings.Builder
	for i := 0; i < 40000; i++ {
		fmt.Fprintf(&big, `{"_id": %d, "pad": "%s"}`+"\n", i, strings.Repeat("x", 800))
	}
	file := filepath.Join(home, "big.ndjson")
	if err := os.WriteFile(file, []byte(big.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run("insert", "big", "--file", file)
	if code != 1 || !strings.Contains(errOut, "database or disk is full") ||
		!strings.Contains(errOut, "argon: hint: the disk holding the engine's data is full or failing: free space and run the command again") {
		t.Fatalf("insert on a full disk: exit %d, stderr %q; want exit 1 with the disk-full hint", code, errOut)
	}
	// Space freed (the tmpfs grows): the failed write is gone, the
	// committed one is there, and writes work again.
	if out, err := exec.Command("mount", "-o", "remount,size=200m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	if got := strings.TrimSpace(must("count", "big")); got != "0" {
		t.Errorf("after freeing space, big holds %s documents of the failed insert, want 0", got)
	}
	if got := must("find", "kept"); !strings.Contains(got, "committed before the disk filled") {
		t.Errorf("the committed document is gone: %q", got)
	}
	must("insert", "after", `{"_id": 1}`)
	if out := must("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck after the full disk: %s", out)
	}
}

package main

import (
	"testing"

	"github.com/argon-db/argon/internal/commit"
)

func TestReview18XTwoResets(t *testing.T) {
	dir, run, must := r18Workspace(t, "r18x")
	must("insert", "c", `{"_id": 1, "v": 0}`)
	must("insert", "c", `{"_id": 2}`)
	must("insert", "c", `{"_id": 3}`)
	serveWorkspace(t, dir)
	fired := false
	var bc int
	var bo, be string
	commit.Hook = func(point string) {
		if point != "after-commit" || fired {
			return
		}
		fired = true
		bc, bo, be = run("reset", "main~2")
	}
	defer func() { commit.Hook = nil }()
	code, out, errOut := run("reset", "main~1")
	commit.Hook = nil
	t.Logf("A: %d %q %q", code, out, errOut)
	t.Logf("B: %d %q %q", bc, bo, be)
	t.Logf("%s", must("reflog", "main"))
	t.Logf("%s", must("find", "c"))
	t.Logf("%s", must("status"))
	t.Logf("%s", must("fsck"))
	t.Logf("%s", must("log", "--oneline"))
}

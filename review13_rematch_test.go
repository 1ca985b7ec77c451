package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"
)

// r13FindsOnC runs argon update --many in dir and returns how many finds
// it sent to collection c of the working database ar_rm__main.
func r13FindsOnC(t *testing.T, dir string) int {
	t.Helper()
	var mu sync.Mutex
	finds := 0
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		if c, _ := e.Command.Lookup(e.CommandName).StringValueOK(); e.CommandName == "find" && c == "c" && e.DatabaseName == "ar_rm__main" {
			finds++
		}
	}}
	runMonitored(t, dir, mon, []string{"update", "c", `{"n": {"$gte": 0}}`, `{"$inc": {"n": 1}}`, "--many"})
	mu.Lock()
	defer mu.Unlock()
	return finds
}

// The second match before the write-back (the filter must still match
// exactly the documents read) is skipped only in a process that runs the
// engine itself (Repo.Exclusive); a client of argon serve, where
// applications share the engine, still runs it.
func TestReview13RematchOnlySkippedWhenExclusive(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine")
	}
	dir, run := statusWorkspace(t, "rm")
	run("insert", "c", `[{"_id": 2, "n": 2}, {"_id": 3, "n": 3}]`)
	exclusive := r13FindsOnC(t, dir)
	_ = serveWorkspace(t, dir)
	served := r13FindsOnC(t, dir)
	t.Logf("finds on c: exclusive %d, served %d", exclusive, served)
	if served != exclusive+1 {
		t.Errorf("finds on c: %d in a process that runs the engine, %d as a client of argon serve; want one more (the second match) as a client", exclusive, served)
	}
	if _, out := run("find", "c", `{"_id": 3}`); out != "{\"_id\":3,\"n\":5}\n" {
		t.Errorf("after both updates: %q", out)
	}
	if _, out := run("status", "-s"); !strings.HasPrefix(out, "## main") || strings.Contains(out, "\n") && strings.Count(out, "\n") != 1 {
		t.Errorf("status -s: %q", out)
	}
	if _, out := run("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck: %q", out)
	}
}

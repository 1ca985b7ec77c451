package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/ui"
)

// Not a defect (checked): through argon serve, a writer waiting for
// another writer's lease (which holds the working database's writes by a
// carried hold) still waits in its own lease loop: its carried hold is
// refused at once (tryHold never waits), it says "waiting for another
// writer" after waitNotice, and it ends with the busy error at
// ARGON_BUSY_TIMEOUT, not at the holder's lease TTL.
func TestReview29ServedBusyWriterStillNoticesAndTimesOut(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only")
	}
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "", "ARGON_PROJECT": "", "ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir} {
		t.Setenv(k, v)
	}
	cliOut(t, dir, "init", "busy")
	cliOut(t, dir, "insert", "c", `{"_id": 1}`)
	serveWorkspace(t, dir)
	const busy = 6 * time.Second
	t.Setenv("ARGON_BUSY_TIMEOUT", busy.String())

	stopped, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	commit.Hook = func(point string) {
		if point == "applied" {
			first := false
			once.Do(func() { first = true })
			if first {
				close(stopped)
				<-resume
			}
		}
	}
	defer func() { commit.Hook = nil }()
	aDone := make(chan int, 1)
	go func() {
		io, _, _, _ := ui.Test()
		aDone <- cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"insert", "c", `{"_id": 2}`})
	}()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("A never applied")
	}
	start := time.Now()
	io, _, _, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"insert", "c", `{"_id": 3}`})
	took := time.Since(start)
	close(resume)
	t.Logf("B: exit %d after %v: %s", code, took.Round(10*time.Millisecond), strings.TrimSpace(errOut.String()))
	if code == 0 {
		t.Error("B succeeded while A held the branch")
	}
	if !strings.Contains(errOut.String(), "waiting for another writer") {
		t.Error("B did not say it was waiting for another writer")
	}
	if took < busy-time.Second || took > busy+10*time.Second {
		t.Errorf("B gave up after %v, want about ARGON_BUSY_TIMEOUT (%v)", took, busy)
	}
	if c := <-aDone; c != 0 {
		t.Errorf("A: exit %d", c)
	}
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// Through argon serve, CLI write A fails after changing the working
// database (a batch insert meets a duplicate _id part way: the engine
// inserts past it; an update --many that breaks a unique index is now
// refused before it changes anything) and, still holding the
// database's writes, takes the branch again to repair (fail's settle).
// CLI write B on the same branch, which was waiting for A, takes the next
// lease first and asks for the hold. B holds the lease A waits for; A
// holds the writes B waits for. Nothing breaks the cycle but A's busy
// timeout (60 s by default; 10 s here): B, a plain insert, waited all of
// it. (Found by review; fixed: A lets go of its hold before it takes the
// branch again.)
func TestReview3FailedWriteSettleLetsGoOfItsHold(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only: both commands are clients of argon serve")
	}
	const busy = 10 * time.Second
	t.Setenv("ARGON_BUSY_TIMEOUT", busy.String())
	p := "settle"
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "", "ARGON_PROJECT": "", "ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir} {
		t.Setenv(k, v)
	}
	cliOut(t, dir, "init", p)
	cliOut(t, dir, "insert", "c", `{"_id": 1, "u": 1}`)
	cliOut(t, dir, "insert", "c", `{"_id": 2, "u": 2}`)
	cliOut(t, dir, "insert", "c", `{"_id": 3, "u": 10}`)
	cliOut(t, dir, "index", "create", "c", `{"u": 1}`, "--unique")
	serveWorkspace(t, dir)

	bHolding := make(chan struct{})
	var bOnce sync.Once
	monB := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "argonHoldWrites" {
			bOnce.Do(func() { close(bHolding) })
		}
	}}
	type result struct {
		code int
		err  string
		took time.Duration
	}
	bDone := make(chan result, 1)
	var voidOnce sync.Once
	var mu sync.Mutex
	voidReq := int64(-1)
	monA := &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if e.CommandName == "insert" && e.Command.Lookup("insert").StringValue() == "slots" &&
				strings.Contains(e.Command.String(), `"dirty": true`) {
				mu.Lock()
				voidReq = e.RequestID
				mu.Unlock()
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			mu.Lock()
			hit := e.RequestID == voidReq
			mu.Unlock()
			if !hit {
				return
			}
			voidOnce.Do(func() {
				// A's failed write is voided; B, waiting for the branch,
				// takes the next lease before A's settle does.
				go func() {
					start := time.Now()
					io, _, _, errOut := ui.Test()
					code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: monB},
						[]string{"insert", "d", `{"_id": 9}`})
					bDone <- result{code, errOut.String(), time.Since(start)}
				}()
				select {
				case <-bHolding:
				case <-time.After(30 * time.Second):
					t.Error("B never asked for the hold")
				}
			})
		},
	}
	file := filepath.Join(dir, "batch.json")
	if err := os.WriteFile(file, []byte(`{"_id": 20, "u": 20}`+"\n"+`{"_id": 1, "u": 21}`+"\n"+`{"_id": 22, "u": 22}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	io, _, _, errOut := ui.Test()
	start := time.Now()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: monA},
		[]string{"insert", "c", "--file", file})
	t.Logf("A (insert --file): exit %d after %v: %s", code, time.Since(start).Round(10*time.Millisecond), strings.TrimSpace(errOut.String()))
	if code == 0 {
		t.Fatal("A's insert succeeded; want it to fail on the duplicate _id")
	}
	var b result
	select {
	case b = <-bDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("B never ended")
	}
	t.Logf("B (insert): exit %d after %v: %s", b.code, b.took.Round(10*time.Millisecond), strings.TrimSpace(b.err))
	if b.took > busy/2 {
		t.Errorf("B, a one-document insert, took %v: it held the lease A's settle waited for (busy timeout %v) while waiting for the writes A held", b.took.Round(10*time.Millisecond), busy)
	}
}

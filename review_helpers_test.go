package main

import (
	"context"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/ui"
)

// mustRun returns run as a function that fails the test on a non-zero
// exit and returns the command's standard output.
func mustRun(t *testing.T, run func(args ...string) (int, string, string)) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		code, out, errOut := run(args...)
		if code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
}

// background is an argon command running in this process.
type background struct {
	done           chan struct{}
	code           int
	stdout, stderr string
}

// startUntil runs argon args in dir in the background and returns once
// the command has sent a command named name to the server (a driver
// command monitor sees it), or has ended.
func startUntil(dir, name string, args ...string) *background {
	b := &background{done: make(chan struct{})}
	reached := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(b.done)
		mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if e.CommandName == name {
				once.Do(func() { close(reached) })
			}
		}}
		io, _, o, eo := ui.Test()
		b.code = cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: mon}, args)
		b.stdout, b.stderr = o.String(), eo.String()
		once.Do(func() { close(reached) })
	}()
	<-reached
	return b
}

// wait waits for the command's end and returns its exit code and output.
func (b *background) wait() (int, string, string) {
	<-b.done
	return b.code, b.stdout, b.stderr
}

// atLease runs fn once, when the next write tries for its lease
// (commit.Hook "leasing": after the command's own check of uncommitted
// changes, before argon serve holds the applications' writes, which rides
// on the lease's insert), and returns a function reporting whether it
// ran.
func atLease(t *testing.T, fn func(ctx context.Context) error) func() bool {
	t.Helper()
	fired := false
	commit.Hook = func(point string) {
		if point != "leasing" || fired {
			return
		}
		fired = true
		if err := fn(context.Background()); err != nil {
			t.Errorf("the application's write: %v", err)
		}
	}
	t.Cleanup(func() { commit.Hook = nil })
	return func() bool { commit.Hook = nil; return fired }
}

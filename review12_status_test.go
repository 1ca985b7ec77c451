package main

import (
	"context"
	"os"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// review12: argon status under argon serve, racing a CLI write of another
// process and an application. status reads the working database's marker
// (Built: slot 2); then, before its read of the database runs, another
// argon commits {_id: 9} (slot 3) and an application deletes it again. The
// database then holds slot 2's documents under slot 3's marker. status's
// first attempt, on the marker Built read (TakeMarker), scans, finds slot
// 2's fingerprint and records the serve's write token as clean, before
// the read protocol's lease check throws that attempt away.
//
// The race is made deterministic with the driver's command monitor: the
// other process and the application act when status's first read of the
// marker has been answered. interrupt, when set, cancels status's context
// when it sends its first command after the attempt's second write token
// (the lease probe that rejects the attempt): a status interrupted there
// (Ctrl-C, a lost connection) leaves the record behind.
func review12RacingStatus(t *testing.T, interrupt bool) (dir string, run func(args ...string) (int, string), out string, code int) {
	t.Helper()
	dir, run = statusWorkspace(t, "rv")
	app := serveWorkspace(t, dir)
	const db = "ar_rv__main"
	if _, out := run("status", "-s"); out != "## main (head 2)\n" {
		t.Fatalf("status -s of a clean branch printed %q", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	markerReq, fired, tokens := int64(-1), false, 0
	var raceErr error
	mon := &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			mu.Lock()
			defer mu.Unlock()
			if markerReq < 0 && e.CommandName == "find" && e.DatabaseName == db && e.Command.Lookup("find").StringValue() == "_argon" {
				markerReq = e.RequestID
			}
			if fired && e.CommandName == "argonWriteToken" {
				tokens++
			}
			if interrupt && fired && tokens == 2 && e.CommandName == "find" && e.Command.Lookup("find").StringValue() == "leases" {
				cancel()
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			mu.Lock()
			if e.RequestID != markerReq || fired {
				mu.Unlock()
				return
			}
			fired = true
			mu.Unlock()
			// Another argon process commits _id 9 ...
			io, _, _, errOut := ui.Test()
			if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"insert", "c", `{"_id": 9}`}); code != 0 {
				raceErr = &exitErr{code: code, msg: errOut.String()}
				return
			}
			// ... and an application deletes it, not committed.
			if _, err := app.Database(db).Collection("c").DeleteOne(context.Background(), bson.D{{Key: "_id", Value: 9}}); err != nil {
				raceErr = err
			}
		},
	}
	io, _, stdout, _ := ui.Test()
	code = cmd.Run(ctx, &cmd.Factory{IO: io, Dir: dir, Monitor: mon}, []string{"status", "-s"})
	if raceErr != nil || !fired {
		t.Fatalf("the race did not run: fired %v, %v", fired, raceErr)
	}
	return dir, run, stdout.String(), code
}

const review12Want = "## main (head 3)\nD c 9\n"

// Pinned (passes): the racing status retries at slot 3 and reports the
// deletion; the retry's marker update (a no-op ReplaceOne, which the
// serve's guard counts as a write) moves the write token past the one the
// stale attempt recorded, so later statuses scan again.
func TestReview12ServedStatusStaleMarkerRetried(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("argon serve runs the embedded engine")
	}
	_, run, out, code := review12RacingStatus(t, false)
	if code != 0 || out != review12Want {
		t.Fatalf("the racing status exited %d and printed %q, want %q", code, out, review12Want)
	}
	for i := 0; i < 2; i++ {
		if _, out := run("status", "-s"); out != review12Want {
			t.Fatalf("status %d after the race printed %q, want %q", i+1, out, review12Want)
		}
	}
}

// Defect: the same race, and the racing status is interrupted right after
// its stale attempt (before any retry writes to the database). The clean
// record its rejected attempt wrote stays, and names the database as it
// is: every later status prints the branch clean at head 3, hiding the
// application's deletion of committed document 9 (and writes that trust
// "known clean" skip their check of the log).
func TestReview12ServedStatusStaleMarkerInterrupted(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("argon serve runs the embedded engine")
	}
	_, run, out, code := review12RacingStatus(t, true)
	if code == 0 {
		t.Fatalf("the interrupted status succeeded: %q", out)
	}
	for i := 0; i < 2; i++ {
		if _, out := run("status", "-s"); out != review12Want {
			t.Fatalf("status %d after an interrupted status printed %q, want %q: the rejected attempt's clean record hides the change", i+1, out, review12Want)
		}
	}
}

type exitErr struct {
	code int
	msg  string
}

func (e *exitErr) Error() string { return e.msg }

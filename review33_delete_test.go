package main

// Review 33 of 0f07420: `argon branch delete NAME` (no --force) holds
// applications' writes at argon serve from its last check to the drop.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// Was a defect (fixed in the twenty-third session): lock-order inversion between a delete and a CLI write on the
// same branch. A CLI write takes the branch's lease first and then holds
// the working database's writes at argon serve (commit.acquire: the lease,
// then wr.hold); branch delete now holds the writes first (holdWrites) and
// then, in its check (refuseUncommitted -> Changes -> Protocol.Read), needs
// the branch: it waits for the writer's lease, while the writer waits for
// the delete's hold. Neither moves until the delete's ARGON_BUSY_TIMEOUT
// (60 s by default) makes it fail with "busy"; a one-document insert waits
// that long too. Here the insert takes its lease while the delete holds
// the writes and has not yet read the branch (the delete is paused at its
// first command after the hold, the insert let go until it asks for its
// hold). Expected: the delete refuses or succeeds at once (as it did
// before 0f07420: its check waited milliseconds for the insert), not a
// wait of the whole busy timeout followed by a failure.
func TestReview33DeleteDeadlocksWithAWriteOnTheBranch(t *testing.T) {
	dir, run := r15Workspace(t, "r33dl")
	must := mustRun(t, run)
	must("init", "r33dl")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	serveWorkspace(t, dir)
	const busy = 8 * time.Second
	t.Setenv("ARGON_BUSY_TIMEOUT", busy.String())

	var mu sync.Mutex
	held, paused := false, false
	pause, resume := make(chan struct{}), make(chan struct{})
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		switch {
		case e.CommandName == "argonHoldWrites" && !held:
			held = true
			mu.Unlock()
			return
		case held && !paused:
			paused = true
			mu.Unlock()
			close(pause)
			<-resume
			return
		}
		mu.Unlock()
	}}
	type result struct {
		code     int
		out, err string
		took     time.Duration
	}
	delDone := make(chan result, 1)
	go func() {
		io, _, out, errOut := ui.Test()
		start := time.Now()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: mon}, []string{"branch", "delete", "g", "--yes"})
		delDone <- result{code, out.String(), errOut.String(), time.Since(start)}
	}()
	select {
	case <-pause:
	case r := <-delDone:
		t.Fatalf("the delete ended before it held the writes: %d %s %s", r.code, r.out, r.err)
	}
	// The delete holds g's writes. An insert on g takes its lease and
	// asks for its hold.
	ins := startUntil(dir, "argonHoldWrites", "insert", "c", `{"_id": 3}`, "--branch", "g")
	close(resume)
	var d result
	select {
	case d = <-delDone:
	case <-time.After(3 * busy):
		t.Fatal("the delete hangs")
	}
	insCode, insOut, insErr := ins.wait()
	t.Logf("delete: exit %d after %s: %s%s", d.code, d.took.Round(time.Millisecond), d.out, d.err)
	t.Logf("insert: exit %d: %s%s", insCode, insOut, insErr)
	if d.took >= busy || strings.Contains(d.err, "busy") {
		t.Errorf("the delete waited %s (ARGON_BUSY_TIMEOUT %s) for the insert's lease while the insert waited for the delete's hold, and ended with exit %d: %s",
			d.took.Round(time.Millisecond), busy, d.code, strings.TrimSpace(d.err))
	}
}

// Was a defect (fixed in the twenty-third session; delete racing a rename; the stale branch record predates
// 0f07420, which kept it for the new hold and check): branch delete reads
// g once (r.Branch), then holds, checks and drops THAT record's working
// database, but wal.DeleteBranch reads g again by name and deletes
// whatever g is then. When g was renamed to h and a new g created in
// between (here while the delete waits for its hold; with the prompt, while
// a person answers), the delete holds and checks h's working database,
// deletes the new g (never checked: an application's uncommitted insert
// there is cut off from any branch), drops h's working database, and
// reports success. Expected: it refuses (the branch it checked is not the
// one it would delete) or checks and drops the g it deletes.
func TestReview33DeleteRacingARenameDeletesAnotherBranch(t *testing.T) {
	dir, run := r15Workspace(t, "r33rn")
	must := mustRun(t, run)
	must("init", "r33rn")
	must("insert", "c", `{"_id": 1}`)
	must("branch", "create", "g")
	must("insert", "c", `{"_id": 2}`, "--branch", "g")
	app := serveWorkspace(t, dir)
	dbOf := func(branch string) string {
		for _, l := range strings.Split(must("status", "--branch", branch), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "database" {
				return f[1]
			}
		}
		t.Fatalf("no database for %s", branch)
		return ""
	}
	oldDB := dbOf("g")
	var newDB string
	var once sync.Once
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "argonHoldWrites" {
			return
		}
		once.Do(func() {
			// Meanwhile, elsewhere: g becomes h, a new g is made, and an
			// application writes to the new g's working database.
			must("branch", "rename", "g", "h")
			must("branch", "create", "g")
			newDB = dbOf("g")
			if _, err := app.Database(newDB).Collection("c").InsertOne(context.Background(), map[string]any{"_id": "app"}); err != nil {
				t.Error(err)
			}
		})
	}}
	io, _, out, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: mon}, []string{"branch", "delete", "g", "--yes"})
	t.Logf("delete: exit %d: %s%s (old g's database %s, new g's %s)", code, out.String(), errOut.String(), oldDB, newDB)
	if newDB == "" {
		t.Fatal("the delete never asked for its hold")
	}
	branches := must("branch")
	t.Logf("branches:\n%s", branches)
	dbs, err := app.ListDatabaseNames(context.Background(), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("databases: %v", dbs)
	if code == 0 {
		t.Errorf("the delete of g succeeded, having checked %s (h's working database, now dropped) while it deleted the new g, whose working database %s holds an application's uncommitted insert, unchecked; branches now:\n%s",
			oldDB, newDB, branches)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
)

// An application writes to a working database it dropped just after a CLI
// write found it empty and decided to build it from the log (injected as
// soon as the check's listCollections is answered), on a server where
// nothing holds the application's writes (argon serve would: see
// TestServedWriteHoldsApplicationWrites). The build must not drop what
// the application wrote: the database is adopted instead, the
// application's document shows as an uncommitted change, and the CLI's
// own write is committed.
func TestBuildNeverDropsAnApplicationsLateWrite(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("needs a fresh server of its own")
	}
	dir, app, db := droppedOnServer(t, "late")
	ctx := context.Background()
	var once sync.Once
	fired := false
	mon := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		if e.DatabaseName != db || e.CommandName != "listCollections" {
			return
		}
		once.Do(func() {
			fired = true
			if _, err := app.Database(db).Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 777}}); err != nil {
				t.Errorf("app insert: %v", err)
			}
		})
	}}
	runMonitored(t, dir, mon, []string{"insert", "e", `{"_id": 9}`})
	if !fired {
		t.Fatal("the write never listed the working database's collections")
	}
	n, err := app.Database(db).Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: 777}})
	if err != nil || n != 1 {
		t.Fatalf("the application's document after the CLI write: count %d, %v; want 1", n, err)
	}
	if out := cliOut(t, dir, "status", "-s"); !strings.Contains(out, "c") {
		t.Fatalf("status after the CLI write: %q, want the application's changes to c listed", out)
	}
	if out := cliOut(t, dir, "find", "e", "--at", "main"); strings.TrimSpace(out) != `{"_id":9}` {
		t.Fatalf("find e at main's head: %q, want the CLI's committed document", out)
	}
}

// droppedOnServer makes project p on a fresh server with no argon serve in
// front (ARGON_URI), with one committed document {_id: 1} in c on main,
// and drops main's working database as an application might. It returns
// the workspace, an application's client of the server and the working
// database's name.
func droppedOnServer(t *testing.T, p string) (string, *mongo.Client, string) {
	t.Helper()
	dir, app, db := projectOnServer(t, p, `{"_id": 1}`)
	if err := app.Database(db).Drop(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir, app, db
}

// projectOnServer makes project p on a fresh server with no argon serve in
// front (ARGON_URI), with docs (an argon insert argument) committed in c
// on main. It returns the workspace, an application's client of the
// server and main's working database's name.
func projectOnServer(t *testing.T, p, docs string) (string, *mongo.Client, string) {
	t.Helper()
	srv := enginetest.Start(t)
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": srv.URI, "ARGON_DB": srv.DB, "ARGON_PROJECT": p,
		"ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir} {
		t.Setenv(k, v)
	}
	runMonitored(t, dir, nil, []string{"init", p})
	runMonitored(t, dir, nil, []string{"insert", "c", docs})
	app, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Disconnect(context.Background()) })
	names, err := app.ListDatabaseNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	// Of this metadata database: on a shared server other tests' projects
	// may have the same name.
	want := wal.DatabasePrefix(srv.DB) + p + "__main"
	if !slices.Contains(names, want) {
		t.Fatalf("no working database %s of main among %v", want, names)
	}
	return dir, app, want
}

// appWriteAside runs an application's write from a goroutine and waits up
// to two seconds for it. Called from a CLI command's driver monitor, the
// write waits for the command's hold of its database (a write from the
// monitor's own goroutine would wait forever). It reports whether the
// write was answered within that time, and the channel its result
// arrives on either way.
func appWriteAside(write func() error) (landed bool, done chan error) {
	done = make(chan error, 1)
	go func() { done <- write() }()
	select {
	case err := <-done:
		done <- err
		return true, done
	case <-time.After(2 * time.Second):
		return false, done
	}
}

// cliOut runs an argon command line in-process and returns its output.
func cliOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	io, _, out, errOut := ui.Test()
	if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args); code != 0 {
		t.Fatalf("argon %v: exit %d: %s", args, code, errOut.String())
	}
	return out.String()
}

// An application updates a document through argon serve just as a CLI
// update of the same document, checked committed, is about to change it
// (injected when the CLI sends its update). The application's write
// waits for the CLI's write to end, so it is never part of the CLI's
// commit: the committed document holds the CLI's change alone, and the
// application's shows as an uncommitted change on top of it.
func TestServedWriteHoldsApplicationWrites(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only: the application writes through argon serve")
	}
	p := "hold"
	dir, run := statusWorkspace(t, p)
	app := serveWorkspace(t, dir)
	db := "ar_" + p + "__main"
	var once sync.Once
	var appDone chan error
	landedFirst := false
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.DatabaseName != db || e.CommandName != "update" {
			return
		}
		once.Do(func() {
			// Without the hold the application's write lands first;
			// with it, it is still waiting when this gives up.
			landedFirst, appDone = appWriteAside(func() error {
				_, err := app.Database(db).Collection("c").UpdateOne(context.Background(),
					bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "app", Value: true}}}})
				return err
			})
		})
	}}
	// Only argon's own client can hold a database's writes.
	err := app.Database(db).RunCommand(context.Background(), bson.D{{Key: "argonHoldWrites", Value: 1}}).Err()
	if err == nil || !strings.Contains(err.Error(), "argonHoldWrites is for argon's own client") {
		t.Fatalf("an application's argonHoldWrites: %v, want it refused", err)
	}
	runMonitored(t, dir, mon, []string{"update", "c", `{"_id": 1}`, `{"$set": {"n": 2}}`})
	if landedFirst {
		t.Error("the application's write reached the database while the CLI's write held it")
	}
	select {
	case err := <-appDone:
		if err != nil {
			t.Fatalf("application update: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the application's write was still held a minute after the CLI's write ended")
	}
	_, out := run("find", "c", "--at", "main")
	if want := `{"_id":1,"n":2}`; strings.TrimSpace(out) != want {
		t.Fatalf("committed c at main's head: %q, want %s (the CLI's change alone)", out, want)
	}
	_, out = run("find", "c")
	if want := `{"_id":1,"n":2,"app":true}`; strings.TrimSpace(out) != want {
		t.Fatalf("c in the working database: %q, want %s", out, want)
	}
	_, out = run("status", "-s")
	if !strings.Contains(out, "c") {
		t.Fatalf("status after the application's write: %q, want c's change listed", out)
	}
}

// A CLI upsert that fails (here on a unique index) repairs only the
// document it would have inserted: an application's uncommitted change
// elsewhere in the working database stays, uncommitted.
func TestFailedUpsertKeepsApplicationChanges(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only: the application writes through argon serve")
	}
	p := "ups"
	dir, run := statusWorkspace(t, p)
	run("index", "create", "c", `{"email": 1}`, "--unique")
	run("insert", "c", `{"_id": 2, "email": "a@x"}`)
	app := serveWorkspace(t, dir)
	db := "ar_" + p + "__main"
	if _, err := app.Database(db).Collection("d").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 500}}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"update", "c", `{"name": "new"}`, `{"$set": {"email": "a@x"}}`, "--upsert"},
		{"update", "c", `{"_id": 3}`, `{"$set": {"email": "a@x"}}`, "--upsert"},
		{"replace", "c", `{"name": "new"}`, `{"email": "a@x"}`, "--upsert"},
	} {
		io, _, _, errOut := ui.Test()
		if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args); code != 1 || !strings.Contains(errOut.String(), "duplicate") {
			t.Fatalf("argon %v: exit %d, %q; want exit 1 on the unique index", args, code, errOut.String())
		}
		n, err := app.Database(db).Collection("d").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: 500}})
		if err != nil || n != 1 {
			t.Fatalf("after the failed %v: the application's uncommitted document: count %d, %v; want 1", args, n, err)
		}
		if out := cliOut(t, dir, "find", "c"); strings.Count(out, "\n") != 2 {
			t.Fatalf("after the failed %v: c holds %q, want its two committed documents", args, out)
		}
	}
	if out := cliOut(t, dir, "status", "-s"); !strings.Contains(out, "d") {
		t.Fatalf("status: %q, want the application's insert into d", out)
	}
}

// Two writers on a branch whose working database does not exist yet,
// through argon serve: the first reads the (missing) marker, and before it
// reads the head from the log the second builds the database and commits.
// The first's lease is then free at once (it follows the new head), and
// the marker it read before is stale: it used to build or adopt a database
// that already had a marker, and failed with E11000 on _argon (seen in CI:
// five writers on a new branch through the shared engine). It reads the
// marker again under its lease now, and both commit.
func TestWriterReadsTheMarkerAgainAfterTheHeadFromTheLog(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("argon serve runs the embedded engine")
	}
	dir, run := statusWorkspace(t, "stale")
	serveWorkspace(t, dir)
	run("branch", "create", "b")
	paused, resume := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	commit.Hook = func(point string) {
		if point == "marked" && first.CompareAndSwap(true, false) {
			close(paused)
			<-resume
		}
	}
	t.Cleanup(func() { commit.Hook = nil })
	done := make(chan string, 1)
	go func() {
		io, _, _, errOut := ui.Test()
		code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"insert", "c", `{"_id": "x"}`, "--branch", "b"})
		done <- fmt.Sprintf("exit %d: %s", code, errOut.String())
	}()
	<-paused
	run("insert", "c", `{"_id": "y"}`, "--branch", "b") // builds b's database, commits
	close(resume)
	if got := <-done; !strings.HasPrefix(got, "exit 0: ") {
		t.Fatalf("the writer that read the marker before the other built the database: %s", got)
	}
	commit.Hook = nil
	if _, out := run("find", "c", "--branch", "b", "--sort", `{"_id": 1}`); out != "{\"_id\":1,\"n\":1}\n{\"_id\":\"x\"}\n{\"_id\":\"y\"}\n" {
		t.Errorf("branch b holds:\n%s", out)
	}
}

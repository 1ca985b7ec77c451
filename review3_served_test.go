package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// An application's update, sent through argon serve just before a CLI
// update takes its hold, is still being carried out by the engine (it
// scans a collection of 20,000 documents for its filter) when the guard
// grants the hold. The CLI's check reads the document committed; the
// application's change lands while the CLI holds the database; the CLI's
// update and read-back then take it into the CLI's commit. (Found by
// review; fixed: a hold waits for the answers to writes passed on before
// it.)
func TestReview3ServedHoldWaitsForAWriteAlreadyPassedOn(t *testing.T) {
	const appWait = 15 * time.Second
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only: the application writes through argon serve")
	}
	p := "pend"
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "", "ARGON_PROJECT": "", "ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir} {
		t.Setenv(k, v)
	}
	cliOut(t, dir, "init", p)
	app := serveWorkspace(t, dir)
	db := "ar_" + p + "__main"
	ctx := context.Background()
	// Uncommitted filler first, so that the committed document is the
	// last the engine's scan reaches.
	const filler = 20000
	docs := make([]any, 0, 1000)
	for i := 0; i < filler; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: strings.Repeat("p", 100)}})
		if len(docs) == cap(docs) {
			if _, err := app.Database(db).Collection("c").InsertMany(ctx, docs); err != nil {
				t.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	cliOut(t, dir, "insert", "c", `{"_id": "x", "k": "x"}`)

	var holdOnce, updOnce sync.Once
	appDone := make(chan error, 1)
	var appSent time.Time
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		name := e.CommandName
		if on, err := e.Command.LookupErr("argonHoldOn"); err == nil {
			if held, _ := on.Document().Lookup("db").StringValueOK(); held != db {
				return
			}
			// The hold rides on the lease's insert (store.Carrier)
			// since the twenty-first session; until the twenty-fourth
			// this test waited for an argonHoldWrites command, which
			// only the hold's renewal sends, seconds later.
			name = "argonHoldWrites"
		} else if e.DatabaseName != db {
			return
		}
		switch name {
		case "argonHoldWrites":
			holdOnce.Do(func() {
				appSent = time.Now()
				go func() {
					_, err := app.Database(db).Collection("c").UpdateOne(context.Background(),
						bson.D{{Key: "k", Value: "x"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "app", Value: true}}}})
					t.Logf("application update answered %v after it was sent", time.Since(appSent))
					appDone <- err
				}()
				// Long enough for the guard to pass it on (no hold yet),
				// short of the engine's scan.
				time.Sleep(150 * time.Millisecond)
			})
		case "update":
			updOnce.Do(func() {
				t.Logf("the CLI's update, after its check, %v after the application's", time.Since(appSent))
				// The CLI is slow here (a busy machine) until the
				// application's update is answered: it holds the
				// database, so that update should not land meanwhile,
				// and the CLI goes on after appWait. Without the hold
				// the update is answered once the engine's scan of
				// 20,000 documents ends, well within it, and lands in
				// the CLI's commit. (A minute until the twenty-fourth
				// session: the whole minute was waited each run.)
				select {
				case err := <-appDone:
					appDone <- err
				case <-time.After(appWait):
				}
			})
		}
	}}
	io, _, _, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: mon},
		[]string{"update", "c", `{"_id": "x"}`, `{"$set": {"cli": 1}}`})
	t.Logf("argon update: exit %d: %s", code, strings.TrimSpace(errOut.String()))
	// Either the application's update landed before the check, which
	// then refuses, or it waited for the CLI's write to end.
	if refused := "uncommitted changes in the working database"; code != 0 && (code != 1 || !strings.Contains(errOut.String(), refused)) {
		t.Fatalf("argon update: exit %d: %s; want 0, or 1 naming the uncommitted change", code, errOut.String())
	}
	select {
	case err := <-appDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the application's update never ended")
	}
	out := cliOut(t, dir, "find", "c", `{"_id": "x"}`, "--at", "main")
	if strings.Contains(out, "app") {
		t.Fatalf("committed document at main's head: %s; the application's uncommitted $set is part of the CLI's commit", strings.TrimSpace(out))
	}
}

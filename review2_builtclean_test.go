package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// review2Status runs `argon status -s` and returns its output.
func review2Status(t *testing.T, dir string) string {
	t.Helper()
	return cliOut(t, dir, "status", "-s")
}

// Verified property (served mode): an application's write through argon
// serve made while a CLI command rebuilds a new branch's working database
// (here: injected synchronously just before the rebuild writes its
// marker, and again just before the token request of DBFiles.Built) is
// never recorded clean: the next status lists it.
func TestReview2BuiltServedAppWriteDuringRebuildIsNotHidden(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only")
	}
	for _, at := range []string{"marker", "token"} {
		t.Run(at, func(t *testing.T) {
			p := "rb" + at[:1]
			dir, _ := statusWorkspace(t, p)
			app := serveWorkspace(t, dir)
			db := "ar_" + p + "__feat"
			var once sync.Once
			fired, tokens := false, 0
			var appDone chan error
			mon := &event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
				hit := false
				switch at {
				case "marker":
					hit = e.DatabaseName == db && e.CommandName == "insert" && e.Command.Lookup("insert").StringValue() == "_argon"
				case "token":
					// The first token request of db: Built's (Building's
					// token comes with the hold's answer).
					if e.CommandName == "argonWriteToken" && strings.Contains(e.Command.String(), db) {
						tokens++
						hit = tokens == 1
					}
				}
				if hit {
					once.Do(func() {
						fired = true
						// The command holds the database's writes (see
						// TestServedWriteHoldsApplicationWrites): the
						// application's insert lands after it.
						_, appDone = appWriteAside(func() error {
							_, err := app.Database(db).Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 777}})
							return err
						})
					})
				}
			}}
			runMonitored(t, dir, mon, []string{"checkout", "-b", "feat"})
			if !fired {
				t.Fatal("the injection point was not reached")
			}
			if err := <-appDone; err != nil {
				t.Fatalf("app insert: %v", err)
			}
			if out := review2Status(t, dir); !strings.Contains(out, "777") {
				t.Fatalf("status after an application write during the rebuild: %q, want the insert of 777 listed", out)
			}
		})
	}
}

// Verified property (served mode): a working database an application
// dropped and filled again is adopted, its data shown as changes, by
// status after status (Adopt's marker is never recorded clean), and a CLI
// write that follows keeps showing it.
func TestReview2AdoptedDatabaseNeverRecordedClean(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only")
	}
	p := "ad"
	dir, run := statusWorkspace(t, p)
	run("status", "-s") // a clean record for main
	app := serveWorkspace(t, dir)
	ctx := context.Background()
	db := app.Database("ar_" + p + "__main")
	if err := db.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 5}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		out := review2Status(t, dir)
		if !strings.Contains(out, "c") {
			t.Fatalf("status %d after drop and re-seed: %q, want changes listed", i+1, out)
		}
	}
	run("insert", "e", `{"_id": 1}`)
	if out := review2Status(t, dir); !strings.Contains(out, "c") {
		t.Fatalf("status after a CLI write on the adopted database: %q, want the application's changes", out)
	}
}

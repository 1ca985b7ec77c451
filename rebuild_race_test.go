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

// An application writes to a working database it dropped just after a CLI
// write found it empty and decided to build it from the log (injected as
// soon as the check's listCollections is answered). The build must not
// drop what the application wrote: the database is adopted instead, the
// application's document shows as an uncommitted change, and the CLI's
// own write is committed.
func TestBuildNeverDropsAnApplicationsLateWrite(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only: the application writes through argon serve")
	}
	p := "late"
	dir, run := statusWorkspace(t, p)
	app := serveWorkspace(t, dir)
	ctx := context.Background()
	db := "ar_" + p + "__main"
	if err := app.Database(db).Drop(ctx); err != nil {
		t.Fatal(err)
	}
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
	_, out := run("status", "-s")
	for _, want := range []string{"c", "777"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status after the CLI write: %q, want the application's insert of 777 listed", out)
		}
	}
	_, out = run("find", "e", "--at", "main")
	if !strings.Contains(out, `"_id": 9`) && !strings.Contains(out, `"_id":9`) {
		t.Fatalf("find e at main's head: %q, want the CLI's committed document", out)
	}
}

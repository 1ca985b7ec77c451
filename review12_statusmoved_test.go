package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
)

// review12: status on a branch whose binding still names the timeline a
// fast-forward closed (the merge stopped between the moved slot and the
// repoint; a concurrent fast-forward between status's read of the binding
// and its read of the working database gives the same). status now takes
// its head from the read of the working database, which follows the
// moved slot to the new timeline; but it describes the branch (base,
// parent) from the closed timeline it read before. It prints the new
// timeline's head with the old timeline's fork point: head 3, base 0, no
// parent, a state no timeline of the branch has (before cf12425 it
// printed the closed timeline's head, 2, with changes compared at 3).
// A consistent answer is the moved branch's, as the next status prints
// it: head 3, base 3, parent feature.
func TestReview12StatusAfterAStoppedFastForward(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("edits the embedded engine's metadata by hand")
	}
	dir, run := statusWorkspace(t, "ff") // main: head 2
	run("branch", "create", "feature")
	run("insert", "--branch", "feature", "c", `{"_id": 2}`) // feature: head 3
	run("merge", "feature")                                 // main fast-forwards
	type st struct {
		Head   int64  `json:"head"`
		Base   int64  `json:"base"`
		Parent string `json:"parent"`
	}
	status := func() st {
		t.Helper()
		_, out := run("status", "--json")
		var s st
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("status --json: %v: %s", err, out)
		}
		return s
	}
	moved := status()
	if moved.Head != 3 || moved.Base != 3 || moved.Parent != "feature" {
		t.Fatalf("status after the fast-forward: %+v", moved)
	}

	// The binding back on the closed timeline, as a merge that stopped
	// before repointing leaves it.
	eng, err := store.StartEngine(dir+"/.argon/data", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(eng.URI))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	meta := c.Database("argon_wal")
	var slot wal.Slot
	if err := meta.Collection("slots").FindOne(ctx, bson.D{{Key: "kind", Value: wal.SlotMoved}}).Decode(&slot); err != nil {
		t.Fatal(err)
	}
	var old wal.Timeline
	if err := meta.Collection("timelines").FindOne(ctx, bson.D{{Key: "_id", Value: slot.TL}}).Decode(&old); err != nil {
		t.Fatal(err)
	}
	if _, err := meta.Collection("branches").UpdateOne(ctx, bson.D{{Key: "_id", Value: "ff/main"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "timeline", Value: old.ID},
			{Key: "fork", Value: wal.Fork{Parent: old.Parent, Base: old.Base, ParentSlot: old.ParentSlot}}}}}); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(ctx)
	eng.Stop()

	got := status() // follows the moved slot and repoints main
	if got != moved {
		t.Errorf("status through the closed timeline's binding: %+v, want %+v (the moved branch, as the next status shows it: %+v)", got, moved, status())
	}
}

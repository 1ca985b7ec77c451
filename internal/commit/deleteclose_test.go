package commit

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// Deleting a branch closes its timeline with a void slot after the head
// it records in the reflog, so that no write commits there afterwards:
// one that holds the lease when the delete runs finds its commit slot
// taken (the unique insert decides), and one that opened the branch
// before the delete and starts after it finds the timeline closed. The
// history stays readable at the recorded position, and fsck is clean. A
// timeline another branch still names is left open.
func TestDeleteClosesTheTimeline(t *testing.T) {
	_, r, main := waltest.Project(t)
	ctx := context.Background()
	p := New()
	doc := func(id string) []bson.Raw { return []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: id}})} }
	live := p.Open(r, main)
	if _, err := live.Insert(ctx, "c", doc("a"), wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	g, err := r.CreateBranch(ctx, "p", "g", main, -1)
	if err != nil {
		t.Fatal(err)
	}
	inFlight := p.Open(r, g)
	late := p.Open(r, g)
	if _, err := inFlight.Insert(ctx, "c", doc("b"), wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	// A write in progress: leased, evaluated, not committed.
	wr, err := p.acquire(ctx, inFlight, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	if err := insertOp(inFlight, "c-in-flight")(ctx, func(e []wal.Entry) error { return wr.emit(ctx, e) }); err != nil {
		t.Fatal(err)
	}

	_, lsn, err := r.DeleteBranch(ctx, "p", "g")
	if err != nil {
		t.Fatal(err)
	}
	if lsn != 2 {
		t.Fatalf("delete recorded LSN %d, want 2", lsn)
	}
	h, err := r.HeadSlot(ctx, g.Timeline, nil)
	if err != nil || !h.Closed || h.Kind != wal.SlotVoid || h.LSN != 2 {
		t.Fatalf("head after the delete: %+v, %v; want the closing void at LSN 2", h, err)
	}

	_, err = wr.commit(ctx, &wal.CommitInfo{}, nil)
	var to *wal.TakenOverError
	if !errors.As(err, &to) || !to.Deleted {
		t.Fatalf("the write in progress: %v, want a TakenOverError (deleted)", err)
	}
	wr.afterLoss(ctx)
	_, err = late.Insert(ctx, "c", doc("late"), wal.CommitInfo{})
	if !errors.As(err, &to) || !to.Deleted {
		t.Fatalf("a write after the delete: %v, want a TakenOverError (deleted)", err)
	}
	if h2, err := r.HeadSlot(ctx, g.Timeline, nil); err != nil || h2.N != h.N {
		t.Fatalf("head after the refused writes: %+v, %v; want slot %d still", h2, err, h.N)
	}
	st, err := r.Fold(ctx, g.Timeline, 2, "c")
	if err != nil || len(st.Docs("c")) != 2 {
		t.Fatalf("the deleted branch's state at LSN 2: %v, %v; want a and b", st, err)
	}
	fsckClean(t, p, r, live)

	// Two names on one timeline (a rename cut short): deleting one leaves
	// the timeline open for the other.
	if _, err := r.DB.Collection("branches").InsertOne(ctx, bson.D{{Key: "_id", Value: "p/twin"}, {Key: "project", Value: "p"},
		{Key: "name", Value: "twin"}, {Key: "timeline", Value: main.Timeline}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.DeleteBranch(ctx, "p", "twin"); err != nil {
		t.Fatal(err)
	}
	if h, err := r.HeadSlot(ctx, main.Timeline, nil); err != nil || h.Closed {
		t.Fatalf("main's head after deleting its twin: %+v, %v; want it open", h, err)
	}
	if _, err := live.Insert(ctx, "c", doc("after"), wal.CommitInfo{}); err != nil {
		t.Fatalf("a write on main after deleting its twin: %v", err)
	}
}

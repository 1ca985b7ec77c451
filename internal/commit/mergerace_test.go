package commit

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/merge"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// A merge is planned before it takes the branch. A write acknowledged on
// the target in between must not be undone by the plan's puts: the merge
// is refused (MovedOnError), nothing is written, and merging again plans
// from the new head. Likewise when a fast-forward moved the target in
// between (found in review: the stale plan overwrote the acknowledged
// write and recorded the merge, so the next merge said up to date).
func TestMergePlannedBeforeAWriteIsRefused(t *testing.T) {
	_, r, main := waltest.Project(t)
	ctx := context.Background()
	p := New()
	y := func(by string) []bson.Raw {
		return []bson.Raw{doc(t, bson.D{{Key: "_id", Value: "y"}, {Key: "by", Value: by}})}
	}
	if _, err := p.Open(r, main).Insert(ctx, "c", []bson.Raw{d1("a1")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	feat, err := r.CreateBranch(ctx, "p", "feat", main, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(r, feat).Insert(ctx, "c", y("feat"), wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	plan := func() ([]workdb.Put, int64, diff.Point) {
		mh, err := r.Head(ctx, main.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		fh, err := r.Head(ctx, feat.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		theirs := diff.Point{TL: feat.Timeline, LSN: fh.LSN}
		pl, err := merge.Merge(ctx, r, diff.Point{TL: main.Timeline, LSN: mh.LSN}, theirs, merge.Refuse)
		if err != nil {
			t.Fatal(err)
		}
		var puts []workdb.Put
		for _, c := range pl.Changes {
			puts = append(puts, workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc})
		}
		return puts, mh.LSN, theirs
	}
	puts, base, theirs := plan()
	if _, err := p.Open(r, main).Insert(ctx, "c", y("main"), wal.CommitInfo{}); err != nil { // acknowledged
		t.Fatal(err)
	}
	before, err := r.Head(ctx, main.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Open(r, main).ApplyPuts(ctx, puts, base, wal.CommitInfo{MergeOf: merge.MergeOf(theirs)})
	if !errors.As(err, new(*wal.MovedOnError)) {
		t.Fatalf("a merge planned before a write: %v, want MovedOnError", err)
	}
	if after, _ := r.Head(ctx, main.Timeline); after.LSN != before.LSN || after.Slot.Kind == wal.SlotCommit && after.Slot.N != before.Slot.N {
		t.Fatalf("the refused merge moved the head: %d -> %d", before.LSN, after.LSN)
	}
	docs, err := p.Open(r, main).Find(ctx, "c", workdb.Query{Filter: mustMarshal(bson.D{{Key: "_id", Value: "y"}})})
	if err != nil || len(docs) != 1 || docs[0].Lookup("by").StringValue() != "main" {
		t.Fatalf("main's acknowledged y: %v, %v", docs, err)
	}

	// A fast-forward moved main between the plan and the write.
	side, err := r.CreateBranch(ctx, "p", "side", main, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(r, side).Insert(ctx, "c", []bson.Raw{d1("s1")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	puts, base, theirs = plan() // main from feat again
	stale := p.Open(r, main)
	mh, _ := r.Head(ctx, main.Timeline)
	root, err := r.ForkTimeline(ctx, "p", side, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(r, main).MovePuts(ctx, putsOf("s1"), root, mh.LSN, "test", wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = stale.ApplyPuts(ctx, puts, base, wal.CommitInfo{MergeOf: merge.MergeOf(theirs)})
	if !errors.As(err, new(*wal.MovedOnError)) {
		t.Fatalf("a merge planned before a fast-forward: %v, want MovedOnError", err)
	}
	nb, err := r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, p.Open(r, nb)); len(got) != 3 || got[0] != "a1" || got[1] != "s1" || got[2] != "y" {
		t.Fatalf("main holds %v after the refused merge", got)
	}
	if pr := fsckProblems(t, r, false); len(pr) != 0 {
		t.Fatalf("fsck: %v", pr)
	}
}

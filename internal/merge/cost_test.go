package merge

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// On a 25,000-document branch (100,000 at the nightly size, 5,000 with
// -short), diffing and merging a one-document change on each side read a
// handful of log entries, not the data, and the merge commit holds one
// entry. Counted, not timed.
func TestCostFollowsChange(t *testing.T) {
	t.Parallel()
	n := testsize.Pick(25_000, 100_000)
	if testing.Short() {
		n = 5_000
	}
	srv, r, mainB := waltest.Project(t)
	ctx := context.Background()
	p := commit.New()
	wm := p.Open(r, mainB)
	wm.ScanReads = srv.Embedded
	docs := make([]bson.Raw, n)
	for i := range docs {
		docs[i], _ = bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("d%06d", i)}, {Key: "v", Value: int32(i)}})
	}
	if _, err := wm.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	featB, err := r.CreateBranch(ctx, "p", "feature", mainB, -1)
	if err != nil {
		t.Fatal(err)
	}
	wf := p.Open(r, featB)
	wf.ScanReads = srv.Embedded
	set := func(w *workdb.Branch, id, field string) {
		f, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		u, _ := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: int32(-1)}}}})
		if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: f, Update: u}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	set(wf, "d000042", "v")
	set(wm, "d000077", "w")
	head := func(b *wal.Branch) diff.Point {
		h, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		return diff.Point{TL: b.Timeline, LSN: h.LSN}
	}
	ours, theirs := head(mainB), head(featB)

	changes, st, err := diff.Between(ctx, r, ours, theirs, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("diff: %d changes, want 2: %+v", len(changes), changes)
	}
	if st.EntriesRead > 6 {
		t.Errorf("diff read %d entries for two one-document changes on %d documents", st.EntriesRead, n)
	}

	plan, err := Merge(ctx, r, ours, theirs, Refuse)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Conflicts) != 0 || len(plan.Changes) != 1 || plan.FastForward {
		t.Fatalf("plan: %d changes, %d conflicts, fast-forward %v", len(plan.Changes), len(plan.Conflicts), plan.FastForward)
	}
	if plan.EntriesRead > 6 {
		t.Errorf("merge read %d entries for one change on each side of %d documents", plan.EntriesRead, n)
	}
	c := plan.Changes[0]
	cm, _, err := wm.ApplyPuts(ctx, []workdb.Put{{Coll: c.Coll, ID: c.ID, Doc: c.Doc}}, ours.LSN, wal.CommitInfo{MergeOf: MergeOf(theirs)})
	if err != nil {
		t.Fatal(err)
	}
	if cm.To-cm.From+1 != 1 {
		t.Errorf("the merge commit holds %d entries, want 1", cm.To-cm.From+1)
	}
	got := map[string]bson.M{}
	for _, id := range []string{"d000042", "d000077", "d000001"} {
		var d bson.M
		if err := wm.DB.Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
			t.Fatal(err)
		}
		got[id] = d
	}
	if got["d000042"]["v"] != int32(-1) || got["d000077"]["w"] != int32(-1) || got["d000001"]["v"] != int32(1) {
		t.Errorf("merged documents: %v", got)
	}
	t.Logf("%d documents: diff read %d entries, merge %d", n, st.EntriesRead, plan.EntriesRead)
}

package merge

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// A clean merge (no conflict) where the source deleted {_id: 2} and added
// {_id: 2.0}, with 999 other changes that sort before them. diff.Between
// orders equal numbers by type (double 1 < int32 16), so the plan puts 2.0
// at index 999 and deletes 2 at index 1000: the last of ApplyPuts' first
// batch (batchSize 1000) and the second batch. Without a scan (ScanReads
// false: MongoDB, where the pre-images are read and deleted by
// {_id: {$in: ids}}), the first batch's $in [.., 2.0] matches the stored
// int32 2 by value and deletes it, but logs nothing for it (pre is keyed
// by the stored key, the put's key is 2.0's); the second batch's delete of
// 2 then matches the stored 2.0 by value and deletes it, and logs nothing
// either (pre is keyed by 2.0's key, the put's is 2's). The merge commit
// holds a put of 2.0 and no delete of 2: the committed head holds both,
// which no collection can (every later build fails with E11000), while
// the working database holds neither. Reached through argon merge on a
// MongoDB server (cmd sets ScanReads only for FerretDB); the fast-forward
// path (MovePuts) uses the same putter.
func TestReview6ApplyPutsSameValueAcrossBatches(t *testing.T) {
	_, r, mainB := waltest.Project(t)
	ctx := context.Background()
	p := commit.New()
	wm := p.Open(r, mainB)
	raw := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	insert := func(w *workdb.Branch, docs ...bson.Raw) {
		t.Helper()
		if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	insert(wm, raw(bson.D{{Key: "_id", Value: int32(2)}, {Key: "v", Value: "base"}}), raw(bson.D{{Key: "_id", Value: int32(100)}}))
	featB, err := r.CreateBranch(ctx, "p", "feature", mainB, -1)
	if err != nil {
		t.Fatal(err)
	}
	wf := p.Open(r, featB)
	var many []bson.Raw
	for i := int32(-2000); i < -1001; i++ {
		many = append(many, raw(bson.D{{Key: "_id", Value: i}}))
	}
	insert(wf, many...)
	if _, err := wf.Modify(ctx, "c", workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: int32(2)}}), Delete: true}, workdb.Limits{}, wal.CommitInfo{Message: "del 2"}); err != nil {
		t.Fatal(err)
	}
	insert(wf, raw(bson.D{{Key: "_id", Value: 2.0}, {Key: "v", Value: "feature"}}))
	// main moves too, so that the merge is a merge commit.
	insert(wm, raw(bson.D{{Key: "_id", Value: int32(101)}}))
	head := func(b *wal.Branch) diff.Point {
		h, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		return diff.Point{TL: b.Timeline, LSN: h.LSN}
	}
	ours, theirs := head(mainB), head(featB)
	plan, err := Merge(ctx, r, ours, theirs, Refuse)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Conflicts) != 0 || plan.FastForward {
		t.Fatalf("plan: %d conflicts, fast-forward %v", len(plan.Conflicts), plan.FastForward)
	}
	puts := make([]workdb.Put, len(plan.Changes))
	for i, c := range plan.Changes {
		puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc}
	}
	if n := len(puts); n != 1001 {
		t.Fatalf("%d puts, want 1001", n)
	}
	t.Logf("put 999: %v (doc %v); put 1000: %v (doc %v)", puts[999].ID, puts[999].Doc != nil, puts[1000].ID, puts[1000].Doc != nil)
	wm.ScanReads = false // as on MongoDB
	if _, _, err := wm.ApplyPuts(ctx, puts, ours.LSN, wal.CommitInfo{Message: "merge", MergeOf: MergeOf(theirs)}); err != nil {
		t.Fatal(err)
	}
	h := head(mainB)
	st, err := r.Fold(ctx, h.TL, h.LSN, "c")
	if err != nil {
		t.Fatal(err)
	}
	var twos []string
	for _, d := range st.Docs("c") {
		id := d.Lookup("_id")
		if f, ok := id.AsFloat64OK(); ok && f == 2 {
			twos = append(twos, fmt.Sprintf("%s %v", id.Type, d))
		}
	}
	if len(twos) != 1 {
		t.Errorf("the merged head holds %d documents of _id value 2, want 1 ({_id: 2.0}): %v", len(twos), twos)
	}
	// The working database holds what argon's next build of the head would
	// have to: here 2.0 alone, where the log holds both.
	cur, err := wm.DB.Collection("c").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var inDB []string
	for cur.Next(ctx) {
		if f, ok := cur.Current.Lookup("_id").AsFloat64OK(); ok && f == 2 {
			inDB = append(inDB, cur.Current.String())
		}
	}
	_ = cur.Close(ctx)
	t.Logf("working database: documents of _id value 2: %v", inDB)
	slot, err := r.HeadSlot(ctx, mainB.Timeline, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wm.Rebuild(ctx, slot, ""); err != nil {
		t.Errorf("rebuilding main's working database from the log at the merged head: %v", err)
	}
}

package merge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// modelDoc is a document in the model: main owns field a, feature owns
// field b, so that merges of feature into main never conflict and the
// expected result is known without a merge algorithm.
type modelDoc struct{ a, b int32 }

// Random divergent histories on main and feature with repeated merges of
// feature into main: after every merge, main holds exactly what the model
// says (main's fields from main, feature's from feature, documents
// inserted on either side, deletions of documents the other side never
// saw), and a merge right after is up to date.
func TestMergeModel(t *testing.T) {
	t.Parallel()
	_, r, mainB := waltest.Project(t)
	ctx := context.Background()
	p := commit.New()
	wm := p.Open(r, mainB)
	put := func(w *workdb.Branch, id int32, d modelDoc) {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "a", Value: d.a}, {Key: "b", Value: d.b}})
		if _, err := w.Insert(ctx, "c", []bson.Raw{raw}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	set := func(w *workdb.Branch, id int32, field string, v int32) {
		f, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		u, _ := bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: v}}}})
		if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: f, Update: u}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	del := func(w *workdb.Branch, id int32) {
		f, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: f, Delete: true}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	mainM := map[int32]modelDoc{}
	for i := int32(0); i < 10; i++ {
		put(wm, i, modelDoc{a: i})
		mainM[i] = modelDoc{a: i}
	}
	featB, err := r.CreateBranch(ctx, "p", "feature", mainB, -1)
	if err != nil {
		t.Fatal(err)
	}
	wf := p.Open(r, featB)
	featM := map[int32]modelDoc{}
	for k, v := range mainM {
		featM[k] = v
	}
	rng := rand.New(rand.NewPCG(5, 6))
	mainNew := map[int32]bool{} // inserted on main since the fork: feature never sees them
	featNew := map[int32]bool{} // inserted on feature since the last merge
	nextMain, nextFeat := int32(100), int32(1000)
	pick := func(m map[int32]modelDoc) (int32, bool) {
		var ks []int32
		for k := range m {
			ks = append(ks, k)
		}
		if len(ks) == 0 {
			return 0, false
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
		return ks[rng.IntN(len(ks))], true
	}
	head := func(b *wal.Branch) diff.Point {
		h, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		return diff.Point{TL: b.Timeline, LSN: h.LSN}
	}
	for round := 0; round < 6; round++ {
		for op := 0; op < 12; op++ {
			switch rng.IntN(6) {
			case 0:
				put(wm, nextMain, modelDoc{a: 1})
				mainM[nextMain] = modelDoc{a: 1}
				mainNew[nextMain] = true
				nextMain++
			case 1:
				put(wf, nextFeat, modelDoc{b: 1})
				featM[nextFeat] = modelDoc{b: 1}
				featNew[nextFeat] = true
				nextFeat++
			case 2:
				if id, ok := pick(mainM); ok {
					v := int32(rng.IntN(100))
					set(wm, id, "a", v)
					d := mainM[id]
					d.a = v
					mainM[id] = d
				}
			case 3:
				if id, ok := pick(featM); ok {
					v := int32(rng.IntN(100))
					set(wf, id, "b", v)
					d := featM[id]
					d.b = v
					featM[id] = d
				}
			case 4:
				for id := range mainNew {
					del(wm, id)
					delete(mainM, id)
					delete(mainNew, id)
					break
				}
			case 5:
				for id := range featNew {
					del(wf, id)
					delete(featM, id)
					delete(featNew, id)
					break
				}
			}
		}
		// Expected: main's fields from main, feature's fields from feature.
		want := map[int32]modelDoc{}
		for id, d := range mainM {
			if fd, ok := featM[id]; ok {
				d.b = fd.b
			}
			want[id] = d
		}
		for id, fd := range featM {
			if _, ok := mainM[id]; !ok {
				want[id] = fd
			}
		}
		ours := head(mainB)
		plan, err := Merge(ctx, r, ours, head(featB), Refuse)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Conflicts) > 0 {
			t.Fatalf("round %d: conflicts %+v", round, plan.Conflicts)
		}
		puts := make([]workdb.Put, len(plan.Changes))
		for i, c := range plan.Changes {
			puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc}
		}
		if _, _, err := wm.ApplyPuts(ctx, puts, ours.LSN, wal.CommitInfo{Message: "merge", MergeOf: MergeOf(head(featB))}); err != nil {
			t.Fatal(err)
		}
		docs, err := wm.Find(ctx, "c", workdb.Query{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32]modelDoc{}
		for _, d := range docs {
			got[d.Lookup("_id").Int32()] = modelDoc{a: d.Lookup("a").Int32(), b: d.Lookup("b").Int32()}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: main after merge\n%v\nmodel\n%v", round, got, want)
		}
		mainM = want
		featNew = map[int32]bool{}
		again, err := Merge(ctx, r, head(mainB), head(featB), Refuse)
		if err != nil {
			t.Fatal(err)
		}
		if !again.UpToDate {
			t.Fatalf("round %d: a merge right after is not up to date: %+v", round, again.Changes)
		}
	}
}

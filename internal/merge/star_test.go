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

// Random divergent histories on three branches, main and two features
// forked from it, with repeated merges in both directions between main and
// each feature (features into main, main into features), fast-forwards
// included, checked against an independent model after every merge.
//
// The model needs no merge algorithm. Each branch owns one field and is
// the only one to set it, always to a larger value than before; so the
// newest value of a field is the largest, and a three-way merge of two
// states must give, field by field, the larger of the two (a side that did
// not change a field since the base holds a value no newer than the other
// side's). Documents are inserted by one branch (ids of its own) and
// deleted only by it, and only while no other branch has seen them, so no
// delete meets a change. With merges only between main and a feature, a
// branch gets another's field only through the merges with its partner,
// and the base of two branches is their last merge: no merge conflicts.
func TestMergeModelStar(t *testing.T) {
	t.Parallel()
	_, r, _ := waltest.Project(t)
	ctx := context.Background()
	p := commit.New()
	names := []string{"main", "f1", "f2"}
	fields := map[string]string{"main": "a", "f1": "b", "f2": "c"}
	type doc map[string]int32 // field -> value; absent fields are 0
	model := map[string]map[int32]doc{"main": {}}
	private := map[string]map[int32]bool{"main": {}, "f1": {}, "f2": {}}
	counter := map[string]int32{}
	nextID := map[string]int32{"main": 0, "f1": 100000, "f2": 200000}
	branch := func(name string) *wal.Branch {
		b, err := r.Branch(ctx, "p", name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	head := func(b *wal.Branch) diff.Point {
		h, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		return diff.Point{TL: b.Timeline, LSN: h.LSN}
	}
	raw := func(d bson.D) bson.Raw {
		out, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	insert := func(name string) {
		id := nextID[name]
		nextID[name]++
		counter[name]++
		f := fields[name]
		if _, err := p.Open(r, branch(name)).Insert(ctx, "c", []bson.Raw{raw(bson.D{{Key: "_id", Value: id}, {Key: f, Value: counter[name]}})}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
		model[name][id] = doc{f: counter[name]}
		private[name][id] = true
	}
	pick := func(m map[int32]doc, only map[int32]bool, rng *rand.Rand) (int32, bool) {
		var ks []int32
		for k := range m {
			if only == nil || only[k] {
				ks = append(ks, k)
			}
		}
		if len(ks) == 0 {
			return 0, false
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
		return ks[rng.IntN(len(ks))], true
	}
	set := func(name string, id int32) {
		counter[name]++
		f := fields[name]
		mod := workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: id}}),
			Update: raw(bson.D{{Key: "$set", Value: bson.D{{Key: f, Value: counter[name]}}}})}
		if _, err := p.Open(r, branch(name)).Modify(ctx, "c", mod, workdb.Limits{}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
		model[name][id][f] = counter[name]
	}
	del := func(name string, id int32) {
		mod := workdb.Modification{Filter: raw(bson.D{{Key: "_id", Value: id}}), Delete: true}
		if _, err := p.Open(r, branch(name)).Modify(ctx, "c", mod, workdb.Limits{}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
		delete(model[name], id)
		delete(private[name], id)
	}
	check := func(name, when string) {
		t.Helper()
		docs, err := p.Open(r, branch(name)).Find(ctx, "c", workdb.Query{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32]doc{}
		for _, d := range docs {
			g := doc{}
			for _, f := range []string{"a", "b", "c"} {
				if v, err := d.LookupErr(f); err == nil {
					g[f] = v.Int32()
				}
			}
			got[d.Lookup("_id").Int32()] = g
		}
		if fmt.Sprint(got) != fmt.Sprint(model[name]) {
			t.Fatalf("%s: %s holds\n%v\nmodel\n%v", when, name, got, model[name])
		}
	}
	merges, ffs := 0, 0
	mergeInto := func(target, source, when string) {
		t.Helper()
		tb, sb := branch(target), branch(source)
		ours, theirs := head(tb), head(sb)
		plan, err := Merge(ctx, r, ours, theirs, Refuse)
		if err != nil {
			t.Fatalf("%s: merge %s into %s: %v", when, source, target, err)
		}
		if len(plan.Conflicts) > 0 {
			t.Fatalf("%s: merge %s into %s: conflicts %+v", when, source, target, plan.Conflicts)
		}
		// The model: field by field, the larger value; documents of both.
		want := map[int32]doc{}
		for _, side := range []map[int32]doc{model[target], model[source]} {
			for id, d := range side {
				w := want[id]
				if w == nil {
					w = doc{}
					want[id] = w
				}
				for f, v := range d {
					w[f] = max(w[f], v)
				}
			}
		}
		for id := range model[source] {
			delete(private[source], id) // seen by target now
		}
		if !plan.UpToDate {
			puts := make([]workdb.Put, len(plan.Changes))
			for i, c := range plan.Changes {
				puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc}
			}
			w := p.Open(r, tb)
			ff := false
			if plan.FastForward {
				if ff, err = r.Descends(ctx, theirs.TL, theirs.LSN, tb.Timeline, ours.LSN); err != nil {
					t.Fatal(err)
				}
			}
			if ff {
				root, err := r.ForkTimeline(ctx, "p", sb, theirs.LSN)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.MovePuts(ctx, puts, root, ours.LSN, "fast-forward to "+source, wal.CommitInfo{MergeOf: MergeOf(theirs)}); err != nil {
					t.Fatalf("%s: fast-forward %s to %s: %v", when, target, source, err)
				}
				ffs++
			} else {
				if _, _, err := w.ApplyPuts(ctx, puts, ours.LSN, wal.CommitInfo{Message: "merge", MergeOf: MergeOf(theirs)}); err != nil {
					t.Fatalf("%s: merge %s into %s: %v", when, source, target, err)
				}
				merges++
			}
		}
		model[target] = want
		check(target, when)
		check(source, when+" (the source)")
		again, err := Merge(ctx, r, head(branch(target)), head(branch(source)), Refuse)
		if err != nil {
			t.Fatal(err)
		}
		if !again.UpToDate {
			t.Fatalf("%s: merging %s into %s right after is not up to date: %d changes", when, source, target, len(again.Changes))
		}
	}

	rng := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 5; i++ {
		insert("main")
	}
	for _, f := range []string{"f1", "f2"} {
		if _, err := r.CreateBranch(ctx, "p", f, branch("main"), -1); err != nil {
			t.Fatal(err)
		}
		model[f] = map[int32]doc{}
		for id, d := range model["main"] {
			model[f][id] = doc{"a": d["a"]}
			delete(private["main"], id)
		}
	}
	pairs := [][2]string{{"main", "f1"}, {"main", "f2"}, {"f1", "main"}, {"f2", "main"}}
	for round := 0; round < 16; round++ {
		pr := pairs[rng.IntN(len(pairs))]
		// A third of the rounds write on the source only, so that the
		// target can fast-forward when its head is in the source's
		// history (a feature that only takes main's changes, main
		// before a feature forked from it moved).
		sourceOnly := rng.IntN(3) == 0
		for op := rng.IntN(7); op > 0; op-- {
			name := names[rng.IntN(len(names))]
			if sourceOnly {
				name = pr[1]
			}
			switch rng.IntN(4) {
			case 0:
				insert(name)
			case 1, 2:
				if id, ok := pick(model[name], nil, rng); ok {
					set(name, id)
				}
			case 3:
				if id, ok := pick(model[name], private[name], rng); ok {
					del(name, id)
				}
			}
		}
		mergeInto(pr[0], pr[1], fmt.Sprintf("round %d", round))
	}
	for _, n := range names {
		check(n, "the end")
	}
	t.Logf("%d merge commits, %d fast-forwards", merges, ffs)
	if merges == 0 || ffs == 0 {
		t.Fatalf("%d merge commits and %d fast-forwards: both paths must run", merges, ffs)
	}
	rep, err := p.Fsck(ctx, r, "p", func(b *wal.Branch) *workdb.Branch { return p.Open(r, b) }, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck: %+v", rep.Problems)
	}
}

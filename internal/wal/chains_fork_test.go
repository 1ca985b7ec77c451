package wal

import (
	"context"
	"testing"
)

// The chunk chains give what the query of the entries collection gives
// across a fork taken inside a spilled commit, with a losing writer's
// chunks over the same LSNs, for a collection that only has index entries
// in a spilled commit, and after DeleteCovered removed the loser's
// chunks (found to hold by an adversarial review).
func TestChunkChainsForksLosersAndGC(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	r, ctx := l.r, context.Background()
	mk, commit := l.entry, l.commit
	main, err := r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	tl := l.main
	var es []Entry
	for i := 1; i <= 2500; i++ {
		coll := "a"
		if i > 1200 {
			coll = "b"
		}
		es = append(es, mk(tl, int64(i), coll, OpPut, "t1", i))
	}
	commit(tl, "t1", es)
	// A loser at 2501..3000 in a (and c), never committed.
	es = nil
	for i := 1; i <= 500; i++ {
		coll := "a"
		if i > 250 {
			coll = "c"
		}
		es = append(es, mk(tl, 2500+int64(i), coll, OpPut, "lose", 9000+i))
	}
	if _, err := r.SpillEntries(ctx, "p", es); err != nil {
		t.Fatal(err)
	}
	// Commit 2: 2501..3200 in a, then index entries in c only.
	es = nil
	for i := 1; i <= 700; i++ {
		es = append(es, mk(tl, 2500+int64(i), "a", OpPut, "t2", i))
	}
	for i := 1; i <= 3; i++ {
		es = append(es, mk(tl, 3200+int64(i), "c", OpIndex, "t2", i))
	}
	commit(tl, "t2", es)
	// Fork at 1700 (inside commit 1), and a spilled commit there.
	br, err := r.CreateBranch(ctx, "p", "f", main, 1700)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := r.Head(ctx, br.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	l.heads[br.Timeline] = &[2]int64{fh.Slot.N, 1700}
	es = nil
	for i := 1; i <= 1500; i++ {
		coll := "b"
		if i%2 == 0 {
			coll = "c"
		}
		es = append(es, mk(br.Timeline, 1700+int64(i), coll, OpPut, "t4", 5000+i))
	}
	commit(br.Timeline, "t4", es)

	check := func(label string) {
		for _, c := range []struct {
			tl       string
			from, to int64
		}{{tl, 0, 3203}, {tl, 2500, 3203}, {tl, 3000, 3201}, {br.Timeline, 0, 3200}, {br.Timeline, 1600, 1800}, {br.Timeline, 1700, 3200}, {br.Timeline, 0, 1700}} {
			for _, coll := range []string{"", "a", "b", "c"} {
				want, err := l.read(false, c.tl, c.from, c.to, coll)
				if err != nil {
					t.Fatal(err)
				}
				got, err := l.read(true, c.tl, c.from, c.to, coll)
				if err != nil {
					t.Fatalf("%s chains %s (%d,%d] %q: %v", label, c.tl, c.from, c.to, coll, err)
				}
				if got != want {
					t.Errorf("%s: %s (%d,%d] %q differ: got %d bytes, want %d", label, c.tl, c.from, c.to, coll, len(got), len(want))
				}
			}
		}
	}
	check("before gc")
	n, err := r.DeleteCovered(ctx, tl, &Slot{Kind: SlotCommit, LSN: 3203}, map[string]bool{"t1": true, "t2": true})
	if err != nil || n != 500 {
		t.Fatalf("DeleteCovered removed %d entries (%v), want the loser's 500", n, err)
	}
	check("after gc")
}

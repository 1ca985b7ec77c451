package wal

import (
	"context"
	"testing"
)

// review12 (pinned): CreateBranchFrom with a head slot read earlier (as
// branch create passes the one its start point resolved to) forks exactly
// where CreateBranch, reading the head afresh, forks for the same LSN,
// also after the head moved on by commits and voids, for an LSN inside an
// inline commit, and when the known slot is of another timeline or below
// the LSN asked for (then the head is read). The cached timelines
// (Repo.timelines) give the new branches' heads at their bases.
func TestReview12ForkFromAKnownHead(t *testing.T) {
	l := newChainLog(t)
	r, ctx := l.r, context.Background()
	inline := func(tl, token string, n int) {
		t.Helper()
		h := l.heads[tl]
		h[0]++
		var es []Entry
		for i := 0; i < n; i++ {
			es = append(es, l.entry(tl, h[1]+1+int64(i), "c", OpPut, token, int(h[1])+i))
		}
		s := &Slot{TL: tl, N: h[0], Kind: SlotCommit, Base: h[1], LSN: h[1] + int64(n), Token: token, Stats: Stats(es)}
		for _, e := range es {
			s.Entries = append(s.Entries, SlotEntry{Op: e.Op, Coll: e.Coll, Key: e.KeyBytes, Doc: e.Doc})
		}
		if err := r.InsertSlot(ctx, s); err != nil {
			t.Fatal(err)
		}
		h[1] = s.LSN
	}
	void := func(tl string) {
		t.Helper()
		h := l.heads[tl]
		h[0]++
		if err := r.InsertSlot(ctx, &Slot{TL: tl, N: h[0], Kind: SlotVoid, Base: h[1], LSN: h[1], Token: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	inline(l.main, "t1", 1) // slot 1: 1
	inline(l.main, "t2", 3) // slot 2: 2-4
	void(l.main)            // slot 3: 4
	main, err := r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	known, err := r.Head(ctx, l.main)
	if err != nil || known.Slot.N != 3 || known.LSN != 4 {
		t.Fatalf("head %+v, %v", known, err)
	}
	// The head moves on after it was read.
	inline(l.main, "t3", 2) // slot 4: 5-6
	void(l.main)            // slot 5
	inline(l.main, "t4", 1) // slot 6: 7

	other, err := r.CreateBranch(ctx, "p", "other", main, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherHead, err := r.Head(ctx, other.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range []struct {
		at    int64
		known *Slot
	}{{4, known.Slot}, {3, known.Slot}, {2, known.Slot}, {1, known.Slot}, {0, known.Slot}, {6, known.Slot}, {4, otherHead.Slot}, {7, nil}} {
		n++
		name := func(s string) string { return s + string(rune('a'+n)) }
		a, err := r.CreateBranchFrom(ctx, "p", name("k"), main, c.at, c.known)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.CreateBranch(ctx, "p", name("f"), main, c.at)
		if err != nil {
			t.Fatal(err)
		}
		ta, err := r.Timeline(ctx, a.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := r.Timeline(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		// The slot named may differ between slots that both hold the LSN
		// (a void after a commit, as a fork from a head that is a void
		// names before this change too): each must hold it.
		sa, err := r.ReadSlot(ctx, ta.Parent, ta.ParentSlot)
		if err != nil || sa == nil {
			t.Fatalf("at %d: parent slot %d of the fork from the known head: %+v, %v", c.at, ta.ParentSlot, sa, err)
		}
		sb, err := r.ReadSlot(ctx, tb.Parent, tb.ParentSlot)
		if err != nil || sb == nil {
			t.Fatal(err)
		}
		if ta.Parent != tb.Parent || ta.Base != tb.Base || ta.Base != c.at ||
			!(sa.LSN == c.at || sa.Kind == SlotCommit && sa.Base < c.at && c.at <= sa.LSN) {
			t.Errorf("at %d (known %v): fork from the known head %+v (slot %+v), from a fresh head %+v (slot %+v)", c.at, c.known != nil, ta, sa, tb, sb)
		}
		ha, err := r.Head(ctx, a.Timeline)
		if err != nil || ha.LSN != c.at {
			t.Errorf("at %d: the new branch's head %+v, %v", c.at, ha, err)
		}
		fa, err := r.Fold(ctx, a.Timeline, c.at, "")
		if err != nil {
			t.Fatal(err)
		}
		fm, err := r.Fold(ctx, l.main, c.at, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(fa.Docs("c")) != len(fm.Docs("c")) || len(fa.Docs("c")) != int(c.at) {
			t.Errorf("at %d: the fork holds %d documents, main at %d holds %d", c.at, len(fa.Docs("c")), c.at, len(fm.Docs("c")))
		}
	}
}

package wal

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// review12: latestAcross (one query of the slots and one of the entries
// for the whole ancestry, on an engine that scans) against a ground truth
// that does not share its code: the last committed entry of each key read
// by EachEntry on the path of a server that does not scan. The ancestry
// here has four timelines and two empty segments: a fork at LSN 0 (main
// contributes nothing), and a fork at a timeline's own base (that
// timeline contributes nothing); forks inside a spilled chunk and inside
// an inline commit; a parent's commits after the fork; and entries of a
// writer that never committed, with LSNs inside committed ranges.
func TestReview12LatestAcrossAgainstEachEntry(t *testing.T) {
	for _, unkeyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("unkeyed=%v", unkeyed), func(t *testing.T) { checkReview12LatestAcrossAgainstEachEntry(t, unkeyed) })
	}
}

// checkReview12LatestAcrossAgainstEachEntry runs the test on slots that name their chunks' key records, or
// (unkeyed) on slots that do not.
func checkReview12LatestAcrossAgainstEachEntry(t *testing.T, unkeyed bool) {
	l := newChainLog(t)
	l.unkeyed = unkeyed
	r, ctx := l.r, context.Background()
	inline := func(tl, token string, es []Entry) {
		t.Helper()
		h := l.heads[tl]
		h[0]++
		s := &Slot{TL: tl, N: h[0], Kind: SlotCommit, Base: h[1], LSN: h[1] + int64(len(es)), Token: token, Stats: Stats(es)}
		for _, e := range es {
			s.Entries = append(s.Entries, SlotEntry{Op: e.Op, Coll: e.Coll, Key: e.KeyBytes, Doc: e.Doc})
		}
		if err := r.InsertSlot(ctx, s); err != nil {
			t.Fatal(err)
		}
		h[1] = s.LSN
	}
	fork := func(name string, from string, fromTL string, at int64) string {
		t.Helper()
		fb, err := r.Branch(ctx, "p", from)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.CreateBranch(ctx, "p", name, fb, at)
		if err != nil {
			t.Fatal(err)
		}
		h, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		l.heads[b.Timeline] = &[2]int64{h.Slot.N, at}
		return b.Timeline
	}
	series := func(tl, token, op string, from int64, keys ...int) []Entry {
		var es []Entry
		for i, k := range keys {
			es = append(es, l.entry(tl, from+int64(i), "c", op, token, k))
		}
		return es
	}
	// a: forked from main at LSN 0, so main's segment is empty.
	a := fork("a", "main", l.main, 0)
	// main goes on after the fork: none of it is a's.
	inline(l.main, "m1", series(l.main, "m1", OpPut, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9))
	// a: 1-15 spilled (one chunk), then 16-20 inline, with an index entry
	// and another collection among them.
	l.commit(a, "a1", series(a, "a1", OpPut, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14))
	// b forks inside a's spilled chunk, at 12: a's 13-15 are not b's.
	b := fork("b", "a", a, 12)
	es := series(a, "a2", OpDel, 16, 1, 2)
	es = append(es, l.entry(a, 18, "c", OpIndex, "a2", 3), l.entry(a, 19, "d", OpPut, "a2", 4))
	es = append(es, series(a, "a2", OpPut, 20, 5)...)
	inline(a, "a2", es)
	// c forks from b at b's own base: b's segment is empty for c.
	c := fork("c", "b", b, 12)
	// b's own commits after that (none of them c's).
	l.commit(b, "b1", series(b, "b1", OpDel, 13, 0, 3, 6))
	// A writer on c that never committed: its entries sit at LSNs c's
	// commits use, under its own token.
	if _, err := r.SpillEntries(ctx, "p", series(c, "lost", OpPut, 13, 7, 8, 9)); err != nil {
		t.Fatal(err)
	}
	inline(c, "c1", series(c, "c1", OpPut, 13, 10, 11, 12, 13, 14))     // 13-17
	l.commit(c, "c2", series(c, "c2", OpDel, 18, 10, 0, 5, 20, 21, 22)) // 18-23
	// d forks inside c's inline commit, at 15: c's 16-23 are not d's.
	d := fork("d", "c", c, 15)
	l.commit(d, "d1", series(d, "d1", OpPut, 16, 1, 9, 14, 15))
	inline(d, "d2", series(d, "d2", OpDel, 20, 9))
	// e forks from d at d's head; then e's own commit: six timelines
	// deep (main included), two of them empty.
	e := fork("e", "d", d, 20)
	inline(e, "e1", series(e, "e1", OpPut, 21, 2, 16))

	var keys [][]byte
	for i := 0; i < 24; i++ {
		keys = append(keys, l.entry(l.main, 1, "c", OpPut, "", i).KeyBytes)
	}
	line := func(k string, e *Entry) string {
		return fmt.Sprintf("%x %s@%d %s %x", k, e.TL[len(e.TL)-4:], e.LSN, e.Op, e.Doc)
	}
	truth := func(tl string, at int64) string {
		r.Scans = false
		last := map[string]*Entry{}
		if err := r.EachEntry(ctx, tl, 0, at, "c", func(e *Entry) error {
			if e.Op == OpIndex || e.Op == OpDropIndex {
				return nil
			}
			cp := *e
			last[string(e.KeyBytes)] = &cp
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for k, e := range last {
			lines = append(lines, line(k, e))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	across := func(tl string, at int64) string {
		r.Scans = true
		defer func() { r.Scans = false }()
		got, _, err := r.LatestAtOrBelow(ctx, tl, at, "c", keys, false)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for k, e := range got {
			lines = append(lines, line(k, e))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	for _, cs := range []struct {
		name string
		tl   string
		at   int64
	}{
		{"e", e, 22}, {"e", e, 21}, {"e", e, 20}, {"d", d, 20}, {"d", d, 19}, {"d", d, 16}, {"d", d, 15},
		{"c", c, 23}, {"c", c, 17}, {"c", c, 13}, {"c", c, 12}, {"b", b, 15}, {"b", b, 12},
		{"a", a, 20}, {"a", a, 15}, {"a", a, 12},
	} {
		want, got := truth(cs.tl, cs.at), across(cs.tl, cs.at)
		if want == "" {
			t.Errorf("%s@%d: the ground truth is empty", cs.name, cs.at)
		}
		if got != want {
			t.Errorf("%s@%d: latestAcross found\n%s\nwant (EachEntry)\n%s", cs.name, cs.at, got, want)
		}
	}
}

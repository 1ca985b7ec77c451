package wal

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// On an engine that scans, a lookup of a few keys reads every timeline
// of the ancestry with one query of the slots and one of the entries
// (latestAcross); it finds exactly what a query per timeline finds: inline
// and spilled entries, deletes, keys the parent changed after the fork
// (not the child's), and keys changed on both sides.
func TestLatestAcrossMatchesEachSegment(t *testing.T) {
	for _, unkeyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("unkeyed=%v", unkeyed), func(t *testing.T) { checkLatestAcrossMatchesEachSegment(t, unkeyed) })
	}
}

// checkLatestAcrossMatchesEachSegment runs the test on slots that name their chunks' key records, or
// (unkeyed) on slots that do not.
func checkLatestAcrossMatchesEachSegment(t *testing.T, unkeyed bool) {
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
	// Main: keys 0-29 put (inline), then 10-14 deleted and 20-24 put
	// again (spilled).
	var es []Entry
	for i := 0; i < 30; i++ {
		es = append(es, l.entry(l.main, int64(i+1), "c", OpPut, "m1", i))
	}
	inline(l.main, "m1", es)
	es = nil
	for i := 10; i < 15; i++ {
		es = append(es, l.entry(l.main, int64(len(es)+31), "c", OpDel, "m2", i))
	}
	for i := 20; i < 25; i++ {
		es = append(es, l.entry(l.main, int64(len(es)+31), "c", OpPut, "m2", i))
	}
	l.commit(l.main, "m2", es) // LSN 31-40, spilled: its chunk spans the fork
	main, err := r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.CreateBranch(ctx, "p", "f", main, 35) // inside the spilled commit
	if err != nil {
		t.Fatal(err)
	}
	fh, err := r.Head(ctx, f.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	l.heads[f.Timeline] = &[2]int64{fh.Slot.N, 35}
	// Main after the fork: keys 0-4 and 25-29 put again (not f's).
	es = nil
	for _, i := range []int{0, 1, 2, 3, 4, 25, 26, 27, 28, 29} {
		es = append(es, l.entry(l.main, int64(len(es)+41), "c", OpPut, "m3", i))
	}
	inline(l.main, "m3", es) // 41-50
	// g, forked inside that inline commit, puts 8-10 at 46-48: main's
	// 46-48 are not g's.
	g, err := r.CreateBranch(ctx, "p", "g", main, 45)
	if err != nil {
		t.Fatal(err)
	}
	gh, err := r.Head(ctx, g.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	l.heads[g.Timeline] = &[2]int64{gh.Slot.N, 45}
	inline(g.Timeline, "g1", []Entry{l.entry(g.Timeline, 46, "c", OpPut, "g1", 8), l.entry(g.Timeline, 47, "c", OpPut, "g1", 9),
		l.entry(g.Timeline, 48, "c", OpPut, "g1", 10)})
	l.commit(l.main, "m4", []Entry{l.entry(l.main, 51, "c", OpPut, "m4", 6), l.entry(l.main, 52, "c", OpPut, "m4", 12)})
	// f: keys 3-7 put (inline), then 12 and 27 put, 5 deleted (spilled).
	es = nil
	for i := 3; i < 8; i++ {
		es = append(es, l.entry(f.Timeline, int64(len(es)+36), "c", OpPut, "f1", i))
	}
	inline(f.Timeline, "f1", es) // 36-40
	l.commit(f.Timeline, "f2", []Entry{l.entry(f.Timeline, 41, "c", OpPut, "f2", 12), l.entry(f.Timeline, 42, "c", OpPut, "f2", 27),
		l.entry(f.Timeline, 43, "c", OpDel, "f2", 5)})

	var keys [][]byte
	for i := 0; i < 32; i++ {
		keys = append(keys, l.entry(l.main, 1, "c", OpPut, "", i).KeyBytes)
	}
	show := func(scans bool, tl string, at int64) string {
		r.Scans = scans
		got, _, err := r.LatestAtOrBelow(ctx, tl, at, "c", keys, false)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for k, e := range got {
			lines = append(lines, fmt.Sprintf("%x %s@%d %s %x", k, e.TL[len(e.TL)-4:], e.LSN, e.Op, e.Doc))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	for _, c := range []struct {
		tl string
		at int64
	}{{f.Timeline, 43}, {f.Timeline, 40}, {f.Timeline, 36}, {f.Timeline, 35}, {l.main, 52}, {l.main, 50}, {l.main, 35}, {g.Timeline, 48}, {g.Timeline, 46}} {
		want, got := show(false, c.tl, c.at), show(true, c.tl, c.at)
		if got != want {
			t.Errorf("at %d: one query for the ancestry found\n%s\nwant, as a query per timeline,\n%s", c.at, got, want)
		}
		if c.tl == f.Timeline && c.at == 43 {
			// 0-2 from main before the fork (m1), 5 deleted by f, 12 and
			// 27 put by f: spot checks that the lookup is not empty.
			for _, s := range []string{"@43 del", "@41 put", "@42 put"} {
				if !strings.Contains(got, s) {
					t.Errorf("at 43 on f, want %q among\n%s", s, got)
				}
			}
		}
	}
}

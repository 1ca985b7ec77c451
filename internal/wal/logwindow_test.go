package wal

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A walk of the log reads its slots a window at a time (readSlots): the
// commits it lists are the same whatever the window, across voids and a
// fork, at any LSN and limit, on an engine that scans (point reads) and
// on one that indexes a list of _ids (one query a window); on the latter
// a walk of 20 commits sends a few slot queries, not one per slot.
func TestLogReadsSlotsByWindow(t *testing.T) {
	l := newChainLog(t)
	r, ctx := l.r, context.Background()
	slot := func(tl string, kind string, lsns int) {
		t.Helper()
		h := l.heads[tl]
		h[0]++
		s := &Slot{TL: tl, N: h[0], Kind: kind, Base: h[1], LSN: h[1] + int64(lsns), Token: fmt.Sprintf("t%d", h[0])}
		if kind == SlotCommit {
			for i := 0; i < lsns; i++ {
				e := l.entry(tl, h[1]+int64(i)+1, "c", OpPut, s.Token, int(h[1])+i)
				s.Entries = append(s.Entries, SlotEntry{Op: e.Op, Coll: e.Coll, Key: e.KeyBytes, Doc: e.Doc})
			}
		}
		if err := r.InsertSlot(ctx, s); err != nil {
			t.Fatal(err)
		}
		h[1] = s.LSN
	}
	// main: LSNs 1-30 one commit each, a void after 10 and two after 20.
	for lsn := 1; lsn <= 30; lsn++ {
		slot(l.main, SlotCommit, 1)
		if lsn == 10 || lsn == 20 {
			slot(l.main, SlotVoid, 0)
		}
		if lsn == 20 {
			slot(l.main, SlotVoid, 0)
		}
	}
	main, err := r.Branch(ctx, "p", "main")
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.CreateBranch(ctx, "p", "f", main, 12)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := r.Head(ctx, f.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	l.heads[f.Timeline] = &[2]int64{fh.Slot.N, 12}
	// f: 13-14, a void, then 15-20 (17-18 in one commit).
	slot(f.Timeline, SlotCommit, 1)
	slot(f.Timeline, SlotCommit, 1)
	slot(f.Timeline, SlotVoid, 0)
	for _, n := range []int{1, 1, 2, 1, 1} {
		slot(f.Timeline, SlotCommit, n)
	}
	// What the log of f at LSN at lists, newest first: f's commits at or
	// below at (of one that at falls inside, the part up to at), then
	// main's from min(at, 12) down.
	want := func(at int64, limit int) string {
		var items []string
		for _, c := range [][2]int64{{20, 20}, {19, 19}, {17, 18}, {16, 16}, {15, 15}, {14, 14}, {13, 13}} {
			if c[0] <= at { // at inside a commit: its part up to at
				items = append(items, fmt.Sprintf("%d-%d", c[0], min(c[1], at)))
			}
		}
		for lsn := min(at, 12); lsn >= 1; lsn-- {
			items = append(items, fmt.Sprintf("%d-%d inherited", lsn, lsn))
		}
		if limit > 0 && len(items) > limit {
			items = items[:limit]
		}
		return strings.Join(items, " ")
	}
	var mu sync.Mutex
	finds := 0
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if coll, _ := e.Command.Lookup("find").StringValueOK(); coll == collSlots {
			mu.Lock()
			finds++
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(l.uri).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	mr := Open(client, r.DB.Name())
	for _, scans := range []bool{true, false} {
		mr.Scans = scans
		for _, at := range []int64{20, 18, 17, 13, 12, 5, 1} {
			for _, limit := range []int{0, 1, 2, 3, 7, 8, 9, 20} {
				items, err := mr.Log(ctx, f.Timeline, at, limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, it := range items {
					s := fmt.Sprintf("%d-%d", it.From, it.To)
					if it.Inherited {
						s += " inherited"
					}
					got = append(got, s)
				}
				if g, w := strings.Join(got, " "), want(at, limit); g != w {
					t.Errorf("scans %v: log of f at %d, limit %d:\n got %s\nwant %s", scans, at, limit, g, w)
				}
			}
		}
		// The walk alone, from a head already read: 20 commits over 24
		// slots of two timelines.
		head, path, err := mr.HeadPath(ctx, f.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		finds = 0
		mu.Unlock()
		if _, err := mr.LogFrom(ctx, f.Timeline, head, path, head.LSN, 20); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n := finds
		mu.Unlock()
		if scans && n < 20 {
			t.Errorf("scans: the walk read %d slots, want one point read for each of at least 20", n)
		}
		if !scans && n > 3 {
			t.Errorf("indexed: the walk sent %d slot queries, want at most 3 (one a window)", n)
		}
	}
}

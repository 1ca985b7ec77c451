package wal

import (
	"context"
	"fmt"
	"testing"

	"github.com/argon-db/argon/internal/enginetest"
)

// HeadsOf gives every timeline the head HeadOf gives it, on both of its
// paths (one scan of the slots from headScanMin timelines on, point reads
// below), whatever the slots after the hint hold: commits, voids, a moved
// slot, and slots of another project's timelines in the same collection.
func TestHeadsOfMatchesHeadOf(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	r := Open(srv.Client, srv.DB)
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	var tls []*Timeline
	for _, project := range []string{"p", "other"} {
		_, main, err := r.CreateProject(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < headScanMin+3; i++ {
			b, err := r.CreateBranch(ctx, project, fmt.Sprintf("b%d", i), main, -1)
			if err != nil {
				t.Fatal(err)
			}
			tl, err := r.Timeline(ctx, b.Timeline)
			if err != nil {
				t.Fatal(err)
			}
			// Branch i gets i slots after its root, not on the hint:
			// commits, with a void every third and a moved slot last on
			// branch 5.
			lsn := tl.Base
			for n := int64(1); n <= int64(i); n++ {
				s := &Slot{TL: tl.ID, N: n, Kind: SlotCommit, Base: lsn, LSN: lsn + n, Token: fmt.Sprintf("t%d", n)}
				switch {
				case i == 5 && n == int64(i):
					s.Kind, s.LSN, s.To = SlotMoved, lsn, "elsewhere"
				case n%3 == 0:
					s.Kind, s.LSN = SlotVoid, lsn
				}
				if err := r.InsertSlot(ctx, s); err != nil {
					t.Fatal(err)
				}
				lsn = s.LSN
			}
			if project == "p" {
				tls = append(tls, tl)
			}
		}
	}
	want := map[string]Head{}
	for _, tl := range tls {
		h, err := r.HeadOf(ctx, tl)
		if err != nil {
			t.Fatal(err)
		}
		want[tl.ID] = h
	}
	for _, c := range []struct {
		scans bool
		tls   []*Timeline
	}{{true, tls}, {false, tls}, {true, tls[:headScanMin-1]}} {
		r.Scans = c.scans
		got, err := r.HeadsOf(ctx, c.tls)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.tls) {
			t.Errorf("scans=%v, %d timelines: %d heads", c.scans, len(c.tls), len(got))
		}
		for _, tl := range c.tls {
			g, w := got[tl.ID], want[tl.ID]
			if g.LSN != w.LSN || g.Slot.N != w.Slot.N || g.Slot.Kind != w.Slot.Kind || g.Slot.To != w.Slot.To {
				t.Errorf("scans=%v, %d timelines: timeline %s head slot %d (%s) LSN %d, want slot %d (%s) LSN %d",
					c.scans, len(c.tls), tl.ID, g.Slot.N, g.Slot.Kind, g.LSN, w.Slot.N, w.Slot.Kind, w.LSN)
			}
		}
	}
}

package wal

import (
	"context"
	"fmt"
	"testing"

	"github.com/argon-db/argon/internal/enginetest"
)

// HeadsOf gives every timeline the head HeadOf gives it, on both of its
// paths (one scan of the slots from headScanMin timelines on while the
// slots are few, point reads from the hints otherwise, read for timelines
// taken from branches' copies), whatever the slots after the hint hold:
// commits, voids, a moved slot, and slots of another project's timelines
// in the same collection.
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
	// The branches' copies of their fork points have no hint: HeadsOf
	// reads it when it needs it.
	copies := make([]*Timeline, len(tls))
	for i, tl := range tls {
		copies[i] = (&Branch{Timeline: tl.ID, Project: tl.Project, Fork: forkOf(tl)}).ForkTimeline()
	}
	defer func(n int) { headScanSlots = n }(headScanSlots)
	for _, c := range []struct {
		scans bool
		// perTimeline is headScanSlots: 100 lets the scan read every
		// slot of both projects, 8 does not.
		perTimeline int
		tls         []*Timeline
		byScan      bool
	}{
		{true, 100, tls, true}, {true, 100, copies, true},
		{true, 8, tls, false}, {true, 8, copies, false},
		{false, 100, tls, false}, {false, 100, copies, false},
		{true, 100, tls[:headScanMin-1], false}, {true, 100, copies[:headScanMin-1], false},
	} {
		r.Scans, headScanSlots = c.scans, c.perTimeline
		name := fmt.Sprintf("scans=%v, %d slots a timeline, %d timelines, hint %d", c.scans, c.perTimeline, len(c.tls), c.tls[0].Hint)
		if r.HeadsByScan(len(c.tls)) {
			scanned, err := r.headsByScan(ctx, c.tls)
			if err != nil {
				t.Fatal(err)
			}
			if (scanned != nil) != c.byScan {
				t.Errorf("%s: heads by one scan %v, want %v", name, scanned != nil, c.byScan)
			}
		} else if c.byScan {
			t.Errorf("%s: no scan tried", name)
		}
		got, err := r.HeadsOf(ctx, c.tls)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(c.tls) {
			t.Errorf("%s: %d heads", name, len(got))
		}
		for _, tl := range c.tls {
			g, w := got[tl.ID], want[tl.ID]
			if g.LSN != w.LSN || g.Slot.N != w.Slot.N || g.Slot.Kind != w.Slot.Kind || g.Slot.To != w.Slot.To {
				t.Errorf("%s: timeline %s head slot %d (%s) LSN %d, want slot %d (%s) LSN %d",
					name, tl.ID, g.Slot.N, g.Slot.Kind, g.LSN, w.Slot.N, w.Slot.Kind, w.LSN)
			}
		}
	}
}

package commit

import (
	"context"
	"fmt"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// Report is the result of Fsck.
type Report struct {
	Timelines int           `json:"timelines"`
	Slots     int64         `json:"slots"`
	Problems  []wal.Problem `json:"problems"`
	// Notes are states that are not violations but deserve a look: a
	// write in progress, applications' uncommitted changes, entries left
	// by writers that lost.
	Notes    []string `json:"notes"`
	Repaired []string `json:"repaired"`
}

// Fsck checks every invariant of project's log (wal.Repo.Check), every
// branch's working-database marker (it names a slot on the branch's
// committed chain, with that slot's token), every image snapshot and every
// cached view (equal to a fold). With repair it fixes what the log
// allows: writers that stopped are fenced out and the databases they
// touched repaired, working databases off the chain are rebuilt,
// divergent images and views dropped, and uncommitted entries that a
// commit covers deleted. Applications' uncommitted changes are reported,
// never discarded.
func (p *Protocol) Fsck(ctx context.Context, r *wal.Repo, project string, open func(*wal.Branch) *workdb.Branch, repair bool) (*Report, error) {
	infos, problems, err := r.Check(ctx, project)
	if err != nil {
		return nil, err
	}
	rep := &Report{Timelines: len(infos), Problems: problems, Notes: []string{}, Repaired: []string{}}
	if rep.Problems == nil {
		rep.Problems = []wal.Problem{}
	}
	byTL := map[string]*wal.TimelineInfo{}
	tls := map[string]bool{}
	for i := range infos {
		inf := &infos[i]
		byTL[inf.ID], tls[inf.ID] = inf, true
		if inf.Head != nil {
			rep.Slots += inf.Head.N + 1
		}
		if inf.Uncommitted > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("timeline %s: %d log entries of writers that did not commit (invisible; %d of writers that can no longer commit)", inf.ID, inf.Uncommitted, inf.Covered))
			if repair && inf.Covered > 0 {
				tokens, err := r.SpilledTokens(ctx, inf.ID)
				if err != nil {
					return nil, err
				}
				n, err := r.DeleteCovered(ctx, inf.ID, inf.Head, tokens)
				if err != nil {
					return nil, err
				}
				rep.Repaired = append(rep.Repaired, fmt.Sprintf("timeline %s: deleted %d entries of writers that can no longer commit", inf.ID, n))
			}
		}
	}
	// Images first: repairs below fold from them.
	ip, ir, err := r.VerifyImages(ctx, tls, repair)
	if err != nil {
		return nil, err
	}
	for _, v := range ip {
		rep.Problems = append(rep.Problems, wal.Problem{What: v})
	}
	rep.Repaired = append(rep.Repaired, ir...)
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return nil, err
	}
	for i := range bs {
		b := &bs[i]
		inf := byTL[b.Timeline]
		if inf == nil || inf.Head == nil {
			continue
		}
		// A fast-forward that stopped after closing the old timeline and
		// before repointing the branch (wal.Check reported it).
		// The branch's checks below are of the timeline it moved to.
		for inf.Head.Kind == wal.SlotMoved && byTL[inf.Head.To] != nil && byTL[inf.Head.To].Head != nil {
			// Like a marker that lags, not a violation: the moved slot
			// decides, and the branch's next command follows it.
			rep.Notes = append(rep.Notes, fmt.Sprintf("branch %s still names timeline %s, which a fast-forward closed and moved to %s; its next command, or fsck --repair, repoints it", b.Name, b.Timeline, inf.Head.To))
			if repair {
				if _, err := r.Repoint(ctx, project, b.Name, b.Timeline, inf.Head.To, inf.Head.LSN, wal.MoveAction(inf.Head)+" (completed by fsck --repair)"); err != nil {
					return nil, err
				}
				rep.Repaired = append(rep.Repaired, fmt.Sprintf("branch %s: repointed from timeline %s to %s, where a fast-forward moved it", b.Name, b.Timeline, inf.Head.To))
			}
			b.Timeline = inf.Head.To
			inf = byTL[b.Timeline]
		}
		w := open(b)
		if inf.Pending != nil && !repair {
			// With --repair, the repair below takes the branch over
			// and says so instead.
			rep.Notes = append(rep.Notes, fmt.Sprintf("branch %s: a write (on %s) holds slot %d and has not committed", b.Name, inf.Pending.Host, inf.Pending.N))
		}
		m, err := w.Marker(ctx)
		if err != nil {
			return nil, err
		}
		offChain := ""
		switch {
		case m == nil:
			// Never built, or dropped: nothing cached to check.
		case m.TL != b.Timeline:
			offChain = fmt.Sprintf("branch %s: working database %s holds timeline %s, not the branch's %s", b.Name, w.DB.Name(), m.TL, b.Timeline)
		case m.Slot > inf.Head.N:
			offChain = fmt.Sprintf("branch %s: working database marker names slot %d, past the head slot %d", b.Name, m.Slot, inf.Head.N)
		default:
			s, err := r.ReadSlot(ctx, b.Timeline, m.Slot)
			if err != nil {
				return nil, err
			}
			if s == nil || s.Token != m.Token || s.LSN != m.LSN {
				offChain = fmt.Sprintf("branch %s: working database marker names slot %d (LSN %d), which is not on the committed chain", b.Name, m.Slot, m.LSN)
			}
		}
		if offChain != "" {
			rep.Problems = append(rep.Problems, wal.Problem{Timeline: b.Timeline, What: offChain})
		}
		if repair && (offChain != "" || inf.Pending != nil || (inf.Head.Kind == wal.SlotVoid && inf.Head.Dirty)) {
			if offChain != "" {
				_ = w.Drop(ctx)
			}
			if _, err := w.Checkout(ctx); err != nil {
				return nil, fmt.Errorf("repair branch %s: %w", b.Name, err)
			}
			what := fmt.Sprintf("branch %s: working database brought to the committed head", b.Name)
			if inf.Pending != nil {
				what += fmt.Sprintf(" (a write on %s held slot %d and had not committed)", inf.Pending.Host, inf.Pending.N)
			}
			rep.Repaired = append(rep.Repaired, what)
			if m, err = w.Marker(ctx); err != nil {
				return nil, err
			}
			if inf.Head, err = r.HeadSlot(ctx, b.Timeline, nil); err != nil {
				return nil, err
			}
		}
		// The committed head itself: two documents whose _ids are equal
		// by value make a state no server can hold (a checkout, restore
		// or find --at of it fails on a duplicate key). Nothing can
		// repair it but a commit that deletes one of them.
		equal, err := r.EqualIDsAt(ctx, b.Timeline, inf.Head.LSN, r.Scans)
		if err != nil {
			return nil, err
		}
		for _, e := range equal {
			rep.Problems = append(rep.Problems, wal.Problem{Timeline: b.Timeline,
				What: fmt.Sprintf("branch %s at LSN %d: %s; a checkout, restore or find --at of this state fails on a duplicate key", b.Name, inf.Head.LSN, e)})
		}
		if inf.Pending != nil && !repair {
			// Reading would take the branch over; a check changes nothing.
			continue
		}
		if m != nil && m.TL == b.Timeline && (offChain == "" || repair) {
			var diffs []string
			err := p.Read(ctx, w, func(mk *workdb.Marker) error {
				var err error
				diffs, err = w.Verify(ctx, mk.LSN)
				return err
			})
			if err != nil {
				return nil, err
			}
			if len(diffs) > 0 {
				docs := fmt.Sprintf("%d documents in the working database differ", len(diffs))
				if len(diffs) == 1 {
					docs = "1 document in the working database differs"
				}
				rep.Notes = append(rep.Notes, fmt.Sprintf("branch %s: %s from the log (uncommitted changes: `argon status --branch %s` lists them, `argon restore` discards them)", b.Name, docs, b.Name))
			}
		}
	}
	vp, vr, err := workdb.VerifyViews(ctx, r, tls, repair)
	if err != nil {
		return nil, err
	}
	for _, v := range vp {
		rep.Problems = append(rep.Problems, wal.Problem{What: v})
	}
	rep.Repaired = append(rep.Repaired, vr...)
	return rep, nil
}

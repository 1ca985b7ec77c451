package merge

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/wal"
)

// Apply is one key the merge changes on the target: a document (or index
// specification) to put, or, when Doc is nil, to delete.
type Apply struct {
	Coll  string
	Index bool
	ID    bson.RawValue
	Doc   bson.Raw
}

// Plan is what merging theirs into ours does.
type Plan struct {
	Base diff.Point
	// FastForward is set when ours has not moved since the base: the
	// result is theirs.
	FastForward bool
	// UpToDate is set when theirs brings nothing new.
	UpToDate  bool
	Changes   []Apply
	Conflicts []Conflict
	// EntriesRead counts the log entries the two diffs read (for tests:
	// it follows the changes since the base, not the data).
	EntriesRead int
}

// MergeOf is how a merge commit records the state it merged.
func MergeOf(p diff.Point) string { return p.TL + "@" + strconv.FormatInt(p.LSN, 10) }

// ParseMergeOf reads what MergeOf wrote.
func ParseMergeOf(s string) (diff.Point, bool) {
	tl, l, ok := strings.Cut(s, "@")
	n, err := strconv.ParseInt(l, 10, 64)
	return diff.Point{TL: tl, LSN: n}, ok && err == nil
}

// CrissCrossError reports two branches that have each merged the other
// since their fork: their histories have no single best common state.
type CrissCrossError struct{}

func (e *CrissCrossError) Error() string {
	return "the two branches have each merged the other since they forked (a criss-cross history): argon cannot pick one merge base; merge in one direction only, or bring the changes over with a new branch"
}

// mergedFrom returns the newest state on other's path that a merge commit
// on from's log (above LSN c) recorded, if any, and the LSN of that merge
// commit on from's path.
func mergedFrom(ctx context.Context, r *wal.Repo, from, other diff.Point, c int64) (diff.Point, int64, bool, error) {
	var found diff.Point
	var at int64
	ok := false
	var werr error
	err := r.WalkLog(ctx, from.TL, from.LSN, func(it wal.LogItem) bool {
		if it.To <= c {
			return false
		}
		p, isMerge := ParseMergeOf(it.MergeOf)
		if !isMerge {
			return true
		}
		// A merge commit the state holds only part of (a branch made from
		// an LSN inside it) did not bring what it recorded: it is no base.
		if s, err := r.ReadSlot(ctx, it.TL, it.N); err != nil {
			werr = err
			return false
		} else if s != nil && s.LSN > it.To {
			return true
		}
		pc, err := diff.Common(ctx, r, p, other)
		if err != nil {
			werr = err
			return false
		}
		if pc == p.LSN && p.LSN > c {
			found, at, ok = p, it.To, true // a state other contains
			return false
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return found, at, ok, err
}

// Base returns the merge base of ours and theirs, the newest state both
// contain: a state of theirs that a merge commit on ours' log recorded (so
// a second merge brings only what changed since the first), or a state of
// ours that a merge on theirs' log recorded (a branch brought up to date
// from ours before coming back), or else the end of their common history.
// Both at once is a criss-cross history, refused.
func Base(ctx context.Context, r *wal.Repo, ours, theirs diff.Point) (diff.Point, error) {
	c, err := diff.Common(ctx, r, ours, theirs)
	if err != nil {
		return diff.Point{}, err
	}
	fromTheirs, atT, okT, err := mergedFrom(ctx, r, ours, theirs, c)
	if err != nil {
		return diff.Point{}, err
	}
	fromOurs, atO, okO, err := mergedFrom(ctx, r, theirs, ours, c)
	if err != nil {
		return diff.Point{}, err
	}
	switch {
	case okT && okO:
		// Each merged the other: fine when one of the merged states
		// already contains the other merge (an ours state taken after
		// ours merged fromTheirs, or the reverse); it is then the base.
		switch {
		case fromOurs.LSN >= atT:
			return fromOurs, nil
		case fromTheirs.LSN >= atO:
			return fromTheirs, nil
		}
		return diff.Point{}, &CrissCrossError{}
	case okT:
		return fromTheirs, nil
	case okO:
		return fromOurs, nil
	}
	return diff.Point{TL: ours.TL, LSN: c}, nil
}

// Merge plans merging theirs into ours, three-way against their merge
// base. Keys changed on one side only are taken from that side; keys
// changed on both are merged field by field (Docs); index definitions
// changed differently on both sides conflict. With res Refuse, conflicts
// are reported and Changes holds what a resolution would still apply.
func Merge(ctx context.Context, r *wal.Repo, ours, theirs diff.Point, res Resolution) (*Plan, error) {
	base, err := Base(ctx, r, ours, theirs)
	if err != nil {
		return nil, err
	}
	return Three(ctx, r, base, ours, theirs, res)
}

// Three plans bringing the changes from base to theirs onto ours, as
// Merge does, against a base the caller chose. A revert of a commit is
// Three with base the state after the commit and theirs the state before
// it: its changes undone on ours, field by field.
func Three(ctx context.Context, r *wal.Repo, base, ours, theirs diff.Point, res Resolution) (*Plan, error) {
	plan := &Plan{Base: base}
	tc, tst, err := diff.Between(ctx, r, base, theirs, "")
	if err != nil {
		return nil, err
	}
	plan.EntriesRead = tst.EntriesRead
	if len(tc) == 0 {
		plan.UpToDate = true
		return plan, nil
	}
	oc, ost, err := diff.Between(ctx, r, base, ours, "")
	if err != nil {
		return nil, err
	}
	plan.EntriesRead += ost.EntriesRead
	plan.FastForward = len(oc) == 0
	mine := map[string]*diff.Change{}
	k := func(c *diff.Change) string {
		return fmt.Sprintf("%s\x00%v\x00%d\x00%x", c.Coll, c.Index, c.ID.Type, c.ID.Value)
	}
	// A document theirs puts under one spelling of an _id while ours put
	// it under another (2 and 2.0: one _id to the server's unique index,
	// two keys to the log) is a conflict of the whole document: taken as
	// is, the merged state would hold both, which no collection can.
	// Taking theirs replaces ours' spelling.
	byValue := func(c *diff.Change) string { return c.Coll + "\x00" + wal.ValueKey(c.ID) }
	oursPuts := map[string]*diff.Change{}
	for i := range oc {
		mine[k(&oc[i])] = &oc[i]
		if !oc[i].Index && oc[i].To != nil {
			oursPuts[byValue(&oc[i])] = &oc[i]
		}
	}
	put := func(t *diff.Change, doc bson.Raw) {
		if o, ok := oursPuts[byValue(t)]; ok && doc != nil && !t.Index && !bytes.Equal(wal.KeyOf(o.ID), wal.KeyOf(t.ID)) {
			plan.Conflicts = append(plan.Conflicts, Conflict{Coll: t.Coll, ID: t.ID, Base: docValue(t.From), Ours: docValue(o.To), Theirs: docValue(doc)})
			if res == Theirs {
				plan.Changes = append(plan.Changes, Apply{Coll: t.Coll, ID: o.ID}, Apply{Coll: t.Coll, ID: t.ID, Doc: doc})
			}
			return
		}
		plan.Changes = append(plan.Changes, Apply{Coll: t.Coll, Index: t.Index, ID: t.ID, Doc: doc})
	}
	for i := range tc {
		t := &tc[i]
		o, both := mine[k(t)]
		if !both {
			put(t, t.To)
			continue
		}
		if bytes.Equal(o.To, t.To) {
			continue
		}
		if t.Index {
			c := Conflict{Coll: t.Coll, ID: t.ID, Index: true, Base: docValue(t.From), Ours: docValue(o.To), Theirs: docValue(t.To)}
			plan.Conflicts = append(plan.Conflicts, c)
			if res == Theirs {
				plan.Changes = append(plan.Changes, Apply{Coll: t.Coll, Index: true, ID: t.ID, Doc: t.To})
			}
			continue
		}
		merged, cs := Docs(t.From, o.To, t.To, res)
		for _, c := range cs {
			c.Coll, c.ID = t.Coll, t.ID
			plan.Conflicts = append(plan.Conflicts, c)
		}
		if !bytes.Equal(merged, o.To) {
			put(t, merged)
		}
	}
	// A delete planned twice (a delete-versus-change conflict settled for
	// theirs, then the same spelling replaced by theirs' other one) is
	// made once: the write path counts each delete it is given.
	seen := map[string]bool{}
	kept := plan.Changes[:0]
	for _, a := range plan.Changes {
		if a.Doc == nil && !a.Index {
			key := a.Coll + "\x00" + string(wal.KeyOf(a.ID))
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		kept = append(kept, a)
	}
	plan.Changes = kept
	return plan, nil
}

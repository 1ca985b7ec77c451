package cmd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type resetOptions struct {
	f                 *Factory
	branch            string
	ref               string
	force             bool
	hard, soft, mixed bool
}

func newResetCmd(f *Factory) *cobra.Command {
	o := &resetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "reset REF | reset --hard [REF]",
		Short: "Move the current branch to another state, as git reset --hard",
		Long: `Move the current branch (or --branch BRANCH) to REF's state: one of its
own past states (BRANCH~N, BRANCH@LSN, BRANCH@TIME, or a bare LSN of the
branch), a tag, another branch, or a reflog position (BRANCH@{N}). As with
git reset --hard, the branch's history is REF's from then on, and its
working database holds REF's documents and indexes. REF names the end of a
commit (or a state with no commit in it): an LSN inside a commit of
several entries is refused, since the branch would hold half of it.

Nothing is deleted. The commits the branch leaves stay in the log: the
reflog records the move, so argon reset BRANCH@{1} takes the branch back,
and branches and tags made from those commits keep them. The move costs the
same whatever the history (the branch goes onto a new timeline forked at
REF, as branch create does); the working database is brought to REF's
state by writing only the documents and indexes that differ.

A branch whose working database holds uncommitted changes is refused, like
checkout and merge; --force discards them first. --hard does too, as in
git: argon reset --hard (REF defaults to HEAD then) throws away what
applications changed and did not commit. --soft and --mixed are refused:
there is no staging area. To undo one commit and keep the ones after it,
use argon revert.`,
		Example: `  argon reset main~1
  argon reset --hard HEAD~1
  argon reset --hard
  argon reset 12
  argon reset v1.0 --branch feature
  argon reset main@{1}`,
		Args: rangeArgs(0, 1, "the ref to move the branch to"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.soft || o.mixed {
				return usageErrorf("argon reset is always --hard: the working database follows the branch (there is no staging area); to keep what it holds, commit it first with `argon commit`")
			}
			switch {
			case len(args) == 1:
				o.ref = args[0]
			case o.hard:
				o.ref = "HEAD"
			default:
				return usageErrorf("argon reset takes the ref to move the branch to (or --hard, for HEAD); usage: %s", cmd.UseLine())
			}
			if o.hard {
				o.force = true // git's reset --hard discards the working tree's changes
			}
			return runReset(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.hard, "hard", false, "as in git: also discard uncommitted changes (as --force); REF defaults to HEAD")
	cmd.Flags().BoolVar(&o.soft, "soft", false, "refused: there is no staging area")
	cmd.Flags().BoolVar(&o.mixed, "mixed", false, "refused: there is no staging area")
	_ = cmd.Flags().MarkHidden("soft")
	_ = cmd.Flags().MarkHidden("mixed")
	cmd.Flags().StringVar(&o.branch, "branch", "", "branch to move (default: the current branch)")
	cmd.Flags().BoolVarP(&o.force, "force", "f", false, "discard uncommitted changes in the branch's working database")
	return cmd
}

func runReset(ctx context.Context, o *resetOptions) error {
	f := o.f
	name, spec, err := f.refArg(o.branch, []string{o.ref})
	if err != nil {
		return err
	}
	r, b, err := f.branchOf(ctx, name)
	if err != nil {
		return err
	}
	project := b.Project
	// Like checkout and merge, a reset never mixes with applications'
	// uncommitted work: --force (or --hard) discards it, but only once
	// REF is known to be a state the branch can move to. The check reads
	// the working database through the read protocol, which also
	// completes a reset or fast-forward that stopped before repointing
	// the branch: the ref is resolved after it, against where the branch
	// really is.
	w, ci, err := uncommitted(ctx, f, r, b)
	if err != nil {
		return err
	}
	if ci != nil && !o.force {
		return uncommittedError(f, "cannot reset "+name, name, ci, "--hard")
	}
	at, err := f.resolvePoint(ctx, r, project, name, spec)
	if err != nil {
		return err
	}
	to := diff.Point{TL: at.Branch.Timeline, LSN: at.LSN}
	if err := insideACommit(ctx, r, project, to, o.ref, at.Branch.Name); err != nil {
		return err
	}
	if ci != nil {
		if _, err := w.Restore(ctx); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "argon: notice: discarded %s on %s\n", ci.line(), name)
	}
	tl := w.TL
	head, err := r.Head(ctx, tl)
	if err != nil {
		return err
	}
	report := map[string]any{"branch": name, "ref": o.ref, "timeline": tl, "head": head.LSN,
		"old_timeline": tl, "old_head": head.LSN, "changed": 0, "moved": false}
	// HEAD~1 over a commit that changed nothing (a merge that brought no
	// change) names the head's state, but not its history: the reset
	// takes the commit out of the branch's log (so that merging that
	// branch again brings its changes), as git's does.
	// (A slot on an ancestor timeline is below the head too: the empty
	// commit was inherited.)
	below := at.SlotTL != "" && (at.SlotTL != tl || at.SlotN < head.Slot.N)
	if to.TL == tl && to.LSN == head.LSN && !below {
		if ci != nil {
			report["discarded"] = ci
		}
		if f.JSON {
			return f.IO.PrintJSON(report)
		}
		what := "nothing to do"
		if ci != nil {
			what = "nothing to move; its uncommitted changes were discarded"
		}
		fmt.Fprintf(f.IO.Out, "%s is already at %s (head LSN %d): %s\n", name, o.ref, head.LSN, what)
		return nil
	}
	// What differs between the head and REF's state: the documents and
	// indexes the working database must change (the reverse of a diff).
	changes, _, err := diff.Between(ctx, r, diff.Point{TL: tl, LSN: head.LSN}, to, "")
	if err != nil {
		return err
	}
	puts := make([]workdb.Put, len(changes))
	for i, c := range changes {
		puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.To}
	}
	var root *wal.Slot
	if at.SlotTL != "" {
		root, err = r.ForkTimelineAt(ctx, project, at.SlotTL, to.LSN, at.SlotN)
	} else {
		root, err = r.ForkTimeline(ctx, project, &wal.Branch{Project: project, Name: o.ref, Timeline: to.TL}, to.LSN)
	}
	if err != nil {
		return err
	}
	msg := wal.ResetMessagePrefix + o.ref
	err = w.MovePuts(ctx, puts, root, head.LSN, msg, wal.CommitInfo{Message: msg, Author: f.Author})
	// With --force, an application's write since the discard is
	// discarded too, and the move tried again: the user gave up the
	// uncommitted changes to have the branch moved.
	for try := 0; try < 3 && o.force && errors.As(err, new(*workdb.UncommittedError)); try++ {
		if _, err = w.Restore(ctx); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "argon: notice: discarded what an application changed on %s meanwhile\n", name)
		err = w.MovePuts(ctx, puts, root, head.LSN, msg, wal.CommitInfo{Message: msg, Author: f.Author})
	}
	if err != nil {
		var moved *wal.MovedOnError
		if errors.As(err, &moved) {
			moved.Op = "reset"
		}
		return uncommittedHint(err, o.branch, name)
	}
	report["timeline"], report["head"], report["changed"], report["moved"] = root.TL, root.LSN, len(changes), true
	if f.JSON {
		return f.IO.PrintJSON(report)
	}
	changed := fmt.Sprintf("%d documents or indexes changed", len(changes))
	if len(changes) == 1 {
		changed = "1 document or index changed"
	}
	fmt.Fprintf(f.IO.Out, "Reset %s to %s: head LSN %d (was %d), %s\n", name, o.ref, root.LSN, head.LSN, changed)
	return nil
}

// branchAndRef opens the branch a command moves or writes (--branch, or
// the current one) and resolves ref, where a bare LSN is that branch's.
func (f *Factory) branchAndRef(ctx context.Context, branchFlag, ref string) (*wal.Repo, string, *wal.Branch, diff.Point, error) {
	name, spec, err := f.refArg(branchFlag, []string{ref})
	if err != nil {
		return nil, "", nil, diff.Point{}, err
	}
	r, b, err := f.branchOf(ctx, name)
	if err != nil {
		return nil, "", nil, diff.Point{}, err
	}
	at, err := f.resolveRef(ctx, r, b.Project, name, spec)
	return r, b.Project, b, at, err
}

// uncommittedError refuses what (a merge, reset or revert) on branch name,
// whose working database holds applications' uncommitted changes ci; the
// hint says how to commit them, or to discard them with discard.
func uncommittedError(f *Factory, what, name string, ci *changesInfo, discard string) error {
	on := ""
	if cur, _ := f.CurrentBranch(); cur != name {
		on = " --branch " + name
	}
	if strings.HasPrefix(discard, "`argon restore") {
		discard = "`argon restore" + on + "`"
	}
	return withHint(fmt.Errorf("%s: it has uncommitted changes in its working database (%s)", what, ci.line()),
		"record them with `argon commit"+on+" -m MESSAGE`, or discard them with "+discard)
}

// insideACommit refuses a reset to a state inside a commit of several
// entries: the branch would hold half of it (and a merge commit's record
// of what it merged with half its documents). The point a timeline forked
// from inside a commit is the end of that timeline's inherited history,
// and is allowed. branch is the branch ref names (or the name it resolved
// through), whose refs the hint prefers.
func insideACommit(ctx context.Context, r *wal.Repo, project string, to diff.Point, ref, branch string) error {
	var it *wal.LogItem
	if err := r.WalkLog(ctx, to.TL, to.LSN, func(x wal.LogItem) bool {
		it = &x
		return false
	}); err != nil || it == nil {
		return err
	}
	s, err := r.ReadSlot(ctx, it.TL, it.N)
	if err != nil || s == nil || s.Kind != wal.SlotCommit || to.LSN >= s.LSN {
		return err
	}
	// inherited: the highest LSN at which to.TL's history is it.TL's.
	inherited := int64(math.MaxInt64)
	if it.TL != to.TL {
		// An inherited commit: the state may be the point a timeline of
		// the ancestry forked from it at, the end of that timeline's
		// inherited history; any other state is inside the commit.
		anc, err := r.Ancestry(ctx, to.TL)
		if err != nil {
			return err
		}
		for _, t := range anc {
			if t.Parent == it.TL && t.Base == to.LSN {
				return nil
			}
		}
		for _, t := range anc {
			if t.ID == it.TL {
				break
			}
			inherited = min(inherited, t.Base)
		}
	}
	what := fmt.Sprintf("%s (LSN %d)", ref, to.LSN)
	if _, err := strconv.ParseInt(ref, 10, 64); err == nil {
		what = "LSN " + ref
	}
	// The states to name instead: as refs of the branch REF named when
	// both are in its history (a commit it inherited, from before a
	// reset), else as refs on the commit's own timeline: its branch's
	// name, or when no branch is on it, the timeline's id (the ref the
	// reflog prints), labelled as argon log labels it ("main (before
	// reset)", "feat (deleted)").
	label, ref2 := "timeline "+it.TL, it.TL
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return err
	}
	for _, x := range bs {
		if x.Name == branch && x.Timeline == to.TL && s.LSN <= inherited {
			label, ref2 = x.Name, x.Name
			break
		}
	}
	for _, x := range bs {
		if ref2 == it.TL && x.Timeline == it.TL {
			label, ref2 = x.Name, x.Name
			break
		}
	}
	if ref2 == it.TL {
		names, err := r.NamesOf(ctx, project, bs, []string{it.TL})
		if err != nil {
			return err
		}
		if n := names[it.TL]; n != "" {
			label = n + ", timeline " + it.TL
		}
	}
	return usageErrorf("%s is inside the commit %s of %s: reset to its end (%s@%d) or to before it (%s@%d)",
		what, lsnRange(it.From, s.LSN), label, ref2, s.LSN, ref2, it.From-1)
}

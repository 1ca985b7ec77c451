package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/merge"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type revertOptions struct {
	f                    *Factory
	branch, ref, message string
	ours, theirs, dryRun bool
	canonical            bool
}

func newRevertCmd(f *Factory) *cobra.Command {
	o := &revertOptions{f: f}
	cmd := &cobra.Command{
		Use:   "revert COMMIT",
		Short: "Undo one commit with a new commit, keeping the ones after it",
		Long: `Make a new commit on the current branch (or --branch BRANCH) that undoes
what COMMIT changed, as git revert does. COMMIT is any ref to a commit: an
LSN of the branch (any LSN the commit wrote), BRANCH@LSN, BRANCH~N, a tag,
HEAD. The commits after it stay as they are.

The undo is three-way, field by field, as a merge: each document the
commit changed goes back to its value before the commit, unless a later
commit changed the same field too. Such a field is a conflict (base: the
value the commit wrote; ours: the branch's value now; theirs: the value
before the commit): nothing is written and argon exits 3, unless --ours
(keep the branch's values) or --theirs (take the values from before the
commit) settles every conflict. A document the commit added is deleted, one
it deleted comes back; indexes likewise. When nothing is left to undo,
nothing is committed.

A branch whose working database has uncommitted changes is refused, like
merge. Reverting a merge commit undoes the documents it wrote; the merge
stays recorded, so merging the same branch again brings only what changed
on it since (as in git).`,
		Example: `  argon revert 12
  argon revert HEAD
  argon revert main~2 -m "take back the price change"
  argon revert feature@7 --branch feature --dry-run`,
		Args: exactArgs(1, "the commit to revert"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ref = args[0]
			if o.ours && o.theirs {
				return usageErrorf("--ours and --theirs cannot be used together")
			}
			return runRevert(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.branch, "branch", "", "branch to commit the revert on (default: the current branch)")
	cmd.Flags().StringVarP(&o.message, "message", "m", "", "commit message (default: Revert \"MESSAGE OF COMMIT\")")
	cmd.Flags().BoolVar(&o.ours, "ours", false, "settle every conflict with the branch's value")
	cmd.Flags().BoolVar(&o.theirs, "theirs", false, "settle every conflict with the value from before the commit")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show what the revert would do, write nothing")
	cmd.Flags().BoolVar(&o.canonical, "canonical", false, "print conflicting values as canonical Extended JSON (exact types)")
	return cmd
}

func runRevert(ctx context.Context, o *revertOptions) error {
	f := o.f
	r, project, b, at, err := f.branchAndRef(ctx, o.branch, o.ref)
	if err != nil {
		return err
	}
	name := b.Name
	it, err := commitAt(ctx, r, at, o.ref)
	if err != nil {
		return err
	}
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		return err
	}
	ours := diff.Point{TL: b.Timeline, LSN: head.LSN}
	res := merge.Settle(o.ours, o.theirs)
	// The commit's changes undone on the branch: three-way, with the state
	// after the commit as the base and the state before it as "theirs".
	plan, err := merge.Three(ctx, r, diff.Point{TL: it.TL, LSN: it.To}, ours, diff.Point{TL: it.TL, LSN: it.From - 1}, res)
	if err != nil {
		return err
	}
	conflicts, err := conflictsJSON(plan.Conflicts, o.canonical)
	if err != nil {
		return err
	}
	what, err := commitName(ctx, r, project, b, head.LSN, it)
	if err != nil {
		return err
	}
	report := map[string]any{"commit": map[string]any{"timeline": it.TL, "lsn_from": it.From, "lsn_to": it.To},
		"branch": name, "changed": len(plan.Changes), "conflicts": conflicts, "head": head.LSN,
		"lsn_from": nil, "lsn_to": nil}
	if plan.UpToDate {
		if f.JSON {
			return f.IO.PrintJSON(report)
		}
		fmt.Fprintf(f.IO.Out, "Nothing to revert: the commit at LSN %s changed no document or index\n", what)
		return nil
	}
	if len(plan.Conflicts) > 0 && res == merge.Refuse {
		if f.JSON {
			if err := f.IO.PrintJSON(report); err != nil {
				return err
			}
		} else {
			printConflicts(f, conflicts)
		}
		return withHint(&ConflictError{Source: o.ref, Target: name, N: len(conflicts), Revert: true},
			"settle them all with --ours (keep the branch's values) or --theirs (take the values from before the commit)")
	}
	puts := make([]workdb.Put, len(plan.Changes))
	for i, c := range plan.Changes {
		puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc}
	}
	w, ci, err := uncommitted(ctx, f, r, b)
	if err != nil {
		return err
	}
	if ci != nil {
		return uncommittedError(f, "cannot revert on "+name, name, ci, "`argon restore`")
	}
	unique := func(dke *workdb.DuplicateKeyError) error {
		return reportUnique(f, report, dke, puts, &ConflictError{Source: o.ref, Target: name, N: 1, Revert: true},
			"change or delete the document that holds the unique key, and revert again")
	}
	if len(puts) == 0 {
		if f.JSON {
			return f.IO.PrintJSON(report)
		}
		if len(plan.Conflicts) > 0 {
			fmt.Fprintf(f.IO.Out, "Nothing to revert: every change of the commit at LSN %s left to undo was changed again since, and --ours kept the branch's values (%s settled)\n",
				what, plural(int64(len(plan.Conflicts)), "conflict"))
			return nil
		}
		fmt.Fprintf(f.IO.Out, "Nothing to revert: %s already holds what the commit at LSN %s changed as it was before\n", name, what)
		return nil
	}
	if o.dryRun {
		dke, err := w.CheckUnique(ctx, puts)
		if err != nil {
			return err
		}
		if dke != nil {
			return unique(dke)
		}
		if f.JSON {
			return f.IO.PrintJSON(report)
		}
		printConflicts(f, conflicts)
		changes := fmt.Sprintf("%d documents or indexes to change", len(puts))
		if len(puts) == 1 {
			changes = "1 document or index to change"
		}
		fmt.Fprintf(f.IO.Out, "would revert LSN %s on %s: %s, %s settled\n", what, name, changes, plural(int64(len(plan.Conflicts)), "conflict"))
		return nil
	}
	msg := o.message
	if msg == "" {
		msg = "Revert \"" + firstLine(it.Message) + "\"\n\nThis reverts LSN " + what + "."
	}
	cm, newHead, err := w.ApplyPuts(ctx, puts, head.LSN, wal.CommitInfo{Message: msg, Author: f.Author})
	if err != nil {
		var dke *workdb.DuplicateKeyError
		var moved *wal.MovedOnError
		switch {
		case errors.As(err, &dke):
			// Nothing is written: the failed write was repaired from the log.
			return unique(dke)
		case errors.As(err, &moved):
			moved.Op = "revert"
		}
		return uncommittedHint(err, o.branch, name)
	}
	report["head"] = newHead
	if cm != nil {
		report["lsn_from"], report["lsn_to"] = cm.From, cm.To
	}
	if f.JSON {
		return f.IO.PrintJSON(report)
	}
	fmt.Fprintf(f.IO.Out, "Reverted LSN %s on %s: LSN %d..%d, head %d\n", what, name, cm.From, cm.To, newHead)
	return nil
}

// commitName names commit it for branch b (head at LSN head): by its LSNs
// when it is b's own commit there, else with the branch whose timeline
// holds it (a commit of another branch, or one b left by a reset, whose
// LSNs b may have reused), or its timeline (TIMELINE@LSN is a ref).
func commitName(ctx context.Context, r *wal.Repo, project string, b *wal.Branch, head int64, it *wal.LogItem) (string, error) {
	what := lsnRange(it.From, it.To)
	if it.To <= head {
		own, err := commitAt(ctx, r, diff.Point{TL: b.Timeline, LSN: it.To}, what)
		if err == nil && own.TL == it.TL && own.N == it.N {
			return what, nil
		}
	}
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return "", err
	}
	for _, x := range bs {
		if x.Timeline == it.TL {
			return what + " of " + x.Name, nil
		}
	}
	return what + " of timeline " + it.TL, nil
}

package cmd

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/wal"
)

func newShowCmd(f *Factory) *cobra.Command {
	o := &diffOptions{f: f}
	cmd := &cobra.Command{
		Use:   "show [REF]",
		Short: "Show one commit: its message and what it changed",
		Long: `Show the commit that holds REF's LSN (default: the current branch's
last commit): its LSNs, author, date and message, then what it changed,
as argon diff prints it (documents added, removed and modified, with
field-level before and after; index changes).`,
		Example: `  argon show
  argon show main@12
  argon show feature~1 --json`,
		Args: rangeArgs(0, 1, "at most one ref"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShow(cmd.Context(), o, args)
		},
	}
	cmd.Flags().StringVar(&o.branch, "branch", "", "branch to read (default: the current branch)")
	cmd.Flags().BoolVar(&o.stat, "stat", false, "counts per collection instead of the changes")
	cmd.Flags().BoolVar(&o.nameOnly, "name-only", false, "only the collections and _ids")
	cmd.Flags().BoolVar(&o.canonical, "canonical", false, "print values as canonical Extended JSON (exact types)")
	return cmd
}

func runShow(ctx context.Context, o *diffOptions, args []string) error {
	f := o.f
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	cur, spec, err := f.refArg(o.branch, args)
	if err != nil {
		return err
	}
	at, err := f.resolveRef(ctx, r, project, cur, spec)
	if err != nil {
		return err
	}
	it, err := commitAt(ctx, r, at, spec)
	if err != nil {
		return err
	}
	changes, _, err := diff.Between(ctx, r, diff.Point{TL: it.TL, LSN: it.From - 1}, diff.Point{TL: it.TL, LSN: it.To}, "")
	if err != nil {
		return err
	}
	names, err := r.BranchNames(ctx, project)
	if err != nil {
		return err
	}
	name := names[it.TL]
	if name == "" {
		name = "timeline:" + it.TL
	}
	f.page()
	if f.JSON {
		// --stat as diff --stat --json gives it (review39: show printed
		// the whole diff).
		var cs any = statOf(changes)
		if !o.stat {
			var err error
			if cs, err = diffJSONs(o, changes); err != nil {
				return err
			}
		}
		v := map[string]any{"lsn_from": it.From, "lsn_to": it.To, "branch": name, "time": it.Time,
			"author": it.Author, "message": it.Message, "diff": cs}
		if it.MergeOf != "" {
			v["merge_of"] = it.MergeOf // as in log --json
		}
		return f.IO.PrintJSON(v)
	}
	printCommitHeader(f, lsnRange(it.From, it.To), name, it.MergeOf, it.Author, it.Time, it.Message, names)
	fmt.Fprintln(f.IO.Out)
	return printDiff(o, changes)
}

// refArg returns the branch --branch names (default: the current one) and
// the ref an optional REF argument names: the branch itself when there is
// none, and a bare LSN on that branch, as find --at takes it.
func (f *Factory) refArg(branchFlag string, args []string) (cur, spec string, err error) {
	cur, err = f.branchOrCurrent(branchFlag)
	if err != nil {
		return "", "", err
	}
	spec = cur
	if len(args) == 1 {
		if args[0] == "" {
			return "", "", usageErrorf("the ref is empty: name a branch, a tag, BRANCH@LSN, BRANCH~N ... (argon help refs)")
		}
		spec = args[0]
		if _, err := strconv.ParseInt(spec, 10, 64); err == nil {
			spec = cur + "@" + spec
		}
	}
	return cur, spec, nil
}

// commitAt returns the whole commit that holds point at's LSN (the
// newest commit at or below it), for show and revert; spec names the
// point in the error when there is none.
func commitAt(ctx context.Context, r *wal.Repo, at diff.Point, spec string) (*wal.LogItem, error) {
	var it *wal.LogItem
	items, err := r.LogFrom(ctx, at.TL, at.Slot, nil, at.LSN, 1) // at.Slot nil: from the head
	if err != nil {
		return nil, err
	}
	if len(items) > 0 {
		it = &items[0]
	}
	if it == nil {
		return nil, &notFoundError{msg: fmt.Sprintf("%s has no commit: nothing was written there yet", spec)}
	}
	// The whole commit, also when the LSN is inside its range.
	if s, err := r.ReadSlot(ctx, it.TL, it.N); err == nil && s != nil && s.Kind == wal.SlotCommit {
		it.To = s.LSN
	}
	return it, nil
}

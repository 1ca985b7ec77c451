package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

func newFsckCmd(f *Factory) *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Check the log and its caches for consistency",
		Long: `Check every invariant of the project's log: each timeline's head slots are
dense and form one chain, every committed LSN has exactly one entry with
the committing writer's token, ancestry is complete and acyclic; every
branch's working-database marker names a slot on the branch's committed
chain; every cached time-travel view equals a fold of the log.

Each violation is printed as one line and the exit code is 1. Notes
(a write in progress, applications' uncommitted changes, entries left by
writers that did not commit) do not fail the check.

With --repair, fixes what the log allows: writers that stopped are fenced
out and what they touched is repaired from the log, working databases off
the chain are rebuilt, divergent views dropped, and the entries of
writers that can never commit deleted (those with an entry at or below
the head, or on a closed timeline: a killed import's, once the branch
has a commit after it). Applications' uncommitted changes are never
discarded (argon restore does that).`,
		Example: `  argon fsck
  argon fsck --repair
  argon fsck --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFsck(cmd.Context(), f, repair)
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "fix what the log allows")
	return cmd
}

func runFsck(ctx context.Context, f *Factory, repair bool) error {
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	p, err := f.Protocol()
	if err != nil {
		return err
	}
	open := func(b *wal.Branch) *workdb.Branch {
		w, _ := f.workingDB(ctx, r, b) // the store and protocol are open already
		return w
	}
	rep, err := p.Fsck(ctx, r, project, open, repair)
	if err != nil {
		return err
	}
	fail := len(rep.Problems) > 0
	if f.JSON {
		if err := f.IO.PrintJSON(rep); err != nil {
			return err
		}
	} else {
		out := f.IO.Out
		for _, p := range rep.Problems {
			if p.Timeline != "" {
				fmt.Fprintf(out, "error: timeline %s: %s\n", p.Timeline, p.What)
			} else {
				fmt.Fprintf(out, "error: %s\n", p.What)
			}
		}
		for _, n := range rep.Notes {
			fmt.Fprintf(out, "note: %s\n", n)
		}
		for _, n := range rep.Repaired {
			fmt.Fprintf(out, "repaired: %s\n", n)
		}
		fmt.Fprintf(out, "checked %d timelines, %d slots: %d problems\n", rep.Timelines, rep.Slots, len(rep.Problems))
	}
	if fail {
		return &exitError{code: ExitError}
	}
	return nil
}

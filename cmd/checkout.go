package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type checkoutOptions struct {
	f      *Factory
	name   string
	create bool
	start  string
	force  bool
}

func newCheckoutCmd(f *Factory) *cobra.Command {
	o := &checkoutOptions{f: f}
	cmd := &cobra.Command{
		Use:     "checkout NAME | checkout -b NAME [START]",
		Aliases: []string{"switch"},
		Short:   "Switch the current branch",
		Long: `Make NAME the workspace's current branch, and make sure its working
database exists and holds the branch's head, so that applications can
connect to it. With -b, create the branch first (from START, BRANCH or
BRANCH@LSN, default the current branch's head). NAME may be HEAD, the
current branch.

If applications changed the current branch's working database and those
changes are not committed, checkout refuses; --force discards them first.`,
		Example: `  argon checkout main
  argon checkout -b feature-x
  argon checkout -b audit main@120`,
		Args: rangeArgs(1, 2, "a branch name, and with -b an optional start point"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if len(args) == 2 {
				if !o.create {
					return usageErrorf("a start point needs -b: argon checkout -b %s %s", args[0], args[1])
				}
				o.start = args[1]
			}
			return runCheckout(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&o.create, "b", "b", false, "create the branch, then switch to it")
	cmd.Flags().BoolVarP(&o.force, "force", "f", false, "discard uncommitted changes in the current branch's working database")
	return cmd
}

func runCheckout(ctx context.Context, o *checkoutOptions) error {
	f := o.f
	if f.Workspace == nil {
		return withHint(errNoWorkspace, "without a workspace, choose the branch of each command with --branch or ARGON_BRANCH")
	}
	if !f.atWorkspace() {
		// The workspace's current branch is one of its own project's.
		return withHint(usageErrorf("checkout switches the workspace's own project (%s), and --project or --db name another", f.wsConfig.Project),
			"choose the branch of each command of another project with --branch")
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	cur, err := f.CurrentBranch()
	if err != nil {
		return err
	}
	if !o.create && o.name == "HEAD" {
		// HEAD names the current branch, as in refs (no branch takes the
		// name): git's checkout HEAD, which stays where it is.
		o.name = cur
	}
	// A target that cannot be switched to (or, with -b, created) is said
	// first, before the current branch's changes are looked at or, with
	// --force, discarded.
	if o.create {
		if err := f.checkNewBranch(ctx, r, project, o.name, o.start); err != nil {
			return err
		}
	} else if _, err := r.Branch(ctx, project, o.name); err != nil {
		if _, terr := r.Tag(ctx, project, o.name); terr == nil && errors.As(err, new(*wal.NotFoundError)) {
			// A tag names one state; a branch moves (git's detached HEAD
			// has no counterpart here).
			return withHint(err, fmt.Sprintf("%s is a tag: make a branch of it with `argon checkout -b NAME %s`", o.name, o.name))
		}
		if strings.ContainsAny(o.name, "~@") && errors.As(err, new(*wal.NotFoundError)) {
			// A past state is not a branch to switch to.
			return withHint(err, fmt.Sprintf("to work from %s, make a branch of it with `argon checkout -b NAME %s`; to move the branch back, `argon reset %s`", o.name, o.name, o.name))
		}
		return suggestBranch(ctx, r, project, err)
	}
	// The current branch again keeps its uncommitted changes (git's
	// "Already on"), unless --force discards them.
	same := !o.create && o.name == cur
	if !same || o.force {
		if err := leaveCurrent(ctx, f, r, project, o.force); err != nil {
			return err
		}
	}
	if o.create {
		if _, err := runBranchCreate(ctx, &branchCreateOptions{f: f, name: o.name, from: o.start}); err != nil {
			return err
		}
	}
	b, err := r.Branch(ctx, project, o.name)
	if err != nil {
		return suggestBranch(ctx, r, project, err)
	}
	w, err := f.workingDB(ctx, r, b)
	if err != nil {
		return err
	}
	lsn, err := w.Checkout(ctx)
	if err != nil {
		return err
	}
	if err := f.Workspace.SetBranch(o.name); err != nil {
		return err
	}
	if f.JSON {
		return f.IO.PrintJSON(map[string]any{"branch": o.name, "head": lsn, "database": w.DB.Name(), "created": o.create})
	}
	switch {
	case o.create:
		fmt.Fprintf(f.IO.Out, "Switched to a new branch %s (head LSN %d)\n", o.name, lsn)
	case same:
		fmt.Fprintf(f.IO.Out, "Already on branch %s (head LSN %d)\n", o.name, lsn)
	default:
		fmt.Fprintf(f.IO.Out, "Switched to branch %s (head LSN %d)\n", o.name, lsn)
	}
	fmt.Fprintf(f.IO.Out, "Working database: %s\n", w.DB.Name())
	return nil
}

// uncommitted returns branch b's working database and a summary of the
// changes applications made there and did not commit (nil when none).
func uncommitted(ctx context.Context, f *Factory, r *wal.Repo, b *wal.Branch) (*workdb.Branch, *changesInfo, error) {
	w, err := f.workingDB(ctx, r, b)
	if err != nil {
		return nil, nil, err
	}
	changes, err := workingChanges(ctx, w)
	if err != nil || len(changes) == 0 {
		return w, nil, err
	}
	ci, err := summarize(changes)
	return w, ci, err
}

// checkedHold refuses, as refuseUncommitted, when branch b's working
// database has uncommitted changes, and otherwise returns with
// applications' writes to it held at argon serve (release with the
// returned function) from a moment it still had none: the caller drops
// it, and a write acknowledged in between would go with it (review31).
// The check itself runs without the hold: it may wait for a writer on
// the branch, which waits for any hold of the database before it writes
// (holding first deadlocked until the busy timeout: review33). So it
// counts as still true once the hold is in place only when the
// database's write token did not move from before the check to then;
// otherwise it runs again, a few times at most. Without argon serve in
// front of the engine, nothing is held (no one else can write, or argon
// cannot stop them) and the check runs once.
func checkedHold(ctx context.Context, f *Factory, r *wal.Repo, b *wal.Branch, action string) (func(), error) {
	s, err := f.Store(ctx)
	if err != nil {
		return nil, err
	}
	files := s.DBFiles()
	if files == nil || !s.Served {
		return func() {}, refuseUncommitted(ctx, f, r, b, action, false)
	}
	db := r.WorkingDatabase(b)
	backoff := 50 * time.Millisecond
	for try := 1; ; try++ {
		before, berr := files.Fingerprint(db)
		if err := refuseUncommitted(ctx, f, r, b, action, false); err != nil {
			return nil, err
		}
		release, err := files.HoldWrites(ctx, db, r.LeaseTTL)
		if err != nil {
			return nil, fmt.Errorf("holding the writes of %s at argon serve: %w", db, err)
		}
		after, aerr := files.Fingerprint(db)
		if berr == nil && aerr == nil && before != "" && before == after {
			return release, nil
		}
		release()
		if try == 5 {
			return nil, &busyError{msg: fmt.Sprintf("cannot %s branch %s: its working database kept changing while it was checked (applications writing through argon serve); try again", action, b.Name)}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// refuseUncommitted fails when branch b's working database holds changes
// applications made and did not commit: action (delete, rename) would drop
// them. With force it goes ahead.
func refuseUncommitted(ctx context.Context, f *Factory, r *wal.Repo, b *wal.Branch, action string, force bool) error {
	if force {
		return nil
	}
	_, ci, err := uncommitted(ctx, f, r, b)
	if err != nil || ci == nil {
		return err
	}
	return withHint(fmt.Errorf("cannot %s branch %s: it has uncommitted changes in its working database (%s)", action, b.Name, ci.line()),
		"record them with `argon commit --branch "+b.Name+" -m MESSAGE`, or discard them with --force")
}

// leaveCurrent checks that the current branch's working database has no
// uncommitted changes, or discards them with force.
func leaveCurrent(ctx context.Context, f *Factory, r *wal.Repo, project string, force bool) error {
	cur, err := f.CurrentBranch()
	if err != nil {
		return err
	}
	b, err := r.Branch(ctx, project, cur)
	if err != nil {
		// The current branch was deleted or renamed elsewhere: nothing to keep.
		return nil
	}
	w, ci, err := uncommitted(ctx, f, r, b)
	if err != nil || ci == nil {
		return err
	}
	if !force {
		return withHint(fmt.Errorf("branch %s has uncommitted changes in its working database (%s)", cur, ci.line()),
			"record them with `argon commit -m MESSAGE`, or discard them with `argon checkout --force` or `argon restore`")
	}
	if _, err := w.Restore(ctx); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "argon: notice: discarded %s on %s\n", ci.line(), cur)
	return nil
}

package cmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

func newBranchCmd(f *Factory) *cobra.Command {
	var gitDelete, gitForceDelete, gitMove bool
	cmd := &cobra.Command{
		Use:   "branch",
		Short: "List, create, delete and rename branches",
		Long: `With no subcommand, list the project's branches with their head LSN, the
LSN they were forked at (base), and the branch they were forked from. The
current branch is marked with '*'.

Piped, each branch is one tab-separated line: current marker ('*' or empty),
name, head, base, parent ('-' for none).`,
		Example: `  argon branch
  argon branch --json
  argon branch create feature-x
  argon branch create hotfix --from main@42
  argon branch rename feature-x feature-y
  argon branch delete feature-y --yes
  argon branch -m feature-x feature-y   # git's spellings: -m, -d, -D`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			switch {
			case gitDelete && gitForceDelete, (gitDelete || gitForceDelete) && gitMove:
				return usageErrorf("-d, -D and -m cannot be used together")
			case gitDelete || gitForceDelete:
				if len(args) != 1 {
					return usageErrorf("argon branch -d takes one branch name, got %d argument(s)", len(args))
				}
				// Naming the branch on the command line is the confirmation,
				// as with git branch -d.
				return runBranchDelete(ctx, &branchDeleteOptions{f: f, name: args[0], yes: true, force: gitForceDelete})
			case gitMove:
				switch len(args) {
				case 1:
					cur, err := f.CurrentBranch()
					if err != nil {
						return err
					}
					return runBranchRename(ctx, f, cur, args[0])
				case 2:
					return runBranchRename(ctx, f, args[0], args[1])
				}
				return usageErrorf("argon branch -m takes [OLD] NEW, got %d argument(s)", len(args))
			case len(args) > 0:
				if err := unknownSubcommand(cmd, args[0]); err != nil {
					return err
				}
				return usageErrorf("argon branch takes no arguments, got %d argument(s) (did you mean `argon branch create NAME`?)", len(args))
			}
			return runBranchList(ctx, f)
		},
	}
	cmd.Flags().BoolVarP(&gitDelete, "delete", "d", false, "delete the named branch (as argon branch delete NAME --yes)")
	cmd.Flags().BoolVarP(&gitForceDelete, "force-delete", "D", false, "delete it even with uncommitted changes in its working database (as delete --yes --force)")
	cmd.Flags().BoolVarP(&gitMove, "move", "m", false, "rename: -m [OLD] NEW (as argon branch rename)")
	cmd.AddCommand(newBranchListCmd(f), newBranchCreateCmd(f), newBranchDeleteCmd(f), newBranchRenameCmd(f))
	return cmd
}

// branchInfo is the JSON shape of a branch.
type branchInfo struct {
	Name     string `json:"branch"`
	Current  bool   `json:"current"`
	Head     int64  `json:"head"`
	Base     int64  `json:"base"`
	Parent   string `json:"parent"`
	Timeline string `json:"-"`
}

func describeBranch(ctx context.Context, r *wal.Repo, b *wal.Branch, names map[string]string, current string) (branchInfo, error) {
	tl, err := r.Timeline(ctx, b.Timeline)
	if err != nil {
		return branchInfo{}, err
	}
	head, err := r.HeadOf(ctx, tl)
	if err != nil {
		return branchInfo{}, err
	}
	return describeOn(b, tl, head, names, current), nil
}

// describeOn is describeBranch for a timeline and head already read.
func describeOn(b *wal.Branch, tl *wal.Timeline, head wal.Head, names map[string]string, current string) branchInfo {
	parent := ""
	if tl.Parent != "" {
		parent = names[tl.Parent]
		switch parent {
		case "":
			parent = "timeline:" + tl.Parent
		case b.Name:
			// A branch reset to one of its own past states forks from
			// the timeline it left.
			parent += " (before reset)"
		}
	}
	return branchInfo{Name: b.Name, Current: b.Name == current, Head: head.LSN, Base: tl.Base, Parent: parent, Timeline: tl.ID}
}

func newBranchListCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List branches (the same as argon branch)",
		Example: `  argon branch list --json`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBranchList(cmd.Context(), f)
		},
	}
}

func runBranchList(ctx context.Context, f *Factory) error {
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	current, err := f.CurrentBranch()
	if err != nil {
		return err
	}
	bs, err := r.Branches(ctx, project)
	if err != nil {
		return err
	}
	// One scan of the branches, and the heads with HeadsOf: one bounded
	// scan of the slots, or point reads from each timeline's hint (see
	// its cost there). From headScanMin branches on (where HeadsOf tries
	// the scan), the timelines come from the branches' copies of their
	// fork points when every branch has one, and HeadsOf reads their
	// hints only if it needs them; else from one more scan.
	tls := make([]*wal.Timeline, len(bs))
	parents := make([]string, 0, len(bs))
	copies := r.HeadsByScan(len(bs))
	for i := 0; copies && i < len(bs); i++ {
		tls[i] = bs[i].ForkTimeline()
		copies = tls[i] != nil
	}
	if !copies {
		all, err := r.Timelines(ctx, project)
		if err != nil {
			return err
		}
		byID := make(map[string]*wal.Timeline, len(all))
		for i := range all {
			byID[all[i].ID] = &all[i]
		}
		for i := range bs {
			if tls[i] = byID[bs[i].Timeline]; tls[i] == nil {
				return &wal.NotFoundError{Kind: "timeline", Name: bs[i].Timeline}
			}
		}
	}
	for i := range bs {
		parents = append(parents, tls[i].Parent)
	}
	names, err := r.NamesOf(ctx, project, bs, parents)
	if err != nil {
		return err
	}
	heads, err := r.HeadsOf(ctx, tls)
	if err != nil {
		return err
	}
	infos := make([]branchInfo, len(bs))
	for i := range bs {
		infos[i] = describeOn(&bs[i], tls[i], heads[tls[i].ID], names, current)
	}
	if f.JSON {
		return f.IO.PrintJSON(infos)
	}
	st := f.IO.Styles()
	t := f.IO.NewTable("", "BRANCH", "HEAD", "BASE", "PARENT")
	for _, b := range infos {
		mark, parent := "", b.Parent
		if b.Current {
			mark = "*"
		}
		if parent == "" {
			parent = "-"
		}
		cells := []string{mark, b.Name, strconv.FormatInt(b.Head, 10), strconv.FormatInt(b.Base, 10), parent}
		if b.Current {
			t.StyledRow(cells, []*lipgloss.Style{&st.Current, &st.Current})
		} else {
			t.Row(cells...)
		}
	}
	return t.Render()
}

type branchCreateOptions struct {
	f    *Factory
	name string
	from string
}

func newBranchCreateCmd(f *Factory) *cobra.Command {
	o := &branchCreateOptions{f: f}
	cmd := &cobra.Command{
		Use:   "create NAME [--from BRANCH[@LSN]]",
		Short: "Create a branch in constant time",
		Long: `Create branch NAME pointing at the head of the current branch, or at
--from BRANCH or BRANCH@LSN. No data is copied: a branch is a new timeline
forked from its parent at one LSN, whatever the size of the data. Its own
entries are numbered from that LSN on.

Branch names follow git's rules (no spaces, no '..', no leading '-', ...)
and may not contain '@'.`,
		Example: `  argon branch create feature-x
  argon branch create audit --from main@120
  argon branch create before --from 42
  argon branch create yesterday --from main@1d
  argon branch create before-import --from main@2026-11-25T10:00:00Z`,
		Args: exactArgs(1, "one branch name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			info, err := runBranchCreate(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.JSON {
				return f.IO.PrintJSON(info)
			}
			fmt.Fprintf(f.IO.Out, "Created branch %s from %s at LSN %d\n", info.Name, info.Parent, info.Base)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.from, "from", "", "start point: a ref (BRANCH, BRANCH@LSN, BRANCH@TIME, a tag, ...), or an LSN or time on the current branch (default: the current branch's head)")
	return cmd
}

// startPoint resolves --from of a new branch: a ref, or a bare LSN or
// time on the current branch (as --at takes it) when no branch or tag
// has that name.
func (f *Factory) startPoint(ctx context.Context, r *wal.Repo, project, from string) (*point, error) {
	cur, err := f.CurrentBranch()
	if err != nil {
		return nil, err
	}
	if !strings.ContainsAny(from, "@~") && isWhen(from) {
		_, berr := r.Branch(ctx, project, from)
		_, terr := r.Tag(ctx, project, from)
		if errors.As(berr, new(*wal.NotFoundError)) && errors.As(terr, new(*wal.NotFoundError)) {
			from = cur + "@" + from
		}
	}
	return f.resolvePoint(ctx, r, project, cur, from)
}

// checkNewBranch says, before anything is changed, why branch name could
// not be created from start ("" for the current branch): an invalid
// name, one a branch or a tag has, a start point that does not resolve.
func (f *Factory) checkNewBranch(ctx context.Context, r *wal.Repo, project, name, start string) error {
	if err := wal.ValidateBranch("branch", name); err != nil {
		return err
	}
	if _, err := r.Branch(ctx, project, name); err == nil {
		return &wal.ExistsError{Kind: "branch", Name: name}
	} else if !errors.As(err, new(*wal.NotFoundError)) {
		return err
	}
	if err := r.NotATag(ctx, project, name); err != nil {
		return err
	}
	if start == "" {
		return nil
	}
	_, err := f.startPoint(ctx, r, project, start)
	return err
}

func runBranchCreate(ctx context.Context, o *branchCreateOptions) (*branchInfo, error) {
	f := o.f
	if err := wal.ValidateBranch("branch", o.name); err != nil {
		return nil, err
	}
	from := o.from
	if from == "" {
		cur, err := f.CurrentBranch()
		if err != nil {
			return nil, err
		}
		from = cur
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return nil, err
	}
	p, err := f.startPoint(ctx, r, project, from)
	if err != nil {
		return nil, err
	}
	src, fromName := p.Branch, p.Branch.Name
	var b *wal.Branch
	if p.SlotTL != "" {
		// BRANCH~N: the history below the last commit walked back over,
		// which the LSN alone does not name past a commit that changed
		// nothing.
		b, err = r.CreateBranchAtSlot(ctx, project, o.name, src, p.SlotTL, p.LSN, p.SlotN)
	} else {
		b, err = r.CreateBranchFrom(ctx, project, o.name, src, p.LSN, p.HeadSlot)
	}
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	tl, err := r.Timeline(ctx, b.Timeline) // the Repo keeps the one it created
	if err != nil {
		return nil, err
	}
	names[tl.Parent] = fromName
	if tl.Parent != src.Timeline {
		if all, err := r.BranchNames(ctx, project); err == nil {
			names = all
		}
	}
	// A new timeline's head is its base: nothing to read.
	info := describeOn(b, tl, wal.Head{LSN: tl.Base}, names, "")
	return &info, nil
}

type branchDeleteOptions struct {
	f     *Factory
	name  string
	yes   bool
	force bool
}

func newBranchDeleteCmd(f *Factory) *cobra.Command {
	o := &branchDeleteOptions{f: f}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a branch name",
		Long: `Delete branch NAME. Its history stays in the log and its last position is
recorded in the reflog (argon reflog NAME), so it can be found again.
The current branch cannot be deleted. Asks for confirmation on a terminal;
needs --yes otherwise.`,
		Example: `  argon branch delete feature-x --yes`,
		Args:    exactArgs(1, "one branch name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			return runBranchDelete(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVarP(&o.force, "force", "f", false, "delete even if its working database has uncommitted changes (they are lost)")
	return cmd
}

func runBranchDelete(ctx context.Context, o *branchDeleteOptions) error {
	f := o.f
	cur, err := f.CurrentBranch()
	if err != nil {
		return err
	}
	if o.name == cur {
		return withHint(fmt.Errorf("cannot delete branch %q: it is the current branch", o.name),
			"switch to another branch first: argon checkout OTHER")
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	b, err := r.Branch(ctx, project, o.name)
	if err != nil {
		return suggestBranch(ctx, r, project, err)
	}
	if !o.yes {
		// Asked first, without holding anyone's writes while a person
		// answers: a branch with uncommitted changes is refused before
		// the question.
		if err := refuseUncommitted(ctx, f, r, b, "delete", o.force); err != nil {
			return err
		}
		if !f.IO.CanPrompt() {
			return usageErrorf("refusing to delete branch %q without --yes (not on a terminal)", o.name)
		}
		head, err := r.Head(ctx, b.Timeline)
		if err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "Delete branch %s (head LSN %d)? [y/N] ", o.name, head.LSN)
		ans := f.answer(ctx)
		if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
			return fmt.Errorf("branch %q not deleted", o.name)
		}
	}
	if !o.force {
		release, err := checkedHold(ctx, f, r, b, "delete")
		if err != nil {
			return err
		}
		defer release()
	}
	// The binding read and checked above, not whatever holds the name
	// by now (a rename, or a delete and a create, in between: review33).
	deleted, lsn, err := r.DeleteBranchOf(ctx, b)
	if err != nil {
		return err
	}
	// The working database is a cache of the log: it goes with the name,
	// and so does its reservation.
	_ = workdb.Open(r, b).Drop(ctx)
	r.ReleaseWorkingDatabase(ctx, b)
	if f.JSON {
		return f.IO.PrintJSON(map[string]any{"branch": o.name, "head": lsn, "timeline": deleted.Timeline, "deleted": true})
	}
	fmt.Fprintf(f.IO.Out, "Deleted branch %s (was at LSN %d)\n", o.name, lsn)
	return nil
}

func newBranchRenameCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rename OLD NEW",
		Short:   "Rename a branch",
		Example: `  argon branch rename feature-x feature-y`,
		Args:    exactArgs(2, "the old and the new name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBranchRename(cmd.Context(), f, args[0], args[1])
		},
	}
	return cmd
}

func runBranchRename(ctx context.Context, f *Factory, old, name string) error {
	r, project, err := f.project(ctx)
	if err != nil {
		return err
	}
	if err := wal.ValidateBranch("branch", name); err != nil {
		return err
	}
	// The working database stays with the branch (and with it any
	// changes applications have not committed).
	nb, err := r.RenameBranch(ctx, project, old, name)
	if err != nil {
		return err
	}
	if cur, _ := f.CurrentBranch(); cur == old && f.atWorkspace() {
		if err := f.Workspace.SetBranch(name); err != nil {
			return err
		}
	}
	if f.JSON {
		return f.IO.PrintJSON(map[string]any{"branch": nb.Name, "old_branch": old})
	}
	fmt.Fprintf(f.IO.Out, "Renamed branch %s to %s\n", old, nb.Name)
	return nil
}

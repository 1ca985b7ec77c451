package cmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
)

func newTagCmd(f *Factory) *cobra.Command {
	var (
		branch, msg  string
		del, listing bool
	)
	cmd := &cobra.Command{
		Use:   "tag [NAME [REF]]",
		Short: "Name a committed state for good, list tags, or delete one",
		Long: `With NAME, give the committed state REF (default: the current branch's head)
a name that never moves: NAME and NAME~N are refs from then on (argon help
refs), in find/count --at, diff, merge, branch create --from and export.
A tag copies nothing and stays valid when its branch is written, renamed or
deleted. A tag may not take a branch's name (a branch of the name would
hide it).

Without NAME (or with --list), list the tags. With -d, delete the tag NAME;
the state it named stays in the log.`,
		Example: `  argon tag v1.0
  argon tag before-migration main@1200 -m "state before the 2026-11 migration"
  argon tag
  argon find users --at v1.0
  argon diff v1.0 main
  argon tag -d v1.0`,
		Args: rangeArgs(0, 2, "a tag name and an optional ref"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			switch {
			case del && listing:
				return usageErrorf("-d and --list cannot be used together")
			case del && len(args) != 1:
				return usageErrorf("-d takes exactly one tag name")
			case listing && len(args) > 0:
				return usageErrorf("--list takes no arguments")
			case (del || len(args) == 0) && msg != "":
				return usageErrorf("-m is for making a tag")
			case (del || len(args) == 0) && branch != "":
				return usageErrorf("--branch is for making a tag")
			}
			r, project, err := f.project(ctx)
			if err != nil {
				return err
			}
			if del {
				t, err := r.DeleteTag(ctx, project, args[0])
				if err != nil {
					return err
				}
				if f.JSON {
					return f.IO.PrintJSON(map[string]any{"tag": t, "deleted": true})
				}
				fmt.Fprintf(f.IO.Out, "Deleted tag %s (was %s@%d)\n", t.Name, t.Branch, t.LSN)
				return nil
			}
			if len(args) == 0 {
				return listTags(f, cmd, r, project)
			}
			cur, spec, err := f.refArg(branch, args[1:])
			if err != nil {
				return err
			}
			p, err := f.resolvePoint(ctx, r, project, cur, spec)
			if err != nil {
				return err
			}
			name := p.Branch.Name
			if p.Tag != nil {
				name = p.Tag.Branch
			}
			t := &wal.Tag{Project: project, Name: args[0], TL: p.Branch.Timeline, LSN: p.LSN, Branch: name,
				Message: msg, Author: f.Author, SlotTL: p.SlotTL, SlotN: p.SlotN}
			if err := r.CreateTag(ctx, t); err != nil {
				return err
			}
			if f.JSON {
				return f.IO.PrintJSON(map[string]any{"tag": t})
			}
			fmt.Fprintf(f.IO.Out, "Tagged %s@%d as %s\n", name, t.LSN, t.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&msg, "message", "m", "", "a note kept with the tag")
	cmd.Flags().StringVar(&branch, "branch", "", "branch a bare LSN is on (default: the current branch)")
	cmd.Flags().BoolVarP(&del, "delete", "d", false, "delete the tag NAME")
	cmd.Flags().BoolVarP(&listing, "list", "l", false, "list the tags (the default without NAME)")
	return cmd
}

func listTags(f *Factory, cmd *cobra.Command, r *wal.Repo, project string) error {
	ctx := cmd.Context()
	tags, err := r.Tags(ctx, project)
	if err != nil {
		return err
	}
	if f.JSON {
		return f.IO.PrintJSON(tags)
	}
	if len(tags) == 0 {
		if f.IO.IsStdoutTTY() {
			fmt.Fprintln(f.IO.ErrOut, "no tags")
		}
		return nil
	}
	names, err := r.BranchNames(ctx, project)
	if err != nil {
		return err
	}
	t := f.IO.NewTable("TAG", "STATE", "TIME", "MESSAGE")
	for _, tg := range tags {
		// The state as a ref that works now: the branch's current name,
		// or the timeline once the branch is gone.
		state := tg.TL + "@" + strconv.FormatInt(tg.LSN, 10)
		if n, ok := names[tg.TL]; ok && !strings.HasSuffix(n, " (deleted)") {
			state = n + "@" + strconv.FormatInt(tg.LSN, 10)
		}
		t.Row(tg.Name, state, f.formatTime(tg.Created), tg.Message)
	}
	return t.Render()
}

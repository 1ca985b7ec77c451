package cmd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"

	"github.com/argon-db/argon/internal/wal"
)

// closest returns the candidate nearest to name, as git's "did you mean"
// does: within a third of the name's length in edits (at least 2, so
// that a swap of two letters is found), or a candidate name is a prefix
// of; "" when none is close.
func closest(name string, candidates []string) string {
	best, bestD := "", max(len(name)/3, 2)
	sort.Strings(candidates)
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := levenshtein.ComputeDistance(name, c); d <= bestD && (best == "" || d < levenshtein.ComputeDistance(name, best)) {
			best = c
		}
	}
	if best == "" {
		for _, c := range candidates {
			if len(name) >= 3 && strings.HasPrefix(c, name) {
				return c
			}
		}
	}
	return best
}

// suggestBranch adds "did you mean" to a branch-not-found error when the
// project has a branch of a close name.
func suggestBranch(ctx context.Context, r *wal.Repo, project string, err error) error {
	var nf *wal.NotFoundError
	if !errors.As(err, &nf) || nf.Kind != "branch" || r == nil {
		return err
	}
	names, lerr := r.BranchNames(ctx, project)
	if lerr != nil {
		return err
	}
	var list []string
	for _, n := range names {
		if !strings.HasSuffix(n, " (deleted)") { // history's names, not branches
			list = append(list, n)
		}
	}
	if c := closest(nf.Name, list); c != "" {
		return withHint(err, "did you mean "+c+"?")
	}
	return err
}

// hintCollection, after a read found nothing, says so on stderr when coll
// does not exist and one of a close name does: a missing collection reads
// as empty, as in MongoDB, so a typo would otherwise go unnoticed.
func (f *Factory) hintCollection(ctx context.Context, rd reader, coll string) {
	if ok, err := rd.HasCollection(ctx, coll); err != nil || ok {
		return
	}
	names, err := rd.CollectionNames(ctx)
	if err != nil {
		return
	}
	if c := closest(coll, names); c != "" {
		fmt.Fprintf(f.IO.ErrOut, "argon: hint: there is no collection %s; did you mean %s?\n", coll, c)
	}
}

// refuseUnknownSubcommands makes every command group (index, completion,
// ...) refuse an argument that is not one of its subcommands, with exit 2
// and a suggestion, instead of printing its help and exiting 0.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if c.HasParent() && c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownSubcommand(cmd, args[0])
		}
	}
}

// unknownSubcommand is the error for name under group when it looks like
// a mistyped subcommand (nil when no subcommand is close to it).
func unknownSubcommand(group *cobra.Command, name string) error {
	var names []string
	for _, s := range group.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
			names = append(names, s.Aliases...)
		}
	}
	sug := closest(name, names)
	if sug == "" && group.Name() == "branch" {
		return nil
	}
	err := usageErrorf("unknown command %q for %s", name, group.CommandPath())
	if sug != "" {
		return withHint(err, "did you mean `"+group.CommandPath()+" "+sug+"`?")
	}
	return withHint(err, "`"+group.CommandPath()+" --help` lists its commands")
}

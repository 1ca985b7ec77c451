package cmd

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/workdb"
)

// Shell completion: `argon completion bash|zsh|fish|powershell` prints the
// script (cobra's); the shell then asks `argon __complete ARGS...` for
// candidates, which these functions give: branch names, and the
// collections of a branch's working database. They never wait on another
// argon process holding the workspace (a short lock timeout), and say
// nothing on failure: a completion that cannot be computed is empty.

const completeLockTimeout = 300 * time.Millisecond

// completionScope opens what a completion needs, or reports false.
func (f *Factory) completionScope(cmd *cobra.Command) bool {
	if err := f.setup(cmd); err != nil {
		return false
	}
	if f.LockTimeout > completeLockTimeout {
		f.LockTimeout = completeLockTimeout
	}
	// A key press starts no background engine; a running one is joined.
	f.SharedEngine = false
	return true
}

// completeBranchNames offers the project's branch names starting with
// toComplete.
func (f *Factory) completeBranchNames(cmd *cobra.Command, toComplete string) ([]string, cobra.ShellCompDirective) {
	return f.completeNames(cmd, toComplete, true, false)
}

// completeRefNames offers the project's branch and tag names starting with
// toComplete.
func (f *Factory) completeRefNames(cmd *cobra.Command, toComplete string) ([]string, cobra.ShellCompDirective) {
	return f.completeNames(cmd, toComplete, true, true)
}

// completeNames offers branch names, tag names or both.
func (f *Factory) completeNames(cmd *cobra.Command, toComplete string, branches, tags bool) ([]string, cobra.ShellCompDirective) {
	if !f.completionScope(cmd) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer f.Close()
	r, project, err := f.project(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names, out []string
	if branches {
		bs, err := r.Branches(ctx, project)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		for _, b := range bs {
			names = append(names, b.Name)
		}
	}
	if tags {
		ts, err := r.Tags(ctx, project)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		for _, t := range ts {
			names = append(names, t.Name)
		}
	}
	for _, n := range names {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// branchDB runs fn on the working database of --branch (or the current
// branch), for completions; nothing is offered when it cannot be opened.
func (f *Factory) branchDB(cmd *cobra.Command, fn func(ctx context.Context, db *mongo.Database) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	if !f.completionScope(cmd) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer f.Close()
	flag := ""
	if fl := cmd.Flags().Lookup("branch"); fl != nil {
		flag = fl.Value.String()
	}
	name, err := f.branchOrCurrent(flag)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	b, err := r.Branch(ctx, project, name)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out, err := fn(ctx, workdb.Open(r, b).DB)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	sort.Strings(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeCollectionNames offers the collections of the working database
// of --branch (or the current branch) starting with toComplete.
func (f *Factory) completeCollectionNames(cmd *cobra.Command, toComplete string) ([]string, cobra.ShellCompDirective) {
	return f.branchDB(cmd, func(ctx context.Context, db *mongo.Database) ([]string, error) {
		names, err := db.ListCollectionNames(ctx, bson.D{})
		var out []string
		for _, n := range names {
			if n != workdb.MarkerCollection && strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, err
	})
}

// indexArgs completes index drop's arguments: the collection, then the
// names of its indexes on --branch (or the current branch).
func (f *Factory) indexArgs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return f.completeCollectionNames(cmd, toComplete)
	case 1:
		return f.branchDB(cmd, func(ctx context.Context, db *mongo.Database) ([]string, error) {
			specs, err := workdb.ListIndexes(ctx, db, args[0])
			var out []string
			for _, spec := range specs {
				if n, ok := spec.Lookup("name").StringValueOK(); ok && strings.HasPrefix(n, toComplete) {
					out = append(out, n)
				}
			}
			return out, err
		})
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// branchFlagArgs completes `argon branch -d|-D|-m` with branch names (and
// plain `argon branch` with its subcommands only).
func (f *Factory) branchFlagArgs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	for _, name := range []string{"delete", "force-delete", "move"} {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
			return f.branchArgs(2)(cmd, args, toComplete)
		}
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// branchArgs completes the first n positional arguments as branch names.
func (f *Factory) branchArgs(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f.completeBranchNames(cmd, toComplete)
	}
}

// refArgs completes the first n positional arguments as refs (branch and
// tag names).
func (f *Factory) refArgs(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f.completeRefNames(cmd, toComplete)
	}
}

// tagArgs completes argon tag's arguments: a tag name to delete with -d,
// else a new name (nothing to offer) and then a ref.
func (f *Factory) tagArgs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if d, _ := cmd.Flags().GetBool("delete"); d && len(args) == 0 {
		return f.completeNames(cmd, toComplete, false, true)
	}
	if len(args) == 1 {
		return f.completeRefNames(cmd, toComplete)
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// collectionArg completes the first positional argument as a collection.
func (f *Factory) collectionArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return f.completeCollectionNames(cmd, toComplete)
}

// wireCompletion attaches the completions to the command tree: branch
// names (refs) for checkout, merge, diff, show, export, branch
// delete/rename and every --branch, --into and --from flag; collection
// names for the commands that take one and --collection; index names for
// index drop.
func (f *Factory) wireCompletion(root *cobra.Command) {
	byPath := map[string]cobra.CompletionFunc{
		"argon checkout":      f.branchArgs(1),
		"argon branch":        f.branchFlagArgs,
		"argon merge":         f.refArgs(1),
		"argon reset":         f.refArgs(1),
		"argon revert":        f.refArgs(1),
		"argon diff":          f.refArgs(2),
		"argon branch delete": f.branchArgs(1),
		"argon branch rename": f.branchArgs(1),
		"argon reflog":        f.branchArgs(1),
		"argon connect":       f.branchArgs(1),
		"argon find":          f.collectionArg,
		"argon count":         f.collectionArg,
		"argon insert":        f.collectionArg,
		"argon update":        f.collectionArg,
		"argon replace":       f.collectionArg,
		"argon delete":        f.collectionArg,
		"argon index create":  f.collectionArg,
		"argon index list":    f.collectionArg,
		"argon index drop":    f.indexArgs,
		"argon show":          f.refArgs(1),
		"argon export":        f.refArgs(1),
		"argon tag":           f.tagArgs,
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if fn, ok := byPath[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = fn
		}
		if c.Flags().Lookup("collection") != nil {
			_ = c.RegisterFlagCompletionFunc("collection", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				return f.completeCollectionNames(cmd, toComplete)
			})
		}
		for _, name := range []string{"branch", "into", "from"} {
			if c.Flags().Lookup(name) != nil {
				complete := f.completeBranchNames
				if name == "from" {
					complete = f.completeRefNames
				}
				_ = c.RegisterFlagCompletionFunc(name, func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
					return complete(cmd, toComplete)
				})
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

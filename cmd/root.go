// Package cmd wires argon's command line: parsing, validation and output.
// The work itself is done by the packages under internal/.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/argon-db/argon/internal/ui"
)

// Main runs argon with the process's arguments and streams and returns the
// exit code.
func Main() int {
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "argon: error: %s\n", err)
		return ExitError
	}
	f := &Factory{IO: ui.System(), Dir: dir}
	// The first SIGINT or SIGTERM cancels the command's context, so that a
	// write in progress ends as a failed write does: it gives its lease
	// back (a void) and repairs what it touched. Killed outright instead,
	// it left its lease to be waited for by the next command on the
	// branch until the lease timed out, wherever the engine is shared
	// (argon serve, a server; a new-user run waited 30 s). A second signal
	// ends the process at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	var got atomic.Value
	go func() {
		s := <-sigs
		got.Store(s)
		cancel()
		s = <-sigs
		os.Exit(signalExit(s))
	}()
	code := Run(ctx, f, os.Args[1:])
	if s, ok := got.Load().(os.Signal); ok && code != ExitOK && code != ExitUnknown {
		// Interrupted: the shell's 128 + the signal. A command that
		// finished (exit 0) or whose commit's outcome is unknown (6)
		// says so instead.
		return signalExit(s)
	}
	return code
}

// signalExit is the exit code of a command ended by signal s: 128 + its
// number, as a shell reports one.
func signalExit(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 130
}

// Run runs one argon command line with f and returns the exit code.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	// argon --version [flags] is argon version [flags] (--json included).
	if i := slices.IndexFunc(args, func(a string) bool { return a == "--version" || a == "-v" }); i >= 0 &&
		!slices.ContainsFunc(args, func(a string) bool { return !strings.HasPrefix(a, "-") }) {
		args = append([]string{"version"}, slices.Delete(slices.Clone(args), i, i+1)...)
		root.SetArgs(args)
	}
	var err error
	if name := unknownCommand(root, args); name != "" {
		// Said before cobra parses flags: 'argon bogus --help' printed
		// the root's help (exit 0) and 'argon reset --hard' complained
		// about the flag.
		err = unknownCommandError(root, name)
	} else {
		err = root.ExecuteContext(ctx)
	}
	f.IO.StopPager()
	f.Close()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Interrupted (Main's signal): the shell shows it; nothing to add.
		return exitCode(err)
	}
	if !errors.As(err, &ee) {
		// --json asks for JSON errors too, even when the flags did not
		// parse far enough to set f.JSON.
		printError(f.IO.ErrOut, err, f.URI, f.JSON || slices.Contains(args, "--json"))
	}
	return exitCode(err)
}

// unknownCommandError says that argon has no command name.
func unknownCommandError(root *cobra.Command, name string) error {
	err := usageErrorf("unknown command %q for argon", name)
	if sug := root.SuggestionsFor(name); len(sug) > 0 {
		return withHint(err, "did you mean `argon "+sug[0]+"`?")
	}
	return withHint(err, "`argon --help` lists the commands")
}

// unknownCommand returns the first word of args when it names no command
// of root (flags of root and their values skipped), else "".
func unknownCommand(root *cobra.Command, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if strings.HasPrefix(a, "-") {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			long := strings.HasPrefix(a, "--")
			if hasValue || !long && len(a) != 2 {
				continue // --flag=value, or -abc
			}
			var fl *pflag.Flag
			if long {
				fl = root.PersistentFlags().Lookup(name)
			} else {
				fl = root.PersistentFlags().ShorthandLookup(name)
			}
			// A root flag takes a value unless it is a switch (--help
			// and -h are); any other flag (a command's, given before its
			// name: argon -n 1 log) is taken to, as cobra takes it.
			if name == "help" || name == "h" {
				continue
			}
			if fl == nil || fl.NoOptDefVal == "" {
				i++
			}
			continue
		}
		if c, _, err := root.Find([]string{a}); err == nil && c != root {
			return ""
		}
		if a == "help" || a == "completion" || strings.HasPrefix(a, "__complete") {
			return ""
		}
		return a
	}
	return ""
}

// NewRootCmd builds the whole command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "argon <command> [flags]",
		Short: "Git for MongoDB data: branches, history and time travel for documents",
		Long: `argon versions the documents of a MongoDB database in a write-ahead log kept
in MongoDB itself. Branches are pointers into the log, created in constant
time; every past state can be queried; every branch is a real MongoDB
database that applications can use.

With no server configured argon runs an embedded engine in the workspace
(.argon/), as git needs no server. With --uri or ARGON_URI it works on any
MongoDB deployment.`,
		Example: `  argon init shop
  argon insert users '{"_id": 1, "name": "Ada"}'
  argon checkout -b feature-x
  argon find users '{"name": "Ada"}'
  argon log --oneline`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := f.setup(cmd); err != nil {
				return err
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommandError(cmd, args[0])
			}
			return cmd.Help()
		},
		Args: cobra.ArbitraryArgs,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&f.URI, "uri", "", "MongoDB connection string (default: the embedded engine in .argon/)")
	pf.StringVar(&f.Project, "project", "", "project to work on (default: the workspace's)")
	pf.StringVar(&f.DB, "db", "", "database holding argon's log and metadata (default \"argon_wal\")")
	pf.BoolVar(&f.JSON, "json", false, "print data as one JSON value")
	pf.BoolVarP(&f.IO.Quiet, "quiet", "q", false, "show no progress lines on a terminal")
	pf.BoolVar(&f.NoPager, "no-pager", false, "never send log, diff or show output through a pager")
	pf.DurationVar(&f.LockTimeout, "lock-timeout", 10*time.Second, "how long to wait for another argon process holding the workspace")
	pf.DurationVar(&f.Timeout, "timeout", 5*time.Second, "how long to look for a MongoDB server before giving up")
	// Run makes --version the version command; the flag is here for help.
	root.Flags().BoolP("version", "v", false, "print argon's version (as argon version does)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		// pflag says why a value does not parse in Go's words
		// ("strconv.ParseInt: parsing "abc": invalid syntax"): say what
		// the flag takes instead.
		msg := err.Error()
		if i := strings.Index(msg, ": strconv.Parse"); i >= 0 {
			what := "a number"
			switch {
			case strings.Contains(msg, "ParseBool"):
				what = "true or false"
			case strings.Contains(msg, "ParseInt"), strings.Contains(msg, "ParseUint"):
				what = "a whole number"
			}
			if strings.Contains(msg, "value out of range") {
				msg = msg[:i] + ": it is out of range"
			} else {
				msg = msg[:i] + ": it takes " + what
			}
		}
		if strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown shorthand flag") {
			return withHint(&UsageError{Msg: msg}, "`"+cmd.CommandPath()+" --help` lists its flags")
		}
		return &UsageError{Msg: msg}
	})
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SuggestionsMinimumDistance = 2

	root.AddCommand(
		newInitCmd(f),
		newBranchCmd(f),
		newCheckoutCmd(f),
		newInsertCmd(f),
		newImportCmd(f),
		newExportCmd(f),
		newUpdateCmd(f),
		newReplaceCmd(f),
		newDeleteCmd(f),
		newFindCmd(f),
		newCountCmd(f),
		newCollectionsCmd(f),
		newIndexCmd(f),
		newLogCmd(f),
		newShowCmd(f),
		newStatusCmd(f),
		newCommitCmd(f),
		newRestoreCmd(f),
		newConnectCmd(f),
		newReflogCmd(f),
		newGCCmd(f),
		newSnapshotCmd(f),
		newTagCmd(f),
		newFsckCmd(f),
		newDiffCmd(f),
		newMergeCmd(f),
		newResetCmd(f),
		newRevertCmd(f),
		newServeCmd(f),
		newVersionCmd(f),
	)
	for _, t := range helpTopics() {
		t.GroupID = "topics"
		root.AddCommand(t)
	}
	// Commands and the help topics (argon help TOPIC) are listed apart.
	root.AddGroup(&cobra.Group{ID: "commands", Title: "Commands:"}, &cobra.Group{ID: "topics", Title: "Help topics (argon help TOPIC):"})
	for _, c := range root.Commands() {
		if c.GroupID == "" {
			c.GroupID = "commands"
		}
	}
	root.SetCompletionCommandGroupID("commands")
	f.wireCompletion(root)
	root.InitDefaultCompletionCmd() // now, so that the group below covers it
	refuseUnknownSubcommands(root)
	root.SetHelpCommand(&cobra.Command{
		GroupID: "commands",
		Use:     "help [COMMAND | TOPIC]",
		Short:   "Help about any command or topic",
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 || (target == root && len(args) > 0) {
				return usageErrorf("unknown help topic %q: run `argon help` for the commands and topics", args[0])
			}
			return target.Help()
		},
	})
	return root
}

// exactArgs is cobra.ExactArgs with a usage error argon can map to exit 2.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s, got %d argument(s); usage: %s", cmd.CommandPath(), what, len(args), cmd.UseLine())
		}
		return nil
	}
}

func rangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usageErrorf("%s takes %s, got %d argument(s); usage: %s", cmd.CommandPath(), what, len(args), cmd.UseLine())
		}
		return nil
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
)

// helpTopics are pages shown by `argon help TOPIC`.
func helpTopics() []*cobra.Command {
	topic := func(name, short, long string) *cobra.Command {
		c := &cobra.Command{
			Use:   name,
			Short: short,
			Long:  long,
			Run: func(cmd *cobra.Command, args []string) {
				fmt.Fprintln(cmd.OutOrStdout(), cmd.Long)
			},
			Annotations: map[string]string{"help-topic": "true"},
		}
		c.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), cmd.Long)
		})
		return c
	}
	return []*cobra.Command{
		topic("environment", "Environment variables and configuration files", `Configuration comes from, in order of precedence: command-line flags,
environment variables, the workspace's .argon/config.yaml (found by walking
up from the current folder), the user's $XDG_CONFIG_HOME/argon/config.yaml
(~/.config/argon/config.yaml), and defaults.

ARGON_URI            MongoDB connection string (--uri); unset: the embedded engine
ARGON_PROJECT        project (--project)
ARGON_BRANCH         branch for commands that take --branch
ARGON_DB             database holding the log and metadata (--db; default argon_wal)
ARGON_AUTHOR         author recorded on commits (config key "author";
                     default: the login name)
ARGON_LOCK_TIMEOUT   how long to wait for another argon holding the workspace (--lock-timeout)
ARGON_TIMEOUT        how long to look for a server (--timeout)
ARGON_BUSY_TIMEOUT   how long a write waits for another writer on the same branch
                     (default 60s)
ARGON_LEASE_TTL      how long a writer may go without a heartbeat before another
                     process takes the branch over (default 30s); it decides
                     only when to try, never what is committed
ARGON_RESOLVE_TIMEOUT
                     how long a commit whose reply was lost is read back
                     before argon exits 6, outcome unknown (default 20s)
ARGON_COMMIT_DATE    fixed RFC3339 time recorded on commits (like GIT_COMMITTER_DATE)
ARGON_FORCE_TTY      format output as for a terminal even when piped
NO_COLOR, CLICOLOR=0 turn colour off

A CI job can run argon with environment variables only, no workspace:
  ARGON_URI=mongodb://ci-db:27017 ARGON_PROJECT=shop argon find users`),
		topic("exit-codes", "What argon's exit codes mean", `0  success
1  error (bad input, server error, nothing was written)
2  usage: unknown command or flag, wrong number of arguments, a missing --yes
3  merge conflicts
4  not found: a project, branch, ref or index the command named does not exist
   (a missing collection reads as empty, as in MongoDB)
5  busy: the workspace is locked by another argon process, or another writer
   holds the branch for longer than the wait allows
6  unknown outcome: a commit's reply was lost and could not be read back in
   time; the write may or may not have been applied. Run `+"`argon log`"+` or
   `+"`argon fsck`"+` to see; the next command on the branch settles it

Errors are printed on stderr as one "argon: error: ..." line, sometimes
followed by "argon: hint: ..." lines.`),
		topic("refs", "How to name a state: branches, LSNs, times, commits back", `A ref names a committed state of the log. Commands that read the past
(find/count/collections --at, diff, merge, branch create --from) take:

  BRANCH            the branch's committed head
  BRANCH@LSN        the state after LSN (argon log shows LSNs)
  BRANCH@TIME       the newest commit at or before TIME: RFC3339
                    (2026-11-25T10:00:00Z), a date (2026-11-25), or a
                    duration back from now (10m, 3d)
  BRANCH~N          N commits back along the branch's log (after any @WHEN:
                    main@42~1)
  TIMELINE@LSN      a timeline by id, as argon reflog prints a branch that
                    was deleted
  @WHEN             with --at, on the current branch (or --branch)

An explicit --at is always committed state, even at the head LSN: the
working database may hold changes applications have not committed.
Unknown branches exit 4, malformed refs exit 2, an LSN past the head exits 1.`),
		topic("ejson", "How documents are read and printed (Extended JSON v2)", `argon reads and prints documents as MongoDB Extended JSON v2, keeping field
order and exact BSON types.

Input (arguments, --file, standard input) may be relaxed or canonical:
  {"_id": 1, "price": {"$numberDouble": "9.5"}, "at": {"$date": "2026-01-02T03:04:05Z"}}
Plain JSON numbers become int32, int64 or double as Extended JSON says.
Standard input and --file take one JSON array of documents, or documents one
after another (one per line).

Output is relaxed by default (readable); --canonical prints every type
exactly, so that "argon find c --canonical | argon insert d" copies
documents with no change at all.

The embedded engine cannot store Decimal128 values or field names that
contain '.' or start with '$'; argon refuses them with an error. Use a
MongoDB server (--uri) for such data.`),
	}
}

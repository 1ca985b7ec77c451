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
ARGON_ENGINE         "embedded" (default): each command runs the embedded engine
                     itself and holds the workspace while it runs; "shared":
                     the first command starts a workspace engine (argon serve,
                     in the background, output in .argon/serve.log) that every
                     command joins, so commands run side by side (config key
                     "engine")
ARGON_ENGINE_IDLE    how long a workspace engine a command started waits
                     without a client before it ends (default 60s)
ARGON_SNAPSHOT_EVERY how many log entries a timeline grows past its nearest image
                     snapshot before a commit takes a new one (config key
                     "snapshot-every"; default 10000; 0: never)
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
ARGON_PAGER, PAGER   pager for log, diff and show on a terminal (default
                     "less -FRX"; "" or "cat" for none; --no-pager)
NO_COLOR, CLICOLOR=0 turn colour off

A CI job can run argon with environment variables only, no workspace:
  ARGON_URI=mongodb://ci-db:27017 ARGON_PROJECT=shop argon find users`),
		topic("exit-codes", "What argon's exit codes mean", `0  success
1  error (bad input, server error, nothing was written); also diff --exit-code
   when the two states differ, as git diff
2  usage: unknown command or flag, wrong number of arguments, a missing --yes
3  merge or revert conflicts
4  not found: a project, branch, ref, index or file the command named does not exist
   (a ref past its branch's head or before it began included),
   or was renamed or deleted by another command meanwhile (a missing
   collection reads as empty, as in MongoDB)
5  busy: the workspace is locked by another argon process (argon serve
   included: a second one cannot start), or another writer holds the
   branch for longer than the wait allows
6  unknown outcome: a commit's reply was lost and could not be read back in
   time; the write may or may not have been applied. Run `+"`argon log`"+` or
   `+"`argon fsck`"+` to see; the next command on the branch settles it
130, 143  interrupted (Ctrl-C, SIGTERM; the shell's 128 + the signal): a
   write that had not committed is not in the log; it gives the branch
   back and repairs what it touched before it exits (a second Ctrl-C
   stops it at once, and then the next command on the branch clears
   what it left, after the lease times out when the engine is shared)

Errors are printed on stderr as one "argon: error: ..." line, sometimes
followed by "argon: hint: ..." lines. With --json they are one JSON object
on stderr instead: {"error": MESSAGE, "code": EXIT CODE, "hint": HINTS},
"hint" only when there is one.`),
		topic("refs", "How to name a state: branches, LSNs, times, commits back", `A ref names a committed state of the log. Commands that read the past
(find/count/collections --at, diff, merge, log, show, export, reset,
revert, branch create --from, tag) take:

  BRANCH            the branch's committed head
  BRANCH@LSN        the state after LSN (argon log shows LSNs); an LSN inside
                    a commit of several (4..5) names the state after that
                    entry, part of the commit, as the log holds it (argon
                    reset refuses such a state)
  BRANCH@TIME       the newest commit at or before TIME on the branch's
                    log: RFC3339 (2026-11-25T10:00:00Z), a date
                    (2026-11-25), or a duration back from now (10m, 3d).
                    After a fast-forward the log is the source's, so this
                    can be a state of the source; BRANCH@{N} is where the
                    branch itself was
  BRANCH~N          N commits back along the branch's log (after any @WHEN:
                    main@42~1); as in git, ~ and ^ alone are one commit
                    back (HEAD^, main~~)
  BRANCH@{N}        from the reflog: @{0} the head (a deleted branch: its
                    head when deleted), @{N} where the branch was just
                    before its Nth most recent move (argon reflog's OLD:
                    a fast-forward, a reset), under its earlier names too
                    (a rename moves nothing; a name renamed away keeps
                    its place at the rename)
  TAG, TAG~N        the state argon tag named, or N commits before it (a
                    branch of the same name comes first)
  TIMELINE@LSN      a timeline by id, as argon reflog prints a branch that
                    was deleted
  @WHEN             with --at, on the current branch (or --branch)
  HEAD              the current branch (or --branch), as in git: HEAD~1,
                    HEAD@LSN; no branch or tag can be named HEAD

An explicit --at is always committed state, even at the head LSN: the
working database may hold changes applications have not committed.
Unknown branches and tags exit 4, and so does a state a ref cannot reach
(an LSN past the head, more commits back than there are); malformed refs
exit 2.`),
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

The embedded engine (and a FerretDB server) cannot store Decimal128,
MinKey, MaxKey, JavaScript code (with or without scope), symbols,
DBPointers, undefined, NaN or infinite doubles, arrays inside arrays, or
field names that contain '.' or start with '$'; argon refuses them with
an error, and an application's request through argon serve that holds
one gets an error reply. It stores -0.0 as 0.0, and moves an _id field
to the front of every embedded document: {"s": {"a": 1, "_id": 2}} is
stored, logged and shown as {"s": {"_id": 2, "a": 1}}, so a filter that
names such a document whole must name _id first. It evaluates a $pull
by a condition, a document or a pattern (it removes only the elements
equal to it), and $push's $sort, $slice and $position (it ignores them),
otherwise than MongoDB: argon refuses those updates, and argon serve
answers them with an error. A FerretDB server
over PostgreSQL also cannot store a NUL character in a string. Use a
MongoDB server (--uri) for such data (see argon help engine).`),
		topic("engine", "Where the data lives: the embedded engine or a MongoDB server", `argon keeps its log, and every branch's working database, in one MongoDB
deployment.

The embedded engine (no --uri, no ARGON_URI)
  FerretDB with SQLite files in the workspace (.argon/data): zero set-up,
  like git needs no server. One argon process uses it at a time (the
  workspace lock); run "argon serve" to share it with applications and
  other argon processes, or set ARGON_ENGINE=shared (config "engine:
  shared") and the first command starts "argon serve --idle-exit 60s" in
  the background for every command to join (argon help environment).
  argon serve answers an application's request holding a value the
  engine cannot take (Decimal128, MinKey, MaxKey, JavaScript code, NaN:
  the whole list is in argon help ejson) with an error reply, where the
  engine would close the connection.
  The engine has no multi-document transactions (argon serve says so), no
  $lookup, $out or change streams, and no renameCollection across
  databases (the engine says "not implemented" or "does not support"):
  use a MongoDB server for code that needs them. For one workspace and
  small data: every query other than one by _id reads its whole
  collection.

A shared server (--uri or ARGON_URI)
  Any MongoDB deployment: every argon process and application using the
  same server and metadata database (--db) sees the same project. argon's
  tests run the whole suite against FerretDB over PostgreSQL as well as on
  the embedded engine. FerretDB (embedded or server) cannot store some
  types (see argon help ejson), and its PostgreSQL store cannot hold a NUL
  character in a string; argon says so instead of passing on the engine's
  error. Several FerretDB v1 frontends over one PostgreSQL database share
  data but not the list of databases and collections: a frontend does not
  see one another frontend created after its start, so restart the other
  frontends after new branches are first used.

Real MongoDB (replica sets, sharded clusters)
  The path past one machine: all types, no such limits, and any number of
  routers or members. argon needs no transactions: its commits are single
  unique inserts, so what it promises holds on any deployment that
  acknowledges a write only once it is durable: on a replica set, keep
  MongoDB's default write concern (w: majority since MongoDB 5.0).

  argon status          names the engine in use
  argon connect BRANCH  prints the URI an application uses for a branch`),
	}
}

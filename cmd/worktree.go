package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// changesInfo is the JSON shape of a working database's changes.
type changesInfo struct {
	Added     int             `json:"added"`
	Modified  int             `json:"modified"`
	Deleted   int             `json:"deleted"`
	Documents []changedDocRef `json:"documents"`
	// Indexes lists indexes created, dropped or redefined (omitted when
	// there are none).
	Indexes []changedIndexRef `json:"indexes"`
}

type changedDocRef struct {
	Collection string          `json:"collection"`
	Change     string          `json:"change"`
	ID         json.RawMessage `json:"_id"`
}

// changedIndexRef is an index created, dropped or redefined: its keys and
// options as the working database holds it (as the log holds it when
// dropped), and for one redefined, the committed definition in Was.
type changedIndexRef struct {
	Collection string `json:"collection"`
	Change     string `json:"change"`
	Name       string `json:"name"`
	indexDef
	Was *indexDef `json:"was,omitempty"`
}

// indexDef is an index's keys and its options (every field of its
// specification but the version, key, name and namespace), in relaxed
// Extended JSON.
type indexDef struct {
	Keys    json.RawMessage `json:"keys"`
	Options json.RawMessage `json:"options"`
}

func indexDefOf(spec bson.Raw) (indexDef, error) {
	var d indexDef
	keys, err := ejson.Format(spec.Lookup("key").Document(), false)
	if err != nil {
		return d, err
	}
	elems, err := spec.Elements()
	if err != nil {
		return d, err
	}
	opts := bson.D{}
	for _, e := range elems {
		switch e.Key() {
		case "v", "key", "name", "ns":
			continue
		}
		opts = append(opts, bson.E{Key: e.Key(), Value: e.Value()})
	}
	raw, err := bson.Marshal(opts)
	if err != nil {
		return d, err
	}
	o, err := ejson.Format(raw, false)
	if err != nil {
		return d, err
	}
	return indexDef{Keys: json.RawMessage(keys), Options: json.RawMessage(o)}, nil
}

// text is the definition as status prints it: keys, then options.
func (d indexDef) text(sep string) string { return string(d.Keys) + sep + string(d.Options) }

func summarize(changes []workdb.Change) (*changesInfo, error) {
	ci := &changesInfo{Documents: []changedDocRef{}, Indexes: []changedIndexRef{}}
	for _, c := range changes {
		if c.Index {
			x := changedIndexRef{Collection: c.Coll, Change: c.Kind, Name: c.ID.StringValue()}
			now := c.Doc
			if now == nil {
				now = c.Was
			}
			var err error
			if x.indexDef, err = indexDefOf(now); err != nil {
				return nil, err
			}
			if c.Doc != nil && c.Was != nil {
				was, err := indexDefOf(c.Was)
				if err != nil {
					return nil, err
				}
				x.Was = &was
			}
			ci.Indexes = append(ci.Indexes, x)
			continue
		}
		switch c.Kind {
		case workdb.Added:
			ci.Added++
		case workdb.Modified:
			ci.Modified++
		case workdb.Deleted:
			ci.Deleted++
		}
		id, err := ejson.FormatValue(c.ID, true)
		if err != nil {
			return nil, err
		}
		ci.Documents = append(ci.Documents, changedDocRef{Collection: c.Coll, Change: c.Kind, ID: id})
	}
	return ci, nil
}

func (ci *changesInfo) line() string {
	if ci.Added+ci.Modified+ci.Deleted+len(ci.Indexes) == 0 {
		return "none"
	}
	l := fmt.Sprintf("%d added, %d modified, %d deleted", ci.Added, ci.Modified, ci.Deleted)
	switch n := len(ci.Indexes); n {
	case 0:
	case 1:
		l += ", 1 index change"
	default:
		l += fmt.Sprintf(", %d index changes", n)
	}
	return l
}

// workingChanges returns the uncommitted changes of a branch's working
// database, or none when the database was never built.
func workingChanges(ctx context.Context, w *workdb.Branch) ([]workdb.Change, error) {
	changes, _, err := workingChangesAt(ctx, w)
	return changes, err
}

// workingChangesAt is workingChanges with the committed head the working
// database was compared with, or -1 when it is not built.
func workingChangesAt(ctx context.Context, w *workdb.Branch) ([]workdb.Change, int64, error) {
	built, err := w.Built(ctx)
	if err != nil || !built {
		return nil, -1, err
	}
	return w.Changes(ctx)
}

func newCommitCmd(f *Factory) *cobra.Command {
	var message []string
	var branch string
	cmd := &cobra.Command{
		Use:   "commit -m MESSAGE",
		Short: "Record what applications changed in a branch's working database",
		Long: `Applications that write to a branch's working database directly (through
any driver) change it outside the log; argon status shows those changes.
argon commit records exactly them as one commit: the documents added and
modified, as the database holds them, and the documents deleted.`,
		Example: `  argon status --verbose
  argon commit -m "data fixed by the migration script"`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(message) == 0 || strings.TrimSpace(strings.Join(message, "")) == "" {
				return usageErrorf("a commit needs a message: argon commit -m MESSAGE")
			}
			r, b, w, err := f.openBranch(ctx, branch)
			if err != nil {
				return err
			}
			name := b.Name
			lim, err := f.limits(ctx)
			if err != nil {
				return err
			}
			changes, cm, head, err := w.CommitChanges(ctx, wal.CommitInfo{Message: strings.Join(message, "\n\n"), Author: f.Author}, lim)
			if err != nil {
				return err
			}
			ci, err := summarize(changes)
			if err != nil {
				return err
			}
			if cm == nil {
				h, err := r.Head(ctx, b.Timeline)
				if err != nil {
					return err
				}
				head = h.LSN
			}
			if f.JSON {
				out := map[string]any{"branch": name, "head": head, "changes": ci, "lsn_from": nil, "lsn_to": nil}
				if cm != nil {
					out["lsn_from"], out["lsn_to"] = cm.From, cm.To
				}
				return f.IO.PrintJSON(out)
			}
			if cm == nil {
				fmt.Fprintf(f.IO.Out, "nothing to commit on %s: the working database matches head %d\n", name, head)
				return nil
			}
			fmt.Fprintf(f.IO.Out, "committed %s on %s: LSN %d..%d, head %d\n", ci.line(), name, cm.From, cm.To, head)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&message, "message", "m", nil, "commit message (several -m make paragraphs)")
	cmd.Flags().StringVar(&branch, "branch", "", "branch whose working database to commit (default: the current branch)")
	return cmd
}

func newRestoreCmd(f *Factory) *cobra.Command {
	var branch string
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Discard what applications changed in a branch's working database",
		Long: `Rebuild a branch's working database from the log at its committed head,
discarding every change applications made there that was not committed.
Those changes are not in the log and cannot be recovered: argon asks on a
terminal and needs --yes otherwise.`,
		Example: `  argon restore --yes`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, b, w, err := f.openBranch(ctx, branch)
			if err != nil {
				return err
			}
			name := b.Name
			changes, err := workingChanges(ctx, w)
			if err != nil {
				return err
			}
			ci, err := summarize(changes)
			if err != nil {
				return err
			}
			if len(changes) > 0 && !yes {
				if !f.IO.CanPrompt() {
					return usageErrorf("refusing to discard %s on %s without --yes (not on a terminal)", ci.line(), name)
				}
				fmt.Fprintf(f.IO.ErrOut, "Discard %s on %s? [y/N] ", ci.line(), name)
				ans := f.answer(ctx)
				if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
					return fmt.Errorf("nothing discarded")
				}
			}
			head, err := w.Restore(ctx)
			if err != nil {
				return err
			}
			if f.JSON {
				return f.IO.PrintJSON(map[string]any{"branch": name, "head": head, "discarded": ci})
			}
			fmt.Fprintf(f.IO.Out, "restored %s to head %d (discarded: %s)\n", name, head, ci.line())
			return nil
		},
	}
	cmd.Flags().StringVar(&branch, "branch", "", "branch whose working database to restore (default: the current branch)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func newConnectCmd(f *Factory) *cobra.Command {
	var showSecrets bool
	cmd := &cobra.Command{
		Use:   "connect [BRANCH]",
		Short: "Print a connection string for a branch's working database",
		Long: `Print a MongoDB connection string whose database is the branch's working
database, for applications, drivers and mongosh. The password is hidden
unless --show-secrets. With the embedded engine, argon serve must be
running: the engine lives only as long as an argon process does.`,
		Example: `  argon serve &
  mongosh "$(argon connect feature-x)"`,
		Args: rangeArgs(0, 1, "an optional branch name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name, err := f.CurrentBranch()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				name = args[0]
			}
			if f.URI == "" && f.Workspace == nil {
				return errNoWorkspace
			}
			r, project, err := f.project(ctx)
			if err != nil {
				return err
			}
			b, err := r.Branch(ctx, project, name)
			if err != nil {
				return suggestBranch(ctx, r, project, err)
			}
			s, err := f.Store(ctx)
			if err != nil {
				return err
			}
			// Asked of the store this command opened: with the shared
			// workspace engine (ARGON_ENGINE=shared) that may be the engine
			// this very command started.
			if f.URI == "" && !s.Served {
				// Only now: a branch that does not exist is the first
				// thing to say.
				return withHint(fmt.Errorf("the embedded engine is not being served"),
					"start it with `argon serve`, which keeps it running for applications")
			}
			w, err := f.workingDB(ctx, r, b)
			if err != nil {
				return err
			}
			if _, err := w.Checkout(ctx); err != nil {
				return err
			}
			uri, err := withDatabase(s.URI, w.DB.Name())
			if err != nil {
				return err
			}
			if !showSecrets {
				uri = store.Redact(uri)
			}
			if f.JSON {
				return f.IO.PrintJSON(map[string]string{"branch": name, "database": w.DB.Name(), "uri": uri})
			}
			fmt.Fprintln(f.IO.Out, uri)
			return nil
		},
	}
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "print the password too")
	return cmd
}

// withDatabase puts db in the path of a MongoDB URI.
func withDatabase(uri, db string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		// Several hosts: net/url refuses some forms; splice the path in.
		scheme, rest, ok := strings.Cut(uri, "://")
		if !ok {
			return "", fmt.Errorf("cannot add a database to URI %s", store.Redact(uri))
		}
		hosts, query, _ := strings.Cut(rest, "?")
		hosts, _, _ = strings.Cut(hosts, "/")
		out := scheme + "://" + hosts + "/" + db
		if query != "" {
			out += "?" + query
		}
		return out, nil
	}
	u.Path = "/" + db
	return u.String(), nil
}

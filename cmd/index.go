package cmd

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

func newIndexCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Create, list and drop indexes, versioned with the data",
		Long: `Indexes are part of a branch's history: creating or dropping one is a
commit, a branch made before an index does not have it, time travel shows
the indexes of that moment, and a branch's working database is built with
its indexes. A write that breaks a unique index fails, and names the key.`,
		Example: `  argon index create users '{"email": 1}' --unique
  argon index list users
  argon index drop users email_1`,
	}
	cmd.AddCommand(newIndexCreateCmd(f), newIndexListCmd(f), newIndexDropCmd(f))
	return cmd
}

func newIndexCreateCmd(f *Factory) *cobra.Command {
	var opts workdb.IndexOptions
	var message []string
	var branch string
	cmd := &cobra.Command{
		Use:   "create COLLECTION KEYS",
		Short: "Create an index, as one commit",
		Long: `Create an index on COLLECTION with KEYS, a document of fields and
directions like '{"age": 1, "name": -1}'. The server builds it; a unique
index that the data already breaks is refused and nothing is written.`,
		Example: `  argon index create users '{"email": 1}' --unique --name by_email`,
		Args:    exactArgs(2, "a collection and a keys document"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := workdb.ValidateCollection(args[0]); err != nil {
				return err
			}
			keys, err := ejson.ParseDocument("keys", []byte(args[1]))
			if err != nil {
				return err
			}
			if n, _ := keys.Elements(); len(n) == 0 {
				return fmt.Errorf("the keys document is empty: name at least one field, like '{\"email\": 1}'")
			}
			if cmd.Flags().Changed("name") {
				if err := validateIndexName(opts.Name); err != nil {
					return err
				}
			}
			lim, err := f.limits(ctx)
			if err != nil {
				return err
			}
			if lim.Engine != "" {
				if err := checkFerretKeys(keys, lim.Engine); err != nil {
					return err
				}
			}
			_, b, w, err := f.openBranch(ctx, branch)
			if err != nil {
				return err
			}
			msg := strings.Join(message, "\n\n")
			if msg == "" {
				msg = fmt.Sprintf("create index on %s %s", args[0], oneLine(args[1]))
			}
			spec, cm, head, err := w.CreateIndex(ctx, args[0], keys, opts, wal.CommitInfo{Message: msg, Author: f.Author})
			if err != nil {
				return err
			}
			js, err := ejson.Format(spec, false)
			if err != nil {
				return err
			}
			name := spec.Lookup("name").StringValue()
			if cm == nil {
				// The same index was there already: nothing written.
				if f.JSON {
					return f.IO.PrintJSON(map[string]any{"branch": b.Name, "collection": args[0], "index": name, "spec": json.RawMessage(js), "lsn_from": nil, "lsn_to": nil, "head": head})
				}
				fmt.Fprintln(f.IO.Out, name)
				fmt.Fprintf(f.IO.ErrOut, "index %s already exists on %s on %s with the same keys and options: nothing to commit, head %d\n", name, args[0], b.Name, head)
				return nil
			}
			if f.JSON {
				return f.IO.PrintJSON(map[string]any{"branch": b.Name, "collection": args[0], "index": name, "spec": json.RawMessage(js), "lsn_from": cm.From, "lsn_to": cm.To, "head": head})
			}
			fmt.Fprintln(f.IO.Out, name)
			fmt.Fprintf(f.IO.ErrOut, "created index on %s on %s: LSN %d..%d, head %d\n", args[0], b.Name, cm.From, cm.To, head)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "index name (default: MongoDB's, like email_1)")
	cmd.Flags().BoolVar(&opts.Unique, "unique", false, "refuse two documents with the same key")
	cmd.Flags().StringArrayVarP(&message, "message", "m", nil, "commit message")
	cmd.Flags().StringVar(&branch, "branch", "", "branch (default: the current branch)")
	return cmd
}

func newIndexListCmd(f *Factory) *cobra.Command {
	var branch, at string
	cmd := &cobra.Command{
		Use:   "list COLLECTION",
		Short: "List a collection's indexes (not _id's)",
		Long: `List the indexes of COLLECTION at a branch's head or, with --at, at a past
point. Piped: "name<TAB>keys<TAB>unique" lines.`,
		Example: `  argon index list users
  argon index list users --at 12 --json`,
		Args: exactArgs(1, "a collection"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := workdb.ValidateCollection(args[0]); err != nil {
				return err
			}
			rd, _, err := f.openReader(ctx, branch, at)
			if err != nil {
				return err
			}
			specs, err := rd.Indexes(ctx, args[0])
			if err != nil {
				return err
			}
			if f.JSON {
				arr := make([]json.RawMessage, len(specs))
				for i, s := range specs {
					js, err := ejson.Format(s, false)
					if err != nil {
						return err
					}
					arr[i] = json.RawMessage(js)
				}
				return f.IO.PrintJSON(arr)
			}
			t := f.IO.NewTable("NAME", "KEYS", "UNIQUE")
			for _, s := range specs {
				keys, _ := ejson.Format(s.Lookup("key").Document(), false)
				u, _ := s.Lookup("unique").BooleanOK()
				t.Row(s.Lookup("name").StringValue(), keys, fmt.Sprint(u))
			}
			return t.Render()
		},
	}
	cmd.Flags().StringVar(&branch, "branch", "", "branch to read (default: the current branch)")
	cmd.Flags().StringVar(&at, "at", "", "list at a past point: an LSN, a time, or a ref (argon help refs)")
	return cmd
}

func newIndexDropCmd(f *Factory) *cobra.Command {
	var message []string
	var branch string
	cmd := &cobra.Command{
		Use:     "drop COLLECTION NAME",
		Short:   "Drop an index, as one commit",
		Example: `  argon index drop users email_1`,
		Args:    exactArgs(2, "a collection and an index name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := workdb.ValidateCollection(args[0]); err != nil {
				return err
			}
			_, b, w, err := f.openBranch(ctx, branch)
			if err != nil {
				return err
			}
			msg := strings.Join(message, "\n\n")
			if msg == "" {
				msg = fmt.Sprintf("drop index %s on %s", args[1], args[0])
			}
			cm, head, err := w.DropIndex(ctx, args[0], args[1], wal.CommitInfo{Message: msg, Author: f.Author})
			if err != nil {
				return err
			}
			if f.JSON {
				return f.IO.PrintJSON(map[string]any{"branch": b.Name, "collection": args[0], "index": args[1], "lsn_from": cm.From, "lsn_to": cm.To, "head": head})
			}
			fmt.Fprintf(f.IO.Out, "dropped index %s on %s on %s: LSN %d..%d, head %d\n", args[1], args[0], b.Name, cm.From, cm.To, head)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&message, "message", "m", nil, "commit message")
	cmd.Flags().StringVar(&branch, "branch", "", "branch (default: the current branch)")
	return cmd
}

// validateIndexName refuses index names MongoDB refuses or that would
// print as something else: empty, "*", invalid UTF-8, control characters.
func validateIndexName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("invalid index name: it is empty (leave --name out for MongoDB's default name)")
	case name == "*":
		return fmt.Errorf("invalid index name \"*\": it means every index to MongoDB")
	case !utf8.ValidString(name):
		return fmt.Errorf("invalid index name %q: it is not valid UTF-8", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("invalid index name %q: it contains a control character", name)
	}
	return nil
}

// checkFerretKeys refuses index keys FerretDB v1 cannot build (it answers
// "Index key value ... is not implemented yet"): only 1 and -1 are.
func checkFerretKeys(keys bson.Raw, engine string) error {
	elems, err := keys.Elements()
	if err != nil {
		return err
	}
	for _, el := range elems {
		v := el.Value()
		if n, ok := v.AsInt64OK(); ok && (n == 1 || n == -1) {
			continue
		}
		if d, ok := v.DoubleOK(); ok && (d == 1 || d == -1) {
			continue
		}
		shown, _ := ejson.FormatValue(v, false)
		return fmt.Errorf("index key %q is %s: %s builds only ascending (1) and descending (-1) keys", el.Key(), shown, engine)
	}
	return nil
}

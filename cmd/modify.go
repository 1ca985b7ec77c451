package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type modifyOptions struct {
	f       *Factory
	kind    string // update, replace, delete
	coll    string
	filter  string
	change  string
	many    bool
	upsert  bool
	message []string
	branch  string
}

func newUpdateCmd(f *Factory) *cobra.Command {
	o := &modifyOptions{f: f, kind: "update"}
	cmd := &cobra.Command{
		Use:   "update COLLECTION FILTER UPDATE",
		Short: "Update documents with update operators, as one commit",
		Long: `Update the first document FILTER matches (all of them with --many) with
UPDATE, a document of MongoDB update operators ($set, $inc, $push, $unset,
...). The server evaluates the filter and the operators; argon records the
documents as they are afterwards. With --upsert, a document is inserted
when nothing matches. Documents the update leaves unchanged are not
recorded, and an update that changes nothing makes no commit.`,
		Example: `  argon update users '{"_id": 1}' '{"$set": {"email": "ada@example.com"}}'
  argon update users '{"age": {"$lt": 18}}' '{"$set": {"minor": true}}' --many
  argon update counters '{"_id": "visits"}' '{"$inc": {"n": 1}}' --upsert`,
		Args: exactArgs(3, "a collection, a filter and an update"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.coll, o.filter, o.change = args[0], args[1], args[2]
			return runModify(cmd.Context(), o)
		},
	}
	addModifyFlags(cmd, o, true, true)
	return cmd
}

func newReplaceCmd(f *Factory) *cobra.Command {
	o := &modifyOptions{f: f, kind: "replace"}
	cmd := &cobra.Command{
		Use:   "replace COLLECTION FILTER DOCUMENT",
		Short: "Replace a whole document, as one commit",
		Long: `Replace the first document FILTER matches with DOCUMENT (which may not hold
update operators, and keeps the matched document's _id). With --upsert,
DOCUMENT is inserted when nothing matches.`,
		Example: `  argon replace users '{"_id": 1}' '{"name": "Ada Lovelace", "age": 36}'`,
		Args:    exactArgs(3, "a collection, a filter and a document"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.coll, o.filter, o.change = args[0], args[1], args[2]
			return runModify(cmd.Context(), o)
		},
	}
	addModifyFlags(cmd, o, false, true)
	return cmd
}

func newDeleteCmd(f *Factory) *cobra.Command {
	o := &modifyOptions{f: f, kind: "delete"}
	cmd := &cobra.Command{
		Use:   "delete COLLECTION FILTER",
		Short: "Delete documents, as one commit",
		Long: `Delete the first document FILTER matches (all of them with --many). The
history keeps them: argon find --at, argon log and branches made before
still see them. To delete every document, give the filter '{}' and --many.`,
		Example: `  argon delete users '{"_id": 3}'
  argon delete sessions '{"expired": true}' --many`,
		Args: exactArgs(2, "a collection and a filter"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.coll, o.filter = args[0], args[1]
			return runModify(cmd.Context(), o)
		},
	}
	addModifyFlags(cmd, o, true, false)
	return cmd
}

func addModifyFlags(cmd *cobra.Command, o *modifyOptions, many, upsert bool) {
	if many {
		cmd.Flags().BoolVar(&o.many, "many", false, "change every matching document, not only the first")
	}
	if upsert {
		cmd.Flags().BoolVar(&o.upsert, "upsert", false, "insert a document when nothing matches")
	}
	cmd.Flags().StringArrayVarP(&o.message, "message", "m", nil, "commit message (several -m make paragraphs)")
	cmd.Flags().StringVar(&o.branch, "branch", "", "branch to write to (default: the current branch)")
}

// modifyResult is the JSON shape of update, replace and delete.
type modifyResult struct {
	Branch     string          `json:"branch"`
	Collection string          `json:"collection"`
	Matched    int             `json:"matched"`
	Modified   int             `json:"modified"`
	Deleted    int             `json:"deleted"`
	UpsertedID json.RawMessage `json:"upserted_id,omitempty"`
	LSNFrom    *int64          `json:"lsn_from"` // null: nothing changed, no commit
	LSNTo      *int64          `json:"lsn_to"`
	Head       int64           `json:"head"`
}

// uncommittedHint adds to a write refused for an application's
// uncommitted changes (workdb.UncommittedError) what to do about them.
// named is the --branch flag as given, branch the branch written to.
func uncommittedHint(err error, named, branch string) error {
	if !errors.As(err, new(*workdb.UncommittedError)) {
		return err
	}
	on := ""
	if named != "" {
		on = " --branch " + branch
	}
	return withHint(err, "`argon status"+on+"` lists them; record them with `argon commit"+on+" -m MESSAGE`, or discard every uncommitted change with `argon restore"+on+"`; then run this command again")
}

func runModify(ctx context.Context, o *modifyOptions) error {
	f := o.f
	if err := workdb.ValidateCollection(o.coll); err != nil {
		return err
	}
	filter, err := ejson.ParseDocument("filter", []byte(o.filter))
	if err != nil {
		return err
	}
	m := workdb.Modification{Filter: filter, Many: o.many, Upsert: o.upsert, Delete: o.kind == "delete"}
	switch o.kind {
	case "update":
		if strings.HasPrefix(strings.TrimSpace(o.change), "[") {
			return fmt.Errorf("pipeline-style updates ([{\"$set\": ...}, ...]) are not supported by argon yet: give update operators, like '{\"$set\": {\"a\": 1}}'")
		}
		if m.Update, err = ejson.ParseDocument("update", []byte(o.change)); err != nil {
			return err
		}
		if err := checkOperators(m.Update); err != nil {
			return err
		}
	case "replace":
		if m.Replacement, err = ejson.ParseDocument("document", []byte(o.change)); err != nil {
			return err
		}
		if first, err := m.Replacement.IndexErr(0); err == nil && strings.HasPrefix(first.Key(), "$") {
			return fmt.Errorf("a replacement document cannot hold update operators (%s): use argon update", first.Key())
		}
	}
	r, b, w, err := f.openBranch(ctx, o.branch)
	if err != nil {
		return err
	}
	branch := b.Name
	lim, err := f.limits(ctx)
	if err != nil {
		return err
	}
	for _, part := range []struct {
		what string
		doc  bson.Raw
	}{{"filter", m.Filter}, {"update", m.Update}} {
		if err := workdb.CheckQuery(part.what, part.doc, lim); err != nil {
			return err
		}
	}
	if err := workdb.CheckUpdate(m.Update, lim); err != nil {
		return err
	}
	if m.Filter, err = workdb.EngineFilter(m.Filter, lim); err != nil {
		return err
	}
	if m.Replacement != nil {
		if err := workdb.CheckDocument(m.Replacement, lim); err != nil {
			return err
		}
		if m.Replacement, err = workdb.EngineDocument(m.Replacement, lim); err != nil {
			return err
		}
	}
	msg := strings.Join(o.message, "\n\n")
	if msg == "" {
		msg = fmt.Sprintf("%s %s %s", o.kind, o.coll, oneLine(o.filter))
	}
	res, err := w.Modify(ctx, o.coll, m, lim, wal.CommitInfo{Message: msg, Author: f.Author})
	if err != nil {
		return uncommittedHint(err, o.branch, branch)
	}
	out := modifyResult{Branch: branch, Collection: o.coll, Matched: res.Matched, Modified: res.Modified,
		Deleted: res.Deleted, Head: res.Head}
	if res.Commit != nil {
		out.LSNFrom, out.LSNTo = &res.Commit.From, &res.Commit.To
	} else {
		h, err := r.Head(ctx, b.Timeline)
		if err != nil {
			return err
		}
		out.Head = h.LSN
	}
	if res.Upserted != nil {
		if out.UpsertedID, err = ejson.FormatValue(*res.Upserted, true); err != nil {
			return err
		}
	}
	if f.JSON {
		return f.IO.PrintJSON(out)
	}
	var line string
	switch {
	case o.kind == "delete":
		line = fmt.Sprintf("deleted %d", out.Deleted)
	case res.Upserted != nil:
		id, _ := ejson.FormatValue(*res.Upserted, false)
		line = fmt.Sprintf("matched 0, upserted %s", id)
	default:
		line = fmt.Sprintf("matched %d, modified %d", out.Matched, out.Modified)
	}
	fmt.Fprintln(f.IO.Out, line)
	if res.Commit != nil {
		fmt.Fprintf(f.IO.ErrOut, "%s in %s on %s: LSN %d..%d, head %d\n", o.kind, o.coll, branch, *out.LSNFrom, *out.LSNTo, out.Head)
	} else {
		fmt.Fprintf(f.IO.ErrOut, "nothing changed: no commit, head %d\n", out.Head)
	}
	return nil
}

// checkOperators refuses an update document that is not made of update
// operators: argon update never replaces a whole document by accident.
func checkOperators(update bson.Raw) error {
	elems, err := update.Elements()
	if err != nil {
		return err
	}
	if len(elems) == 0 {
		return fmt.Errorf("the update document is empty: give update operators, like '{\"$set\": {\"a\": 1}}'")
	}
	for _, e := range elems {
		if !strings.HasPrefix(e.Key(), "$") {
			return fmt.Errorf("the update document must hold update operators only, found field %q: use argon replace to replace a whole document", e.Key())
		}
	}
	return nil
}

func newCountCmd(f *Factory) *cobra.Command {
	var branch, at string
	cmd := &cobra.Command{
		Use:   "count COLLECTION [FILTER]",
		Short: "Count the documents a filter matches on a branch",
		Example: `  argon count users
  argon count users '{"age": {"$gte": 18}}' --branch feature-x
  argon count users --at main@12`,
		Args: rangeArgs(1, 2, "a collection and an optional filter"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := workdb.ValidateCollection(args[0]); err != nil {
				return err
			}
			var filter bson.Raw
			if len(args) == 2 {
				var err error
				if filter, err = ejson.ParseDocument("filter", []byte(args[1])); err != nil {
					return err
				}
			}
			rd, p, err := f.openReader(ctx, branch, at)
			if err != nil {
				return err
			}
			lim, err := f.limits(ctx)
			if err != nil {
				return err
			}
			if err := workdb.CheckQuery("filter", filter, lim); err != nil {
				return err
			}
			if filter, err = workdb.EngineFilter(filter, lim); err != nil {
				return err
			}
			n, err := rd.Count(ctx, args[0], filter)
			if err != nil {
				return err
			}
			if n == 0 {
				f.hintCollection(ctx, rd, args[0])
			}
			// A missing collection counts 0, as in MongoDB.
			if f.JSON {
				lsn := p.LSN
				if lsn < 0 {
					r, err := f.Repo(ctx)
					if err != nil {
						return err
					}
					h, err := r.Head(ctx, p.Branch.Timeline)
					if err != nil {
						return err
					}
					lsn = h.LSN
				}
				return f.IO.PrintJSON(map[string]any{"collection": args[0], "branch": p.Branch.Name, "lsn": lsn, "count": n})
			}
			fmt.Fprintln(f.IO.Out, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&branch, "branch", "", "branch to read (default: the current branch)")
	cmd.Flags().StringVar(&at, "at", "", "count in a past state: an LSN, a time, or a ref (argon help refs)")
	return cmd
}

func newCollectionsCmd(f *Factory) *cobra.Command {
	var branch, at string
	cmd := &cobra.Command{
		Use:   "collections",
		Short: "List a branch's collections with their document counts",
		Long: `List the collections at a branch's head and how many documents each holds.
A collection exists while it holds documents or indexes (one with indexes
only counts 0). Piped: "name<TAB>count" lines.`,
		Example: `  argon collections
  argon collections --branch feature-x --json
  argon collections --at 2d`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rd, _, err := f.openReader(ctx, branch, at)
			if err != nil {
				return err
			}
			infos, err := rd.Collections(ctx)
			if err != nil {
				return err
			}
			if f.JSON {
				if infos == nil {
					infos = []workdb.CollectionInfo{}
				}
				return f.IO.PrintJSON(infos)
			}
			t := f.IO.NewTable("COLLECTION", "DOCUMENTS")
			for _, c := range infos {
				t.Row(c.Name, fmt.Sprint(c.Count))
			}
			return t.Render()
		},
	}
	cmd.Flags().StringVar(&branch, "branch", "", "branch to read (default: the current branch)")
	cmd.Flags().StringVar(&at, "at", "", "list a past state: an LSN, a time, or a ref (argon help refs)")
	return cmd
}

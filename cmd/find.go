package cmd

import (
	"bufio"
	"context"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/workdb"
)

type findOptions struct {
	f          *Factory
	coll       string
	filter     string
	projection string
	sort       string
	limit      int64
	skip       int64
	branch     string
	canonical  bool
	relaxed    bool
	at         string
}

func newFindCmd(f *Factory) *cobra.Command {
	o := &findOptions{f: f}
	cmd := &cobra.Command{
		Use:   "find COLLECTION [FILTER]",
		Short: "Query documents on a branch",
		Long: `Query COLLECTION at the head of a branch, or at any past point with --at.
FILTER, --projection and --sort are Extended JSON documents in MongoDB's
query language; the server evaluates
them against the branch's working database, so every operator MongoDB has
works as it does there. A read without --sort a few commits below a
branch's head (up to 1,000 documents of the collection changed since) is
answered from the branch's working database and the changed documents'
past versions, when argon knows no application changed that database
(the embedded engine, argon serve). Otherwise the collection at that
point is materialised from the log into a database of its own the first
time it is asked for (that collection only, from the nearest image
snapshot), with a notice, and reused after (argon gc drops these). A
read without --sort near such a state, or near an image snapshot (argon
snapshot), is answered from that state's materialised collection and the
documents changed since, so reads stepping through history materialise
once.

Prints one document per line as relaxed Extended JSON, or canonical
Extended JSON (exact BSON types) with --canonical. --json prints one JSON
array of canonical Extended JSON documents (relaxed with --relaxed).`,
		Example: `  argon find users
  argon find users '{"age": {"$gte": 18}}' --sort '{"name": 1}' --limit 10
  argon find users --projection '{"name": 1, "_id": 0}' --branch feature-x
  argon find users --canonical > users.ndjson
  argon find users --at 42
  argon find users '{"age": 36}' --at main@2026-11-25T10:00:00Z
  argon find users --at 1h`,
		Args: rangeArgs(1, 2, "a collection and an optional filter"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.coll = args[0]
			if len(args) == 2 {
				o.filter = args[1]
			}
			if o.limit < 0 || o.skip < 0 {
				return usageErrorf("--limit and --skip must not be negative")
			}
			if o.canonical && o.relaxed {
				return usageErrorf("--canonical and --relaxed cannot be used together")
			}
			return runFind(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.projection, "projection", "", "projection document")
	fl.StringVar(&o.sort, "sort", "", "sort document, like '{\"name\": 1}'")
	fl.Int64Var(&o.limit, "limit", 0, "return at most this many documents (0: no limit)")
	fl.Int64Var(&o.skip, "skip", 0, "skip this many documents first")
	fl.StringVar(&o.branch, "branch", "", "branch to read (default: the current branch)")
	fl.StringVar(&o.at, "at", "", "read a past state: an LSN, a time (RFC3339, or 10m, 2h, 3d ago), or a ref (BRANCH@LSN, BRANCH~N, a tag, ...: argon help refs)")
	fl.BoolVar(&o.canonical, "canonical", false, "print canonical Extended JSON (exact BSON types)")
	fl.BoolVar(&o.relaxed, "relaxed", false, "with --json: relaxed Extended JSON instead of canonical")
	return cmd
}

func parseOptionalDoc(what, s string) (bson.Raw, error) {
	if s == "" {
		return nil, nil
	}
	return ejson.ParseDocument(what, []byte(s))
}

func runFind(ctx context.Context, o *findOptions) error {
	f := o.f
	if err := workdb.ValidateCollection(o.coll); err != nil {
		return err
	}
	var q workdb.Query
	var err error
	if q.Filter, err = parseOptionalDoc("filter", o.filter); err != nil {
		return err
	}
	if q.Projection, err = parseOptionalDoc("projection", o.projection); err != nil {
		return err
	}
	if q.Sort, err = parseOptionalDoc("sort", o.sort); err != nil {
		return err
	}
	q.Limit, q.Skip = o.limit, o.skip
	lim, err := f.limits(ctx)
	if err != nil {
		return err
	}
	for _, part := range []struct {
		what string
		doc  bson.Raw
	}{{"filter", q.Filter}, {"projection", q.Projection}, {"sort", q.Sort}} {
		if err := workdb.CheckQuery(part.what, part.doc, lim); err != nil {
			return err
		}
	}
	if q.Filter, err = workdb.EngineFilter(q.Filter, lim); err != nil {
		return err
	}
	rd, _, err := f.openReader(ctx, o.branch, o.at)
	if err != nil {
		return err
	}
	docs := &workdb.Docs{Spill: true}
	defer docs.Close()
	if err := rd.FindTo(ctx, o.coll, q, docs); err != nil {
		return err
	}
	if docs.Len() == 0 {
		f.hintCollection(ctx, rd, o.coll)
	}
	// A missing collection reads as empty, as in MongoDB.
	if f.JSON {
		arr := f.IO.StartJSONArray()
		if err := docs.Each(func(d bson.Raw) error {
			s, err := ejson.Format(d, !o.relaxed)
			if err != nil {
				return err
			}
			return arr.Add([]byte(s))
		}); err != nil {
			return err
		}
		return arr.End()
	}
	out := bufio.NewWriterSize(f.IO.Out, 64<<10)
	if err := docs.Each(func(d bson.Raw) error {
		s, err := ejson.Format(d, o.canonical)
		if err != nil {
			return err
		}
		out.WriteString(s)
		return out.WriteByte('\n')
	}); err != nil {
		return err
	}
	return out.Flush()
}

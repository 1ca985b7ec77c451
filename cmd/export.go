package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type exportOptions struct {
	f           *Factory
	ref         string
	dir         string
	toURI       string
	toDB        string
	collections []string
	drop        bool
}

func newExportCmd(f *Factory) *cobra.Command {
	o := &exportOptions{f: f}
	cmd := &cobra.Command{
		Use:   "export [REF] (--dir DIR | --to-uri URI --to-db NAME)",
		Short: "Write the documents and indexes of any state to a directory or a MongoDB database",
		Long: `Export the committed state REF names (see argon help refs: a branch, BRANCH@LSN,
BRANCH@TIME, BRANCH~N; default: the current branch's head) with its
indexes:

  --dir DIR                   one COLLECTION.json per collection, as
                              mongoexport writes it (one canonical Extended
                              JSON document per line, sorted by _id), and
                              COLLECTION.metadata.json with its indexes
  --to-uri URI --to-db NAME   a database on any MongoDB server

A target that already holds data is refused unless --drop is given: then
each exported collection is replaced (files overwritten, collections
dropped first); nothing else in the target is touched. A database of
argon's own (one holding an argon log, or a branch's working database) is
never a target.

Uncommitted changes applications made in the branch's working database are
not exported: export writes what the log holds. Documents are streamed,
sorted by _id: memory holds one batch, or on FerretDB (the embedded engine)
16 MiB, the rest in temporary files (a collection whose _ids mix kinds,
say numbers and strings, is sorted by the engine, in its memory). export ->
import -> export gives the same files byte for byte.`,
		Example: `  argon export --dir ./dump
  argon export feature-x@42 --dir ./before-migration --collections users
  argon export main@2026-11-25T10:00:00Z --to-uri mongodb://localhost:27017 --to-db shop_yesterday
  argon export --dir ./dump --drop`,
		Args: rangeArgs(0, 1, "at most one ref"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if args[0] == "" {
					return usageErrorf("the ref is empty: name a branch, a tag, BRANCH@LSN, BRANCH~N ... (argon help refs)")
				}
				o.ref = args[0]
			}
			return runExport(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.dir, "dir", "", "write one COLLECTION.json per collection to this directory")
	fl.StringVar(&o.toURI, "to-uri", "", "write to a database on this MongoDB server")
	fl.StringVar(&o.toDB, "to-db", "", "the database to write with --to-uri")
	fl.StringSliceVar(&o.collections, "collections", nil, "export only these collections (comma-separated)")
	fl.BoolVar(&o.drop, "drop", false, "replace collections the target already holds")
	return cmd
}

// exportSink receives one collection after another.
type exportSink interface {
	// check refuses a target that holds data, unless drop.
	check(ctx context.Context, colls []string, drop bool) error
	begin(ctx context.Context, coll string) error
	write(ctx context.Context, doc bson.Raw) error
	end(ctx context.Context, coll string, indexes []bson.Raw) error
	// abort undoes what an unfinished export wrote.
	abort()
	describe() string
	// target is what --json says of it.
	target() map[string]any
}

func runExport(ctx context.Context, o *exportOptions) error {
	f := o.f
	switch {
	case o.dir == "" && o.toURI == "":
		return usageErrorf("nowhere to export to: give --dir DIR or --to-uri URI --to-db NAME")
	case o.dir != "" && o.toURI != "":
		return usageErrorf("give one target: --dir or --to-uri")
	case o.toURI != "" && o.toDB == "":
		return usageErrorf("--to-uri needs --to-db, the database to write")
	case o.toURI == "" && o.toDB != "":
		return usageErrorf("--to-db needs --to-uri, the server to write to")
	}
	for _, c := range o.collections {
		if err := workdb.ValidateCollection(c); err != nil {
			return err
		}
	}
	var sink exportSink
	if o.dir != "" {
		sink = &dirSink{dir: o.dir}
	} else {
		if err := validateDatabaseName("--to-db", o.toDB); err != nil {
			return err
		}
		if l := strings.ToLower(o.toDB); l == "admin" || l == "local" || l == "config" {
			return usageErrorf("--to-db %s is one of MongoDB's own databases; export writes only databases of your own", o.toDB)
		}
		s, err := store.Open(ctx, store.Options{URI: o.toURI, ServerSelectionTimeout: f.Timeout})
		if err != nil {
			return err
		}
		defer s.Close()
		to := s.Client.Database(o.toDB)
		// Never into argon's own databases: --drop would replace the
		// log's collections with the branch's of the same names.
		why, err := wal.ArgonDatabase(ctx, to)
		if err != nil {
			return err
		}
		if why != "" {
			return usageErrorf("--to-db %s is argon's own database: %s; export writes only databases of your own", o.toDB, why)
		}
		sink = &dbSink{db: to, uri: o.toURI}
	}
	db, pt, err := exportState(ctx, f, o.ref)
	if err != nil {
		return err
	}
	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	ferret := st.Embedded || st.FerretDB
	what := fmt.Sprintf("%s@%d", pt.branch, pt.lsn)
	infos, err := workdb.CollectionNames(ctx, db)
	if err != nil {
		return err
	}
	var colls []string
	for _, c := range infos {
		if len(o.collections) == 0 || slices.Contains(o.collections, c) {
			colls = append(colls, c)
		}
	}
	for _, c := range o.collections {
		if !slices.Contains(colls, c) {
			return &notFoundError{msg: fmt.Sprintf("no collection %s in %s", c, what)}
		}
	}
	if err := sink.check(ctx, colls, o.drop); err != nil {
		return err
	}
	type collResult struct {
		Collection string `json:"collection"`
		Documents  int    `json:"documents"`
		Indexes    int    `json:"indexes"`
	}
	results := []collResult{}
	progress := f.IO.Progress("exporting " + what)
	total := 0
	err = func() error {
		for _, coll := range colls {
			if err := sink.begin(ctx, coll); err != nil {
				return err
			}
			n, err := workdb.EachByID(ctx, db.Collection(coll), ferret, func(d bson.Raw) error {
				total++
				progress.Update(total, "documents")
				return sink.write(ctx, d)
			})
			if err != nil {
				return err
			}
			specs, err := indexSpecs(ctx, db.Collection(coll))
			if err != nil {
				return err
			}
			if err := sink.end(ctx, coll, specs); err != nil {
				return err
			}
			results = append(results, collResult{coll, n, len(specs)})
		}
		return nil
	}()
	progress.Done()
	if err != nil {
		sink.abort()
		return err
	}
	if f.JSON {
		v := map[string]any{"branch": pt.branch, "lsn": pt.lsn, "collections": results}
		for k, x := range sink.target() {
			v[k] = x
		}
		return f.IO.PrintJSON(v)
	}
	for _, r := range results {
		fmt.Fprintf(f.IO.Out, "%s\t%d documents\t%d indexes\n", r.Collection, r.Documents, r.Indexes)
	}
	fmt.Fprintf(f.IO.ErrOut, "exported %s of %s to %s\n", countOf(total, "document"), what, sink.describe())
	return nil
}

// statePoint is a committed state: a branch at an LSN.
type statePoint struct {
	branch string
	lsn    int64
}

// exportState returns a database holding the committed state ref names,
// and which state it is. A branch head is read from its working database
// when that holds exactly the committed head, else from a view.
func exportState(ctx context.Context, f *Factory, ref string) (*mongo.Database, statePoint, error) {
	name, at, hasAt := strings.Cut(ref, "@")
	if name == "HEAD" {
		name, ref = "", strings.TrimPrefix(ref, "HEAD") // the current branch
	}
	var r *wal.Repo
	var b *wal.Branch
	var w *workdb.Branch
	var err error
	if ref == "" || !hasAt && !strings.Contains(ref, "~") {
		r, b, w, err = f.openBranch(ctx, name)
		if err != nil && (name == "" || !errors.As(err, new(*wal.NotFoundError))) {
			return nil, statePoint{}, err
		}
		if err != nil {
			b = nil // not a branch: a tag or a timeline, which the resolver reads
		}
	}
	if b != nil {
		// The working database serves when it holds exactly the committed
		// head (what status checks: the marker's fingerprint, else the log).
		changes, head, err := w.Changes(ctx)
		if err != nil {
			return nil, statePoint{}, err
		}
		clean := len(changes) == 0
		pt := statePoint{b.Name, head}
		if clean {
			return w.DB, pt, nil
		}
		fmt.Fprintf(f.IO.ErrOut, "argon: notice: exporting the committed head of %s; changes in its working database that are not committed are left out\n", b.Name)
		v, err := workdb.OpenView(ctx, r, b.Timeline, head)
		if err != nil {
			return nil, statePoint{}, err
		}
		return v.DB, pt, nil
	}
	if hasAt && name == "" {
		cur, err := f.CurrentBranch()
		if err != nil {
			return nil, statePoint{}, err
		}
		ref = cur + "@" + at
	}
	r, project, err := f.project(ctx)
	if err != nil {
		return nil, statePoint{}, err
	}
	def, err := f.CurrentBranch()
	if err != nil {
		def = ""
	}
	p, err := f.resolvePoint(ctx, r, project, def, ref)
	if err != nil {
		return nil, statePoint{}, err
	}
	owner, err := r.Owner(ctx, p.Branch.Timeline, p.LSN)
	if err != nil {
		return nil, statePoint{}, err
	}
	v, err := workdb.OpenView(ctx, r, owner, p.LSN)
	if err != nil {
		return nil, statePoint{}, err
	}
	if v.Built {
		fmt.Fprintf(f.IO.ErrOut, "argon: notice: materialised %s from the log; later reads of it reuse it (argon gc drops it)\n", describePoint(p))
	}
	return v.DB, statePoint{p.Branch.Name, p.LSN}, nil
}

// indexSpecs lists c's indexes but _id's, by name, without the fields a
// server adds on its own (v, ns).
func indexSpecs(ctx context.Context, c *mongo.Collection) ([]bson.Raw, error) {
	specs, err := workdb.ListIndexes(ctx, c.Database(), c.Name())
	if err != nil {
		return nil, err
	}
	for i, s := range specs {
		specs[i] = workdb.PortableIndexSpec(s)
	}
	return specs, nil
}

// dirSink writes mongoexport files, each to a temporary name first: a
// failed export leaves no half-written COLLECTION.json behind.
type dirSink struct {
	dir     string
	tmp     *os.File
	w       *bufio.Writer
	written []string
}

func (s *dirSink) describe() string { return s.dir }

func (s *dirSink) target() map[string]any { return map[string]any{"dir": s.dir} }

func (s *dirSink) check(_ context.Context, colls []string, drop bool) error {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return fmt.Errorf("cannot write to %s: %s", s.dir, pathErr(err))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot write to %s: %s", s.dir, pathErr(err))
	}
	if len(entries) > 0 && !drop {
		return withHint(&UsageError{Msg: fmt.Sprintf("%s is not empty", s.dir)},
			"export to an empty or new directory, or add --drop to overwrite the exported collections' files")
	}
	// Fail now, not after the first collection, when it cannot be written.
	probe, err := os.CreateTemp(s.dir, ".argon-export-*")
	if err != nil {
		return fmt.Errorf("cannot write to %s: %s", s.dir, pathErr(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

func (s *dirSink) begin(_ context.Context, coll string) error {
	tmp, err := os.CreateTemp(s.dir, ".argon-export-*")
	if err != nil {
		return fmt.Errorf("cannot write to %s: %s", s.dir, pathErr(err))
	}
	s.tmp, s.w = tmp, bufio.NewWriterSize(tmp, 1<<16)
	return nil
}

func (s *dirSink) write(_ context.Context, doc bson.Raw) error {
	line, err := ejson.Format(doc, true)
	if err != nil {
		return err
	}
	s.w.WriteString(line)
	return s.w.WriteByte('\n')
}

func (s *dirSink) end(_ context.Context, coll string, indexes []bson.Raw) error {
	err := s.w.Flush()
	if cerr := s.tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.tmp.Name())
		return fmt.Errorf("write %s: %w", s.dir, err)
	}
	data := filepath.Join(s.dir, fileStem(coll)+dataSuffix)
	_ = os.Chmod(s.tmp.Name(), 0o644) // CreateTemp makes it 0600
	if err := os.Rename(s.tmp.Name(), data); err != nil {
		os.Remove(s.tmp.Name())
		return err
	}
	s.tmp = nil
	s.written = append(s.written, data)
	meta := filepath.Join(s.dir, fileStem(coll)+metadataSuffix)
	if len(indexes) == 0 {
		if err := os.Remove(meta); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	specs := make([]json.RawMessage, len(indexes))
	for i, spec := range indexes {
		s, err := ejson.Format(spec, true)
		if err != nil {
			return err
		}
		specs[i] = json.RawMessage(s)
	}
	b, err := json.Marshal(map[string]any{"indexes": specs})
	if err != nil {
		return err
	}
	if err := os.WriteFile(meta, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %s", meta, pathErr(err))
	}
	s.written = append(s.written, meta)
	return nil
}

func (s *dirSink) abort() {
	if s.tmp != nil {
		s.tmp.Close()
		os.Remove(s.tmp.Name())
	}
}

// dbSink writes a database on a MongoDB server.
type dbSink struct {
	db    *mongo.Database
	uri   string
	batch []any
	coll  string
	made  []string
}

func (s *dbSink) describe() string {
	return fmt.Sprintf("database %s on %s", s.db.Name(), store.Redact(s.uri))
}

func (s *dbSink) target() map[string]any {
	return map[string]any{"uri": store.Redact(s.uri), "database": s.db.Name()}
}

func (s *dbSink) fail(what string, err error) error {
	return fmt.Errorf("%s %s: %s", what, s.describe(), store.RedactIn(serverMessage(err.Error()), s.uri))
}

func (s *dbSink) check(ctx context.Context, colls []string, drop bool) error {
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return s.fail("cannot list the collections of", err)
	}
	if len(names) > 0 && !drop {
		return withHint(&UsageError{Msg: fmt.Sprintf("%s is not empty", s.describe())},
			"export to a new database, or add --drop to replace the exported collections")
	}
	for _, c := range colls {
		if slices.Contains(names, c) {
			if err := s.db.Collection(c).Drop(ctx); err != nil {
				return s.fail("cannot drop "+c+" in", err)
			}
		}
	}
	return nil
}

func (s *dbSink) begin(_ context.Context, coll string) error {
	s.coll, s.batch = coll, s.batch[:0]
	s.made = append(s.made, coll)
	return nil
}

func (s *dbSink) flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	if _, err := s.db.Collection(s.coll).InsertMany(ctx, s.batch); err != nil {
		return s.fail("cannot write "+s.coll+" in", err)
	}
	s.batch = s.batch[:0]
	return nil
}

func (s *dbSink) write(ctx context.Context, doc bson.Raw) error {
	s.batch = append(s.batch, append(bson.Raw(nil), doc...))
	if len(s.batch) >= 1000 {
		return s.flush(ctx)
	}
	return nil
}

func (s *dbSink) end(ctx context.Context, coll string, indexes []bson.Raw) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	if len(indexes) == 0 {
		return nil
	}
	specs := make(bson.A, len(indexes))
	for i, spec := range indexes {
		specs[i] = spec
	}
	if err := s.db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: specs}}).Err(); err != nil {
		return s.fail("cannot create the indexes of "+coll+" in", err)
	}
	return nil
}

func (s *dbSink) abort() {
	for _, c := range s.made {
		_ = s.db.Collection(c).Drop(context.Background())
	}
}

package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// The directory format is mongoexport's: COLLECTION.json holds one
// canonical Extended JSON document per line. Indexes, which mongoexport
// leaves out, go to COLLECTION.metadata.json as {"indexes": [...]}, as
// mongodump writes them.
const (
	dataSuffix     = ".json"
	metadataSuffix = ".metadata.json"
)

// fileStem is the file name (without .json) a collection is exported to:
// the name with '%' and the characters that separate paths on some system
// ('/', '\\', ':') percent-escaped, so that a collection name (MongoDB
// allows '/' in one) can never write outside the directory.
func fileStem(coll string) string {
	return strings.NewReplacer("%", "%25", "/", "%2F", "\\", "%5C", ":", "%3A").Replace(coll)
}

// collectionOfFile undoes fileStem; a stem that is not a valid escape is
// taken as it is.
func collectionOfFile(stem string) string {
	if c, err := url.PathUnescape(stem); err == nil {
		return c
	}
	return stem
}

// collectionSource is one collection to import: its documents, read one by
// one (nil at the end), and its index specifications.
type collectionSource struct {
	coll    string
	origin  string // the file or namespace, for errors
	open    func(ctx context.Context) (docReader, error)
	indexes func(ctx context.Context) ([]bson.Raw, error)
}

type docReader interface {
	next() (bson.Raw, error)
	close()
}

type importOptions struct {
	f           *Factory
	file        string
	dir         string
	fromURI     string
	fromDB      string
	collection  string
	collections []string
	mode        string
	jsonArray   bool
	message     []string
	branch      string
}

func newImportCmd(f *Factory) *cobra.Command {
	o := &importOptions{f: f}
	cmd := &cobra.Command{
		Use:   "import [FILE | --dir DIR | --from-uri URI --from-db NAME]",
		Short: "Bring documents and indexes in from a file, a directory or a MongoDB database, as one commit",
		Long: `Import documents (and indexes) onto the current branch (or --branch), as
one commit: everything is written or nothing is.

Sources:
  FILE                          a mongoexport file: one Extended JSON document
                                per line, or one JSON array (--jsonArray);
                                the collection is the file's name without
                                .json, or --collection ('-' reads standard
                                input and needs --collection)
  --dir DIR                     every COLLECTION.json in DIR (as argon export
                                --dir writes it), with the indexes of
                                COLLECTION.metadata.json when present
  --from-uri URI --from-db NAME a database on any MongoDB server: every
                                collection's documents and indexes (not
                                one of argon's own: a metadata database
                                or a branch's working database)

--collections limits the import to the named collections. --mode says what
happens to a document whose _id the branch already holds, as in
mongoimport: insert (the default) refuses it and imports nothing; upsert
replaces the document; merge sets the imported fields and keeps the others.

Documents are streamed in batches: memory holds one batch, not the source.
The global --uri and --db name argon's own store, never the source.`,
		Example: `  argon import users.json
  argon import --dir ./dump -m "seed from production snapshot"
  argon import --from-uri mongodb://prod.example.com:27017 --from-db shop --collections users,orders
  argon import fixes.json --collection users --mode merge
  mongoexport --db shop --collection users | argon import - --collection users`,
		Args: rangeArgs(0, 1, "at most one file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.file = args[0]
			}
			return runImport(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.dir, "dir", "", "import every COLLECTION.json in this directory")
	fl.StringVar(&o.fromURI, "from-uri", "", "import from a database on this MongoDB server")
	fl.StringVar(&o.fromDB, "from-db", "", "the database to import with --from-uri")
	fl.StringVarP(&o.collection, "collection", "c", "", "collection to import FILE into (default: FILE's name without .json)")
	fl.StringSliceVar(&o.collections, "collections", nil, "import only these collections (comma-separated)")
	fl.StringVar(&o.mode, "mode", "insert", "what to do with a document whose _id exists: insert (refuse), upsert (replace) or merge (set its fields)")
	fl.BoolVar(&o.jsonArray, "jsonArray", false, "FILE is one JSON array of documents (accepted for mongoimport's habit; arrays are recognised anyway)")
	fl.StringArrayVarP(&o.message, "message", "m", nil, "commit message (several -m make paragraphs, as in git)")
	fl.StringVar(&o.branch, "branch", "", "branch to import into (default: the current branch)")
	return cmd
}

func runImport(ctx context.Context, o *importOptions) error {
	f := o.f
	mode := workdb.ImportMode(o.mode)
	switch mode {
	case workdb.ImportInsert, workdb.ImportUpsert, workdb.ImportMerge:
	default:
		return usageErrorf("invalid --mode %q: want insert, upsert or merge", o.mode)
	}
	given := 0
	for _, s := range []string{o.file, o.dir, o.fromURI} {
		if s != "" {
			given++
		}
	}
	switch {
	case given == 0:
		return usageErrorf("nothing to import: give a FILE, --dir DIR or --from-uri URI --from-db NAME")
	case given > 1:
		return usageErrorf("give one source: a FILE, --dir or --from-uri")
	case o.fromURI != "" && o.fromDB == "":
		return usageErrorf("--from-uri needs --from-db, the database to import")
	case o.fromURI == "" && o.fromDB != "":
		return usageErrorf("--from-db needs --from-uri, the server to import from")
	case o.collection != "" && o.file == "":
		return usageErrorf("--collection names the collection of a FILE; with --dir or --from-uri use --collections")
	case o.jsonArray && o.file == "":
		return usageErrorf("--jsonArray applies to a FILE")
	}
	for _, c := range o.collections {
		if err := workdb.ValidateCollection(c); err != nil {
			return err
		}
	}
	var sources []collectionSource
	var err error
	switch {
	case o.file != "":
		var src collectionSource
		src, err = fileSource(o.file, o.collection, o.jsonArray, f.IO.In)
		if err == nil && len(o.collections) > 0 && !slices.Contains(o.collections, src.coll) {
			return usageErrorf("--collections %s leaves out %s, the only collection of %s", strings.Join(o.collections, ","), src.coll, o.file)
		}
		sources = []collectionSource{src}
	case o.dir != "":
		sources, err = dirSources(o.dir, o.collections)
	default:
		var closeSrc func()
		sources, closeSrc, err = uriSources(ctx, o.fromURI, o.fromDB, o.collections, f.Timeout)
		if closeSrc != nil {
			defer closeSrc()
		}
	}
	if err != nil {
		return err
	}
	if o.file == "-" && f.URI == "" && (f.Workspace == nil || store.ReadServeInfo(f.Workspace.Dir()) == nil) {
		// As insert does: in `argon export ... | argon import -` the
		// writer holds the embedded engine until it is done.
		spool, err := spoolInput(f.IO.In)
		if err != nil {
			return err
		}
		defer os.Remove(spool.Name())
		defer spool.Close()
		sources[0].open = streamOpener(spool, "standard input", o.jsonArray)
	}
	_, b, w, err := f.openBranch(ctx, o.branch)
	if err != nil {
		return err
	}
	lim, err := f.limits(ctx)
	if err != nil {
		return err
	}
	// next walks the sources: each collection's documents in batches,
	// then its indexes.
	i, n, opened := 0, 0, false
	var cur docReader
	defer func() {
		if cur != nil {
			cur.close()
		}
	}()
	origin := "" // the source being read, for errors the write reports
	next := func() (*workdb.ImportBatch, error) {
		for i < len(sources) {
			src := sources[i]
			origin = src.origin
			if !opened {
				r, err := src.open(ctx)
				if err != nil {
					return nil, err
				}
				cur = r
				opened, n = true, 0
			}
			if cur != nil {
				var batch []bson.Raw
				for len(batch) < 1000 {
					d, err := cur.next()
					if err != nil {
						return nil, err
					}
					if d == nil {
						cur.close()
						cur = nil
						break
					}
					if d, err = workdb.WithID(d); err != nil {
						return nil, err
					}
					if err := workdb.CheckDocument(d, lim); err != nil {
						return nil, fmt.Errorf("%s, document %d: %w", src.origin, n+len(batch)+1, err)
					}
					batch = append(batch, d)
				}
				if len(batch) > 0 {
					n += len(batch)
					return &workdb.ImportBatch{Coll: src.coll, Docs: batch}, nil
				}
			}
			// The documents are in: then the indexes.
			i, opened = i+1, false
			specs, err := src.indexes(ctx)
			if err != nil {
				return nil, err
			}
			if len(specs) > 0 {
				return &workdb.ImportBatch{Coll: src.coll, Indexes: specs}, nil
			}
		}
		return nil, nil
	}
	progress := f.IO.Progress("importing into " + b.Name)
	res, err := w.Import(ctx, next, mode, commitInfo(f, o.message), func(n int) { progress.Update(n, "documents") })
	progress.Done()
	if err != nil {
		var de *workdb.DocumentError
		var dk *workdb.DuplicateKeyError
		if origin != "" && (errors.As(err, &de) || errors.As(err, &dk)) {
			return fmt.Errorf("%s: %w", origin, err)
		}
		return uncommittedHint(err, o.branch, b.Name)
	}
	colls := make([]string, 0, len(sources))
	for _, s := range sources {
		colls = append(colls, s.coll)
	}
	if f.JSON {
		type collResult struct {
			Collection string `json:"collection"`
			Inserted   int    `json:"inserted"`
			Replaced   int    `json:"replaced"`
			Unchanged  int    `json:"unchanged"`
			Indexes    int    `json:"indexes"`
		}
		out := []collResult{}
		for _, c := range colls {
			out = append(out, collResult{c, res.Inserted[c], res.Replaced[c], res.Unchanged[c], res.Indexes[c]})
		}
		v := map[string]any{"branch": b.Name, "mode": string(mode), "collections": out, "head": res.Head, "lsn_from": nil, "lsn_to": nil}
		if res.Commit != nil {
			v["lsn_from"], v["lsn_to"] = res.Commit.From, res.Commit.To
		}
		return f.IO.PrintJSON(v)
	}
	for _, c := range colls {
		fmt.Fprintf(f.IO.Out, "%s\t%d inserted\t%d replaced\t%d unchanged\t%d indexes\n", c, res.Inserted[c], res.Replaced[c], res.Unchanged[c], res.Indexes[c])
	}
	if res.Commit == nil {
		fmt.Fprintf(f.IO.ErrOut, "nothing to commit: %s already holds every imported document and index, head %d\n", b.Name, res.Head)
		return nil
	}
	fmt.Fprintf(f.IO.ErrOut, "imported %s into %s: LSN %d..%d, head %d\n", countOf(res.Documents(), "document"), b.Name, res.Commit.From, res.Commit.To, res.Head)
	return nil
}

// countOf writes n with its noun, plural unless n is 1.
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// commitInfo joins -m paragraphs as git does.
func commitInfo(f *Factory, message []string) wal.CommitInfo {
	return wal.CommitInfo{Message: strings.Join(message, "\n\n"), Author: f.Author}
}

// validateDatabaseName applies MongoDB's rules for database names.
func validateDatabaseName(flag, name string) error {
	switch {
	case name == "":
		return usageErrorf("%s is empty", flag)
	case len(name) > 63:
		return usageErrorf("invalid %s %q: a database name is at most 63 bytes", flag, name)
	case strings.ContainsAny(name, "/\\. \"$*<>:|?\x00"):
		return usageErrorf("invalid %s %q: a database name cannot contain any of / \\ . space \" $ * < > : | ? or NUL", flag, name)
	}
	return nil
}

// fileSource reads one mongoexport file ('-': in).
func fileSource(path, coll string, jsonArray bool, in io.Reader) (collectionSource, error) {
	if coll == "" {
		if path == "-" {
			return collectionSource{}, usageErrorf("importing standard input needs --collection")
		}
		coll = collectionOfFile(strings.TrimSuffix(filepath.Base(path), dataSuffix))
	}
	if err := workdb.ValidateCollection(coll); err != nil {
		return collectionSource{}, err
	}
	src := collectionSource{coll: coll, origin: path, indexes: noIndexes}
	if path == "-" {
		src.origin = "standard input"
		src.open = streamOpener(in, src.origin, jsonArray)
		return src, nil
	}
	if _, err := os.Stat(path); err != nil {
		return collectionSource{}, &notFoundError{msg: fmt.Sprintf("cannot read %s: %s", path, pathErr(err))}
	}
	src.open = fileOpener(path, jsonArray)
	return src, nil
}

func noIndexes(context.Context) ([]bson.Raw, error) { return nil, nil }

// pathErr is an os error without the path it repeats.
func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func fileOpener(path string, jsonArray bool) func(context.Context) (docReader, error) {
	return func(context.Context) (docReader, error) {
		fh, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %s", path, pathErr(err))
		}
		r, err := newStreamReader(fh, path, jsonArray)
		if err != nil {
			fh.Close()
			return nil, err
		}
		r.closer = fh
		return r, nil
	}
}

func streamOpener(in io.Reader, origin string, jsonArray bool) func(context.Context) (docReader, error) {
	return func(context.Context) (docReader, error) {
		r, err := newStreamReader(in, origin, jsonArray)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// streamReader decodes a mongoexport stream; its errors name the origin
// and the line.
type streamReader struct {
	dec    *ejson.Decoder
	origin string
	closer io.Closer
}

func newStreamReader(r io.Reader, origin string, jsonArray bool) (*streamReader, error) {
	br := bufio.NewReader(r)
	// A UTF-8 byte order mark, as some editors and exporters write.
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	if jsonArray {
		for {
			c, err := br.ReadByte()
			if err != nil {
				return nil, fmt.Errorf("%s: --jsonArray: the input is empty, not a JSON array", origin)
			}
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				continue
			}
			_ = br.UnreadByte()
			if c != '[' {
				return nil, fmt.Errorf("%s: --jsonArray: the input does not start with '['", origin)
			}
			break
		}
	}
	return &streamReader{dec: ejson.NewDecoder(br), origin: origin}, nil
}

func (s *streamReader) next() (bson.Raw, error) {
	d, err := s.dec.Next()
	if err != nil {
		var se *ejson.SyntaxError
		if errors.As(err, &se) && se.Line == 0 && s.dec.Line() > 0 {
			return nil, fmt.Errorf("%s, line %d: %w", s.origin, s.dec.Line(), err)
		}
		return nil, fmt.Errorf("%s: %w", s.origin, err)
	}
	return d, nil
}

func (s *streamReader) close() {
	if s.closer != nil {
		s.closer.Close()
	}
}

// dirSources lists the collections of an export directory.
func dirSources(dir string, only []string) ([]collectionSource, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &notFoundError{msg: fmt.Sprintf("no directory %s", dir)}
		}
		return nil, fmt.Errorf("cannot read %s: %s", dir, pathErr(err))
	}
	var out []collectionSource
	found := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, dataSuffix) || strings.HasSuffix(name, metadataSuffix) {
			continue
		}
		stem := strings.TrimSuffix(name, dataSuffix)
		coll := collectionOfFile(stem)
		if len(only) > 0 && !slices.Contains(only, coll) {
			continue
		}
		path := filepath.Join(dir, name)
		if err := workdb.ValidateCollection(coll); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		found[coll] = true
		meta := filepath.Join(dir, stem+metadataSuffix)
		out = append(out, collectionSource{
			coll: coll, origin: path, open: fileOpener(path, false),
			indexes: func(context.Context) ([]bson.Raw, error) { return readMetadata(meta) },
		})
	}
	for _, c := range only {
		if !found[c] {
			return nil, &notFoundError{msg: fmt.Sprintf("no %s%s in %s", c, dataSuffix, dir)}
		}
	}
	if len(out) == 0 {
		return nil, &notFoundError{msg: fmt.Sprintf("no COLLECTION%s files in %s", dataSuffix, dir)}
	}
	return out, nil
}

// readMetadata reads the index specifications of a metadata file; a
// missing file means none.
func readMetadata(path string) ([]bson.Raw, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, pathErr(err))
	}
	doc, err := ejson.ParseDocument(path, b)
	if err != nil {
		return nil, err
	}
	v, err := doc.LookupErr("indexes")
	if err != nil {
		return nil, nil
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("%s: \"indexes\" is not an array", path)
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, err
	}
	var specs []bson.Raw
	for i, v := range vals {
		spec, ok := v.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("%s: index %d is not a document", path, i+1)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// uriSources lists the collections of a database on a MongoDB server.
func uriSources(ctx context.Context, uri, db string, only []string, timeout time.Duration) ([]collectionSource, func(), error) {
	if err := validateDatabaseName("--from-db", db); err != nil {
		return nil, nil, err
	}
	s, err := store.Open(ctx, store.Options{URI: uri, ServerSelectionTimeout: timeout})
	if err != nil {
		return nil, nil, err
	}
	closeSrc := s.Close
	src := s.Client.Database(db)
	// Not argon's own databases: a log's records or a working database's
	// marker are no data of the user's (review39: an import of argon_wal
	// brought the log's slots and leases in as collections), and export
	// refuses them as targets the same way.
	where := fmt.Sprintf("database %s on %s", db, store.Redact(uri))
	why, err := wal.ArgonDatabase(ctx, src)
	if err != nil {
		return nil, closeSrc, fmt.Errorf("cannot list the collections of %s: %s", where, store.RedactIn(serverMessage(err.Error()), uri))
	}
	if why != "" {
		return nil, closeSrc, usageErrorf("--from-db %s is argon's own database: %s; import reads only databases of your own", db, why)
	}
	names, err := src.ListCollectionNames(ctx, bson.D{{Key: "type", Value: "collection"}})
	if err != nil {
		return nil, closeSrc, fmt.Errorf("cannot list the collections of %s: %s", where, store.RedactIn(serverMessage(err.Error()), uri))
	}
	sort.Strings(names)
	var out []collectionSource
	found := map[string]bool{}
	for _, coll := range names {
		if strings.HasPrefix(coll, "system.") || len(only) > 0 && !slices.Contains(only, coll) {
			continue
		}
		if err := workdb.ValidateCollection(coll); err != nil {
			return nil, closeSrc, fmt.Errorf("collection %s of %s: %w", coll, where, err)
		}
		found[coll] = true
		c := src.Collection(coll)
		origin := fmt.Sprintf("%s.%s on %s", db, coll, store.Redact(uri))
		out = append(out, collectionSource{
			coll: coll, origin: origin,
			open: func(ctx context.Context) (docReader, error) {
				cur, err := c.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(1000))
				if err != nil {
					return nil, fmt.Errorf("read %s: %s", origin, store.RedactIn(serverMessage(err.Error()), uri))
				}
				return &cursorReader{ctx: ctx, cur: cur, origin: origin, uri: uri}, nil
			},
			indexes: func(ctx context.Context) ([]bson.Raw, error) {
				cur, err := c.Indexes().List(ctx)
				if err != nil {
					return nil, fmt.Errorf("list the indexes of %s: %s", origin, store.RedactIn(serverMessage(err.Error()), uri))
				}
				var specs []bson.Raw
				for cur.Next(ctx) {
					specs = append(specs, append(bson.Raw(nil), cur.Current...))
				}
				return specs, cur.Err()
			},
		})
	}
	for _, c := range only {
		if !found[c] {
			return nil, closeSrc, &notFoundError{msg: fmt.Sprintf("no collection %s in %s", c, where)}
		}
	}
	if len(names) == 0 {
		return nil, closeSrc, &notFoundError{msg: fmt.Sprintf("%s has no collections (is the name right?)", where)}
	}
	return out, closeSrc, nil
}

type cursorReader struct {
	ctx    context.Context
	cur    *mongo.Cursor
	origin string
	uri    string
}

func (c *cursorReader) next() (bson.Raw, error) {
	if c.cur.Next(c.ctx) {
		return append(bson.Raw(nil), c.cur.Current...), nil
	}
	if err := c.cur.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %s", c.origin, store.RedactIn(serverMessage(err.Error()), c.uri))
	}
	return nil, nil
}

func (c *cursorReader) close() { _ = c.cur.Close(context.WithoutCancel(c.ctx)) }

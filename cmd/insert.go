package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

type insertOptions struct {
	f       *Factory
	coll    string
	doc     string
	hasDoc  bool
	file    string
	message []string
	branch  string
}

func newInsertCmd(f *Factory) *cobra.Command {
	o := &insertOptions{f: f}
	cmd := &cobra.Command{
		Use:   "insert COLLECTION [DOCUMENT | ARRAY]",
		Short: "Insert documents as one commit",
		Long: `Insert one document given as Extended JSON v2, an array of documents
(as mongosh's insertMany takes), or many from --file or standard input (a
JSON array of documents, or one document per line). A document without
_id gets an ObjectId, as in mongosh. All the documents
form one commit: they are all written or none is.

Prints the inserted _ids (one per line, relaxed Extended JSON) on stdout,
and the commit's LSNs on stderr.`,
		Example: `  argon insert users '{"_id": 1, "name": "Ada", "born": {"$date": "1815-12-10T00:00:00Z"}}'
  argon insert users '[{"_id": 2, "name": "Bob"}, {"_id": 3, "name": "Cy"}]'
  argon insert users --file users.ndjson -m "import users"
  argon find users --canonical | argon insert users_copy`,
		Args: rangeArgs(1, 2, "a collection and an optional document"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.coll = args[0]
			if len(args) == 2 {
				o.doc, o.hasDoc = args[1], true
			}
			if o.hasDoc && o.file != "" {
				return usageErrorf("give the documents either as an argument or with --file, not both")
			}
			return runInsert(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVarP(&o.file, "file", "f", "", "read documents from this file ('-' for standard input)")
	cmd.Flags().StringArrayVarP(&o.message, "message", "m", nil, "commit message (several -m make paragraphs, as in git)")
	cmd.Flags().StringVar(&o.branch, "branch", "", "branch to write to (default: the current branch)")
	return cmd
}

func runInsert(ctx context.Context, o *insertOptions) error {
	f := o.f
	if err := workdb.ValidateCollection(o.coll); err != nil {
		return err
	}
	var one bson.Raw
	var in io.Reader
	switch {
	case o.hasDoc && strings.HasPrefix(strings.TrimSpace(o.doc), "["):
		// An array of documents as the argument, as mongosh's insertMany
		// takes: read like standard input.
		in = strings.NewReader(o.doc)
	case o.hasDoc:
		d, err := ejson.ParseDocument("document", []byte(o.doc))
		if err != nil {
			return err
		}
		one = d
	default:
		in = f.IO.In
		if o.file != "" && o.file != "-" {
			fh, err := os.Open(o.file)
			if err != nil {
				// As import says it (exit 4).
				if errors.Is(err, fs.ErrNotExist) {
					return &notFoundError{msg: fmt.Sprintf("cannot read %s: %s", o.file, pathErr(err))}
				}
				return fmt.Errorf("cannot read %s: %s", o.file, pathErr(err))
			}
			defer fh.Close()
			in = fh
		} else if f.IO.IsStdinTTY() {
			return usageErrorf("no documents: give one as an argument, or use --file or standard input")
		} else if f.URI == "" && (f.Workspace == nil || store.ReadServeInfo(f.Workspace.Dir()) == nil) {
			// The embedded engine is one process's at a time. In
			// `argon find ... | argon insert ...` the reader holds the
			// workspace until it has written everything, and waits for
			// this process to read it: so read it all first (to a
			// temporary file: memory stays bounded), then take the
			// workspace.
			spool, err := spoolInput(in)
			if err != nil {
				return err
			}
			defer os.Remove(spool.Name())
			defer spool.Close()
			in = spool
		}
	}
	_, b, w, err := f.openBranch(ctx, o.branch)
	if err != nil {
		return err
	}
	branch := b.Name
	lim, err := f.limits(ctx)
	if err != nil {
		return err
	}
	// next hands the documents over in batches, checked: the whole input is
	// never in memory at once.
	var dec *ejson.Decoder
	if in != nil {
		dec = ejson.NewDecoder(in)
	}
	count, single := 0, one != nil
	next := func() ([]bson.Raw, error) {
		var batch []bson.Raw
		if single {
			if one == nil {
				return nil, nil
			}
			batch, one = []bson.Raw{one}, nil
		} else {
			for len(batch) < 1000 {
				d, err := dec.Next()
				if err != nil {
					return nil, err
				}
				if d == nil {
					break
				}
				batch = append(batch, d)
			}
		}
		for i := range batch {
			var err error
			if batch[i], err = workdb.WithID(batch[i]); err != nil {
				return nil, err
			}
			if err := workdb.CheckDocument(batch[i], lim); err != nil {
				if single {
					return nil, err
				}
				return nil, &workdb.DocumentError{Index: count + i, Msg: err.Error()}
			}
		}
		count += len(batch)
		return batch, nil
	}
	msg := strings.Join(o.message, "\n\n")
	var bar *ui.Progress // none for one document
	if !single {
		bar = f.IO.Progress("inserting into " + o.coll)
	}
	res, err := w.InsertStream(ctx, o.coll, next, wal.CommitInfo{Message: msg, Author: f.Author}, func(n int) { bar.Update(n, "documents") })
	bar.Done()
	if err != nil {
		return uncommittedHint(err, o.branch, branch)
	}
	if len(res.IDs) == 0 {
		return usageErrorf("no documents to insert")
	}
	if f.JSON {
		ids := make([]json.RawMessage, len(res.IDs))
		for i, id := range res.IDs {
			if ids[i], err = ejson.FormatValue(id, true); err != nil {
				return err
			}
		}
		return f.IO.PrintJSON(map[string]any{
			"branch": branch, "collection": o.coll, "inserted": len(ids), "ids": ids,
			"lsn_from": res.Commit.From, "lsn_to": res.Commit.To, "head": res.Head,
		})
	}
	for _, id := range res.IDs {
		s, err := ejson.FormatValue(id, false)
		if err != nil {
			return err
		}
		fmt.Fprintln(f.IO.Out, string(s))
	}
	fmt.Fprintf(f.IO.ErrOut, "inserted %d into %s on %s: LSN %d..%d, head %d\n", len(res.IDs), o.coll, branch, res.Commit.From, res.Commit.To, res.Head)
	return nil
}

// spoolInput copies r to a temporary file and returns it, rewound.
func spoolInput(r io.Reader) (*os.File, error) {
	tmp, err := os.CreateTemp("", "argon-input-*.json")
	if err != nil {
		return nil, fmt.Errorf("buffer standard input: %w", err)
	}
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("buffer standard input: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return tmp, nil
}

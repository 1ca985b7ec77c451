package commit

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// Failed imports put back what they changed and nothing else (found by a
// review of the failed-write repair, each failing on its first version).

func importDoc(id string, e int) bson.Raw {
	return mustMarshal(bson.D{{Key: "_id", Value: id}, {Key: "e", Value: e}})
}

// importSetup makes a branch whose collection c holds the committed
// documents docs.
func importSetup(t *testing.T, docs ...bson.Raw) (*Protocol, *wal.Repo, *wal.Branch, *workdb.Branch) {
	t.Helper()
	_, r, b := waltest.Project(t)
	p := New()
	w := p.Open(r, b)
	if _, err := w.Insert(context.Background(), "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	return p, r, b, w
}

// importing runs an import of batches (one per call of next) in mode and
// checks that it fails on a duplicate key.
func importing(t *testing.T, w *workdb.Branch, mode workdb.ImportMode, batches ...*workdb.ImportBatch) {
	t.Helper()
	next := func() (*workdb.ImportBatch, error) {
		if len(batches) == 0 {
			return nil, nil
		}
		b := batches[0]
		batches = batches[1:]
		return b, nil
	}
	_, err := w.Import(context.Background(), next, mode, wal.CommitInfo{}, nil)
	if !errors.As(err, new(*workdb.DuplicateKeyError)) {
		t.Fatalf("import: %v, want a duplicate-key error", err)
	}
}

// changes returns the branch's uncommitted changes, one line each.
func changes(t *testing.T, w *workdb.Branch) string {
	t.Helper()
	ch, _, err := w.Changes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range ch {
		out = append(out, c.Kind+" "+workdb.FormatValue(c.ID))
	}
	return strings.Join(out, "; ")
}

// An upsert import replaces a committed document (a delete, then an
// insert) whose insert breaks a unique index: the repair puts the
// replaced document back. The duplicate-key error names it, and it was
// taken out of the repair: the write released a clean void over a
// database that had lost a committed document.
func TestFailedUpsertImportPutsReplacedBack(t *testing.T) {
	p, r, b, w := importSetup(t, importDoc("a", 1), importDoc("b", 2))
	if _, _, _, err := w.CreateIndex(context.Background(), "c", mustMarshal(bson.D{{Key: "e", Value: 1}}), workdb.IndexOptions{Unique: true}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	importing(t, p.Open(r, b), workdb.ImportUpsert, &workdb.ImportBatch{Coll: "c", Docs: []bson.Raw{importDoc("a", 2)}})
	if got := strings.Join(ids(t, p.Open(r, b)), ","); got != "a,b" {
		t.Errorf("branch holds %s, want a,b", got)
	}
	if ch := changes(t, p.Open(r, b)); ch != "" {
		t.Errorf("uncommitted changes after the failed import: %s", ch)
	}
}

// An application created index e_1 and did not commit it; an import whose
// dump holds the same index (nothing to do) fails on a document: the
// application's index stays. The import touched it before comparing, and
// the repair dropped it. Since review31 the import is refused before it
// writes anything (the collection's indexes are not the committed ones:
// it would be evaluated on the application's index), and the index stays
// all the same.
func TestFailedImportKeepsApplicationsIndex(t *testing.T) {
	p, r, b, w := importSetup(t, importDoc("a", 1))
	ctx := context.Background()
	if _, err := w.DB.Collection("c").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "e", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	have, err := workdb.ListIndexes(ctx, w.DB, "c")
	if err != nil {
		t.Fatal(err)
	}
	batches := []*workdb.ImportBatch{{Coll: "c", Indexes: have}, {Coll: "c", Docs: []bson.Raw{importDoc("a", 5)}}} // a exists
	_, err = p.Open(r, b).Import(ctx, func() (*workdb.ImportBatch, error) {
		if len(batches) == 0 {
			return nil, nil
		}
		next := batches[0]
		batches = batches[1:]
		return next, nil
	}, workdb.ImportInsert, wal.CommitInfo{}, nil)
	var ue *workdb.UncommittedError
	if !errors.As(err, &ue) || !ue.Indexes || ue.Coll != "c" {
		t.Fatalf("import over the application's index: %v, want the refusal of c's uncommitted index change", err)
	}
	if ch := changes(t, p.Open(r, b)); ch != `added "e_1"` {
		t.Errorf("uncommitted changes after the failed import: %q, want the application's index e_1", ch)
	}
}

// A failed import that redefined a committed index (dropped it, created
// its own definition) gets the committed definition back: imports used to
// rebuild, and the keyed repair left a redefinition in place.
func TestFailedImportRestoresRedefinedIndex(t *testing.T) {
	p, r, b, w := importSetup(t, importDoc("a", 1))
	if _, _, _, err := w.CreateIndex(context.Background(), "c", mustMarshal(bson.D{{Key: "e", Value: 1}}), workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	unique := bson.Raw(mustMarshal(bson.D{{Key: "key", Value: bson.D{{Key: "e", Value: 1}}}, {Key: "name", Value: "e_1"}, {Key: "unique", Value: true}}))
	importing(t, p.Open(r, b), workdb.ImportInsert,
		&workdb.ImportBatch{Coll: "c", Indexes: []bson.Raw{unique}},
		&workdb.ImportBatch{Coll: "c", Docs: []bson.Raw{importDoc("a", 5)}}) // a exists
	if ch := changes(t, p.Open(r, b)); ch != "" {
		t.Errorf("uncommitted changes after the failed import: %s, want none (e_1 as committed)", ch)
	}
}

package commit

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// An application created index e_1 and did not commit it. An import whose
// dump holds the same index (nothing to do) and then fails on a document
// must leave the application's index alone: the import did not change it.
func TestFailedImportKeepsApplicationsIndex(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	if _, err := w.Insert(ctx, "c", []bson.Raw{importDoc("a", 1)}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("c").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "e", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	have, _ := workdb.ListIndexes(ctx, w.DB, "c")
	t.Logf("indexes before: %v", have)
	failingImport(t, p.Open(r, b), have)
	after, _ := workdb.ListIndexes(ctx, w.DB, "c")
	if len(after) != 1 {
		t.Fatalf("indexes after the failed import: %v, want the application's e_1", after)
	}
}

// A failed import that redefined a committed index (dropped it, created
// its own definition) must have it put back as committed.
func TestFailedImportRestoresRedefinedIndex(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	if _, err := w.Insert(ctx, "c", []bson.Raw{importDoc("a", 1)}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.CreateIndex(ctx, "c", mustMarshal(bson.D{{Key: "e", Value: 1}}), workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	spec := bson.Raw(mustMarshal(bson.D{{Key: "key", Value: bson.D{{Key: "e", Value: 1}}}, {Key: "name", Value: "e_1"}, {Key: "unique", Value: true}}))
	failingImport(t, p.Open(r, b), []bson.Raw{spec})
	after, _ := workdb.ListIndexes(ctx, w.DB, "c")
	ch, _, _ := p.Open(r, b).Changes(ctx)
	for _, c := range ch {
		t.Logf("status: %s index=%v %v", c.Kind, c.Index, c.ID)
	}
	if len(ch) != 0 {
		t.Fatalf("indexes after the failed import: %v; %d uncommitted changes, want none", after, len(ch))
	}
}

// failingImport imports into collection c the index specifications specs,
// then a document whose _id c holds already (insert mode): the import
// must fail on that duplicate, after it changed the indexes.
func failingImport(t *testing.T, w *workdb.Branch, specs []bson.Raw) {
	t.Helper()
	step := 0
	next := func() (*workdb.ImportBatch, error) {
		step++
		switch step {
		case 1:
			return &workdb.ImportBatch{Coll: "c", Indexes: specs}, nil
		case 2:
			return &workdb.ImportBatch{Coll: "c", Docs: []bson.Raw{importDoc("a", 5)}}, nil
		}
		return nil, nil
	}
	_, err := w.Import(context.Background(), next, workdb.ImportInsert, wal.CommitInfo{}, nil)
	if !errors.As(err, new(*workdb.DuplicateKeyError)) {
		t.Fatalf("import of a duplicate _id: %v, want a duplicate-key error", err)
	}
}

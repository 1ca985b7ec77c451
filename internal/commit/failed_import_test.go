package commit

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

func importDoc(id string, e int) bson.Raw {
	return mustMarshal(bson.D{{Key: "_id", Value: id}, {Key: "e", Value: e}})
}

// An import --mode upsert that replaces a committed document (delete, then
// insert) whose insert breaks a unique index: the replaced document must be
// put back by the repair, never left deleted as an application's change.
func TestFailedUpsertImportPutsReplacedBack(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	if _, err := w.Insert(ctx, "c", []bson.Raw{importDoc("a", 1), importDoc("b", 2)}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.CreateIndex(ctx, "c", mustMarshal(bson.D{{Key: "e", Value: 1}}), workdb.IndexOptions{Unique: true}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	sent := false
	next := func() (*workdb.ImportBatch, error) {
		if sent {
			return nil, nil
		}
		sent = true
		return &workdb.ImportBatch{Coll: "c", Docs: []bson.Raw{importDoc("a", 2)}}, nil
	}
	_, err := p.Open(r, b).Import(ctx, next, workdb.ImportUpsert, wal.CommitInfo{}, nil)
	t.Logf("import: %v", err)
	if err == nil {
		t.Fatal("import succeeded")
	}
	for n := int64(1); n <= 5; n++ {
		if s, _ := r.ReadSlot(ctx, b.Timeline, n); s != nil {
			t.Logf("slot %d: kind=%s dirty=%v known=%v keys=%d", n, s.Kind, s.Dirty, s.KeysKnown, len(s.Keys))
		}
	}
	got := ids(t, p.Open(r, b))
	ch, _, err := p.Open(r, b).Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ch {
		t.Logf("change: %s %s %v", c.Kind, c.Coll, c.ID)
	}
	if len(got) != 2 || len(ch) != 0 {
		t.Fatalf("branch holds %v and %d uncommitted changes, want [a b] and none", got, len(ch))
	}
}

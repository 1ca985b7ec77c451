package workdb_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// A project of log format 1 (one document per spilled entry) reads as it
// did: folds, key lookups and fsck see its entries. Its next spilled
// commit raises it to format 2 (chunks), and the log then reads both.
func TestFormatOneLogStillReads(t *testing.T) {
	srv, r, main := waltest.Project(t)
	ctx := context.Background()
	meta := srv.Client.Database(srv.DB)
	insert := func(r *wal.Repo, prefix string) {
		t.Helper()
		w := commit.New().Open(r, main)
		w.ScanReads = srv.Embedded || srv.FerretDB
		docs := make([]bson.Raw, 100) // over the inline limit: spilled
		for i := range docs {
			docs[i], _ = bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("%s%02d", prefix, i)}, {Key: "n", Value: i}})
		}
		if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	insert(r, "a")
	want, err := r.Fold(ctx, main.Timeline, 100, "")
	if err != nil {
		t.Fatal(err)
	}

	// Rewrite the log as format 1 wrote it.
	var entries []wal.Entry
	if err := r.EachEntry(ctx, main.Timeline, 0, 100, "", func(e *wal.Entry) error {
		entries = append(entries, *e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 100 {
		t.Fatalf("%d entries, want 100", len(entries))
	}
	if _, err := meta.Collection("entries").DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := meta.Collection("entries").InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%s:%012d:%s", e.TL, e.LSN, e.Token)},
			{Key: "tl", Value: e.TL}, {Key: "lsn", Value: e.LSN}, {Key: "op", Value: e.Op}, {Key: "coll", Value: e.Coll},
			{Key: "kb", Value: bson.Binary{Data: e.KeyBytes}}, {Key: "doc", Value: bson.Binary{Data: e.Doc}}, {Key: "token", Value: e.Token}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := meta.Collection("projects").UpdateOne(ctx, bson.D{{Key: "_id", Value: "p"}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "format", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}

	old := wal.Open(srv.Client, srv.DB) // knows nothing of the project yet
	if p, err := old.Project(ctx, "p"); err != nil || p.Format != 0 {
		t.Fatalf("project of format 1: %+v, %v", p, err)
	}
	same := func(r *wal.Repo, at int64, want *wal.State) {
		t.Helper()
		got, err := r.Fold(ctx, main.Timeline, at, "")
		if err != nil {
			t.Fatal(err)
		}
		g, w := got.Docs("c"), want.Docs("c")
		if len(g) != len(w) {
			t.Fatalf("fold at %d: %d documents, want %d", at, len(g), len(w))
		}
		for i := range g {
			if !bytes.Equal(g[i], w[i]) {
				t.Fatalf("fold at %d, document %d: %s, want %s", at, i, g[i], w[i])
			}
		}
	}
	same(old, 100, want)
	key := func(id string) []byte {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		return wal.KeyOf(bson.Raw(raw).Lookup("_id"))
	}
	if got, _, err := old.LatestAtOrBelow(ctx, main.Timeline, 100, "c", [][]byte{key("a07"), key("zz")}, false); err != nil || len(got) != 1 || got[string(key("a07"))].LSN != 8 {
		t.Fatalf("latest entry of a07 in a format-1 log: %v, %v", got, err)
	}

	// The next spilled commit raises the format; both layouts read.
	insert(old, "b")
	if p, err := old.Project(ctx, "p"); err != nil || p.Format != wal.Format {
		t.Fatalf("after a spilled commit: %+v, %v; want format %d", p, err, wal.Format)
	}
	full, err := old.Fold(ctx, main.Timeline, 200, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := full.Len("c"); n != 200 {
		t.Fatalf("fold over both layouts: %d documents, want 200", n)
	}
	same(old, 100, want)
	if n, err := meta.Collection("entries").CountDocuments(ctx, bson.D{}); err != nil || n != 101 {
		t.Fatalf("entries holds %d documents (%v), want 100 of format 1 and one chunk", n, err)
	}
	for _, id := range []string{"a42", "b42"} {
		got, _, err := old.LatestAtOrBelow(ctx, main.Timeline, 200, "c", [][]byte{key(id)}, false)
		if err != nil || len(got) != 1 {
			t.Fatalf("latest entry of %s: %v, %v", id, got, err)
		}
	}
	_, problems, err := old.Check(ctx, "p")
	if err != nil || len(problems) != 0 {
		t.Fatalf("fsck of a log of both layouts: %v, %v", problems, err)
	}
}

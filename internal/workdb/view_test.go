package workdb_test

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// A read of one collection at a past state materialises that collection
// alone, with its indexes; a second reader of the state reuses it; fsck
// finds a view that differs from the log and repair drops it, after which
// the next read builds it again.
func TestCollViews(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	for i, coll := range []string{"a", "b"} {
		docs := []bson.Raw{}
		for j := 0; j < 3; j++ {
			d, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(j)}, {Key: "i", Value: int32(i)}})
			docs = append(docs, d)
		}
		if _, err := w.Insert(ctx, coll, docs, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := bson.Marshal(bson.D{{Key: "i", Value: 1}})
	if _, _, _, err := w.CreateIndex(ctx, "a", keys, workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	var built []string
	v := workdb.OpenCollViews(r, b.Timeline, head.LSN)
	v.Built = func(coll string, _ int64) { built = append(built, coll) }
	docs, err := v.Find(ctx, "a", workdb.Query{})
	if err != nil || len(docs) != 3 {
		t.Fatalf("find a: %d documents, %v", len(docs), err)
	}
	specs, err := v.Indexes(ctx, "a")
	if err != nil || len(specs) != 1 || specs[0].Lookup("name").StringValue() != "i_1" {
		t.Fatalf("indexes of a: %v, %v", specs, err)
	}
	if fmt.Sprint(built) != "[a]" {
		t.Fatalf("materialised %q, want [a]", built)
	}
	// Only a's documents were materialised.
	names, err := srv.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var viewDB string
	for _, n := range names {
		if len(n) > len(r.DatabasePrefix()+"-view-") && n[:len(r.DatabasePrefix()+"-view-")] == r.DatabasePrefix()+"-view-" {
			if viewDB != "" {
				t.Fatalf("two view databases: %s, %s", viewDB, n)
			}
			viewDB = n
		}
	}
	colls, err := srv.Client.Database(viewDB).ListCollectionNames(ctx, bson.D{})
	sort.Strings(colls)
	if err != nil || fmt.Sprint(colls) != "[_argon a]" {
		t.Fatalf("view database holds %v, %v; want [_argon a] (its owner record, and a)", colls, err)
	}
	// Another reader reuses it.
	v2 := workdb.OpenCollViews(r, b.Timeline, head.LSN)
	v2.Built = func(coll string, _ int64) { t.Fatalf("a second reader materialised %q", coll) }
	if n, err := v2.Count(ctx, "a", nil); err != nil || n != 3 {
		t.Fatalf("count a: %d, %v", n, err)
	}
	// fsck finds a view that differs, and repair drops it.
	if _, err := srv.Client.Database(viewDB).Collection("a").InsertOne(ctx, bson.D{{Key: "_id", Value: "extra"}}); err != nil {
		t.Fatal(err)
	}
	tls := map[string]bool{b.Timeline: true}
	problems, _, err := workdb.VerifyViews(ctx, r, tls, false)
	want := fmt.Sprintf("view of %s@%d (%s) differs from the log: 0 documents missing, 1 extra, 0 different", b.Timeline, head.LSN, viewDB)
	if err != nil || fmt.Sprint(problems) != "["+want+"]" {
		t.Fatalf("fsck: %q, %v; want %q", problems, err, want)
	}
	if _, repaired, err := workdb.VerifyViews(ctx, r, tls, true); err != nil || len(repaired) != 1 {
		t.Fatalf("fsck --repair: %q, %v", repaired, err)
	}
	built = nil
	v3 := workdb.OpenCollViews(r, b.Timeline, head.LSN)
	v3.Built = func(coll string, _ int64) { built = append(built, coll) }
	if n, err := v3.Count(ctx, "a", nil); err != nil || n != 3 || fmt.Sprint(built) != "[a]" {
		t.Fatalf("after repair: count %d, %v, materialised %q", n, err, built)
	}
}

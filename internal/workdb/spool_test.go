package workdb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// A read's documents past the spool's memory go to a file and come back
// in order, the same as a read held in memory; a read that starts again
// (Reset) forgets what the first try found, in memory and in the file.
func TestDocsSpillAndReset(t *testing.T) {
	t.Parallel()
	doc := func(i int) bson.Raw {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: fmt.Sprintf("%0*d", i%300, i)}})
		return raw
	}
	d := &workdb.Docs{Spill: true, Memory: 1000}
	defer d.Close()
	check := func(from, n int) {
		t.Helper()
		if d.Len() != n {
			t.Fatalf("Len %d, want %d", d.Len(), n)
		}
		i := from
		if err := d.Each(func(got bson.Raw) error {
			if want := doc(i); string(got) != string(want) {
				return fmt.Errorf("document %d: %s, want %s", i-from, got, want)
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i != from+n {
			t.Fatalf("Each gave %d documents, want %d", i-from, n)
		}
		all, err := d.All()
		if err != nil || len(all) != n {
			t.Fatalf("All: %d documents, %v; want %d", len(all), err, n)
		}
		for j, got := range all {
			if string(got) != string(doc(from+j)) {
				t.Fatalf("All, document %d: %s", j, got)
			}
		}
	}
	for i := 0; i < 200; i++ { // well past 1,000 bytes
		if err := d.Add(doc(i)); err != nil {
			t.Fatal(err)
		}
	}
	check(0, 200)
	// Each may run twice, and Adds after it append.
	check(0, 200)
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	check(0, 0)
	for i := 500; i < 530; i++ {
		if err := d.Add(doc(i)); err != nil {
			t.Fatal(err)
		}
	}
	check(500, 30)
	// Without Spill nothing goes to a file, whatever the size.
	m := &workdb.Docs{}
	for i := 0; i < 200; i++ {
		if err := m.Add(doc(i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := m.All()
	if err != nil || len(all) != 200 || string(all[199]) != string(doc(199)) {
		t.Fatalf("in memory: %d documents, %v", len(all), err)
	}
}

// A read of a branch and of a past state into a spool that spills gives
// the documents a read held in memory gives, in the same order, and a
// spool that held another read's documents holds only the new read's.
func TestFindToSpills(t *testing.T) {
	t.Parallel()
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	var docs []bson.Raw
	for i := 0; i < 300; i++ {
		d, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: fmt.Sprintf("value %d", i)}})
		docs = append(docs, d)
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	sort, _ := bson.Marshal(bson.D{{Key: "_id", Value: -1}})
	q := workdb.Query{Sort: sort, Skip: 3}
	want, err := w.Find(ctx, "c", q)
	if err != nil || len(want) != 297 {
		t.Fatalf("find: %d documents, %v", len(want), err)
	}
	readers := map[string]interface {
		FindTo(context.Context, string, workdb.Query, *workdb.Docs) error
	}{"head": w, "past state": workdb.OpenCollViews(r, b.Timeline, head.LSN)}
	for name, rd := range readers {
		d := &workdb.Docs{Spill: true, Memory: 2000}
		for i := 0; i < 50; i++ { // an earlier read's documents
			_ = d.Add(docs[i])
		}
		if err := rd.FindTo(ctx, "c", q, d); err != nil {
			t.Fatal(err)
		}
		got, err := d.All()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d documents, want %d", name, len(got), len(want))
		}
		for i := range want {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("%s: document %d is %s, want %s", name, i, got[i], want[i])
			}
		}
		d.Close()
	}
}

// Status compares the log with the documents its scan read, kept in
// memory, in a spool's file, or (past the bound of what a scan keeps)
// read again: the changes are the same each way.
func TestChangesFromTheScanKept(t *testing.T) {
	t.Parallel()
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	for _, coll := range []string{"a", "b"} {
		var docs []bson.Raw
		for i := 0; i < 200; i++ {
			d, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: fmt.Sprintf("%s %d", coll, i)}})
			docs = append(docs, d)
		}
		if _, err := w.Insert(ctx, coll, docs, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	// An application's changes: one of each kind in a, an insert into a
	// new collection c.
	a := w.DB.Collection("a")
	if _, err := a.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(7)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "changed"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(150)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(900)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "new"}}); err != nil {
		t.Fatal(err)
	}
	const want = `[a added {"$numberInt":"900"} a deleted {"$numberInt":"150"} a modified {"$numberInt":"7"} c added "new"]`
	for _, c := range []struct {
		name        string
		spool, keep int
	}{{"in memory", 4 << 20, 256 << 20}, {"in a file", 500, 256 << 20}, {"read again", 4 << 20, 1000}} {
		changes, _, err := w.Changes(workdb.WithReadMemory(ctx, workdb.ReadMemory{Spool: c.spool, Keep: c.keep}))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range changes {
			got = append(got, ch.Coll, ch.Kind, ch.ID.String())
		}
		if fmt.Sprint(got) != want {
			t.Errorf("%s: changes %v, want %s", c.name, got, want)
		}
	}
}

// The comparison of a changed database with the log is right when the
// stream of the committed state starts again (an image found damaged
// after a collection was passed on): from where it was, over an image
// whose chunks have checksums of their own; from nothing (Reset) over
// one written before they had. The changes are those found over the
// intact image.
func TestChangesOverADamagedImage(t *testing.T) {
	for _, checked := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunk checksums %v", checked), func(t *testing.T) {
			h := newR7(t)
			img := r26History(h)
			if !checked {
				if _, err := h.r.DB.Collection("images").UpdateOne(h.ctx, bson.D{{Key: "_id", Value: img.ID}},
					bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
					t.Fatal(err)
				}
			}
			a, b := h.w.DB.Collection("a"), h.w.DB.Collection("b")
			if _, err := a.UpdateOne(h.ctx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.DeleteOne(h.ctx, bson.D{{Key: "_id", Value: int32(2)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.InsertOne(h.ctx, bson.D{{Key: "_id", Value: int32(500)}}); err != nil {
				t.Fatal(err)
			}
			list := func() string {
				t.Helper()
				changes, _, err := h.w.Changes(h.ctx)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, ch := range changes {
					got = append(got, ch.Coll+" "+ch.Kind+" "+ch.ID.String()+" "+ch.Doc.String()+" "+ch.Was.String())
				}
				return strings.Join(got, "\n")
			}
			intact := list()
			if strings.Count(intact, "\n") != 2 {
				t.Fatalf("over the intact image: changes\n%s\nwant 3", intact)
			}
			r26Damage(h, img, "b")
			if got := list(); got != intact {
				t.Fatalf("over the damaged image: changes\n%s\nwant\n%s", got, intact)
			}
		})
	}
}

// The scan of a status keeps the documents of the collections it finds
// changed only: those with the committed fingerprint are let go of as
// soon as they are read. The spools share one memory bound, the rest of
// their documents in temporary files; with no temporary directory the
// scan keeps nothing, and status and commit still see the change (they
// read the database again).
func TestStatusScanKeepsChangedCollectionsOnly(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	for _, coll := range []string{"a", "b", "c"} {
		var docs []bson.Raw
		for i := 0; i < 100; i++ {
			d, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: fmt.Sprintf("%s %d %040d", coll, i, i)}})
			docs = append(docs, d)
		}
		if _, err := w.Insert(ctx, coll, docs, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.DB.Collection("b").DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(5)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(7)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "app"}}}}); err != nil {
		t.Fatal(err)
	}
	m, err := w.Marker(ctx)
	if err != nil || m == nil || m.Sums == nil {
		t.Fatalf("marker %v, %v", m, err)
	}
	ctx = workdb.WithReadMemory(ctx, workdb.ReadMemory{Spool: 1500}) // shared by the spools: a few documents
	kept, same, mem, ok, err := workdb.ScanKept(ctx, w.DB, m.Sums)
	if err != nil || !ok {
		t.Fatalf("scan kept nothing: %v", err)
	}
	if fmt.Sprint(kept) != "[b c]" || fmt.Sprint(same) != "[a]" {
		t.Errorf("kept the documents of %v, found %v unchanged; want [b c] and [a]", kept, same)
	}
	if mem > 1500 {
		t.Errorf("the spools hold %d bytes in memory, past the shared 1500", mem)
	}
	changes, _, err := w.Changes(ctx)
	if err != nil || len(changes) != 2 || changes[0].Coll != "b" || changes[0].Kind != "deleted" || changes[1].Coll != "c" || changes[1].Kind != "modified" {
		t.Fatalf("changes %v, %v; want b's 5 deleted and c's 7 modified", changes, err)
	}
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
	if _, _, _, ok, err := workdb.ScanKept(ctx, w.DB, m.Sums); err != nil || ok {
		t.Fatalf("without a temporary directory the scan kept its documents (%v) or failed: %v", ok, err)
	}
	if changes, _, err := w.Changes(ctx); err != nil || len(changes) != 2 {
		t.Fatalf("without a temporary directory: changes %v, %v", changes, err)
	}
	if _, _, _, err := w.CommitChanges(ctx, wal.CommitInfo{}, workdb.Limits{}); err != nil {
		t.Fatalf("commit without a temporary directory: %v", err)
	}
	if changes, _, err := w.Changes(ctx); err != nil || len(changes) != 0 {
		t.Fatalf("after the commit: changes %v, %v", changes, err)
	}
}

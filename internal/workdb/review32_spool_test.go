package workdb_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

func r32SpoolDoc(i, size int) bson.Raw {
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "p", Value: strings.Repeat("x", size)}})
	return raw
}

// r32Check reads d by Each and by All and compares both with want.
func r32Check(t *testing.T, d *workdb.Docs, want []bson.Raw) {
	t.Helper()
	if d.Len() != len(want) {
		t.Fatalf("Len %d, want %d", d.Len(), len(want))
	}
	i := 0
	if err := d.Each(func(doc bson.Raw) error {
		if i >= len(want) || string(doc) != string(want[i]) {
			return fmt.Errorf("Each: document %d differs", i)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Fatalf("Each gave %d documents, want %d", i, len(want))
	}
	all, err := d.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("All gave %d documents, want %d", len(all), len(want))
	}
	for j := range all {
		if string(all[j]) != string(want[j]) {
			t.Fatalf("All: document %d differs", j)
		}
	}
}

// What held (passes): Adds after an Each (and after an All) append, in
// memory and in the file; a Reset after the spool spilled, then Adds,
// gives only the new documents; a document of exactly the memory's size
// stays in memory and the next goes to the file; a first document larger
// than the memory (and one of 16 MiB) goes to the file and reads back;
// documents All returned from memory keep their bytes through later
// Adds; Close then Add works.
func TestReview32DocsInterplay(t *testing.T) {
	t.Parallel()
	d := &workdb.Docs{Spill: true, Memory: 1000}
	defer d.Close()
	var want []bson.Raw
	add := func(doc bson.Raw) {
		t.Helper()
		if err := d.Add(doc); err != nil {
			t.Fatal(err)
		}
		want = append(want, doc)
	}
	for i := 0; i < 3; i++ {
		add(r32SpoolDoc(i, 100))
	}
	r32Check(t, d, want)
	memAll, _ := d.All()
	memCopy := make([]string, len(memAll))
	for i, m := range memAll {
		memCopy[i] = string(m)
	}
	for i := 3; i < 40; i++ { // spills
		add(r32SpoolDoc(i, 50+i*7))
		if i%9 == 0 {
			r32Check(t, d, want) // Each between Adds
		}
	}
	r32Check(t, d, want)
	for i, m := range memAll {
		if string(m) != memCopy[i] {
			t.Fatalf("document %d All returned changed under later Adds", i)
		}
	}
	// Reset after the spill, then a few documents.
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	want = nil
	r32Check(t, d, want)
	for i := 100; i < 105; i++ {
		add(r32SpoolDoc(i, 10))
	}
	r32Check(t, d, want)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	want = nil
	add(r32SpoolDoc(1, 10))
	r32Check(t, d, want)

	// The boundary: a document that fills the memory exactly.
	e := &workdb.Docs{Spill: true, Memory: 1000}
	defer e.Close()
	exact := r32SpoolDoc(0, 10)
	exact = r32SpoolDoc(0, 10+1000-len(exact))
	if len(exact) != 1000 {
		t.Fatalf("document of %d bytes", len(exact))
	}
	want = []bson.Raw{exact, r32SpoolDoc(1, 1)}
	for _, doc := range want {
		if err := e.Add(doc); err != nil {
			t.Fatal(err)
		}
	}
	r32Check(t, e, want)

	// A first document past the memory (4 MiB, the default), and one of
	// 16 MiB.
	g := &workdb.Docs{Spill: true}
	defer g.Close()
	big := r32SpoolDoc(0, 16*1024*1024-40)
	want = []bson.Raw{r32SpoolDoc(9, 5<<20), big, r32SpoolDoc(1, 3)}
	for _, doc := range want {
		if err := g.Add(doc); err != nil {
			t.Fatal(err)
		}
	}
	r32Check(t, g, want)
}

// A status (Changes) of a working database nobody changed, whose
// collection is larger than the spool's memory, when the system's
// temporary directory cannot take a file: before this session's spools
// the scan held nothing and status answered "no changes"; now the scan
// keeps its documents before it knows whether they differ, the spool's
// temporary file cannot be made, and status (and checkout, merge, branch
// delete, export, which ask the same question) fails; so does argon
// commit of an application's change. argon find of an answer past 4 MiB
// fails the same way. Fails now.
func TestReview32StatusWithoutATemporaryDirectory(t *testing.T) {
	h := newR7(t)
	var docs []bson.D
	for i := 0; i < 50; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "p", Value: strings.Repeat("x", 200)}})
	}
	h.insert("c", docs...)
	ctx := workdb.WithReadMemory(h.ctx, workdb.ReadMemory{Spool: 2000}) // stands for 4 MiB: a collection past it
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
	if _, err := os.CreateTemp("", "x"); err == nil {
		t.Fatal("the temporary directory takes files")
	}
	changes, _, err := h.w.Changes(ctx)
	if err != nil {
		t.Errorf("status of an unchanged database without a temporary directory: %v", err)
	} else if len(changes) != 0 {
		t.Errorf("changes %d", len(changes))
	}
	// An application's change: the comparison could read the database
	// again (diffState), as it does past keepMax.
	if _, err := h.w.DB.Collection("c").DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(3)}}); err != nil {
		t.Fatal(err)
	}
	changes, _, err = h.w.Changes(ctx)
	if err != nil {
		t.Errorf("status of a changed database without a temporary directory: %v", err)
	} else if len(changes) != 1 {
		t.Errorf("changes %d, want 1", len(changes))
	}
	if _, _, _, err := h.w.CommitChanges(ctx, wal.CommitInfo{}, workdb.Limits{}); err != nil {
		t.Errorf("commit of the change without a temporary directory: %v", err)
	}
	d := &workdb.Docs{Spill: true, Memory: 2000}
	defer d.Close()
	if err := h.w.FindTo(ctx, "c", workdb.Query{}, d); err != nil {
		t.Errorf("find without a temporary directory: %v", err)
	}
}

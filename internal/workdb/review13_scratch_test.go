package workdb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// r13Branch opens branch b of r as the CLI does on the embedded engine,
// its updates of many documents evaluated in sc.
func r13Branch(t *testing.T, r *wal.Repo, b *wal.Branch, sc *store.Scratch, n int) *workdb.Branch {
	t.Helper()
	w := commit.New().Open(r, b)
	w.ScanReads = true
	w.Scratch = sc
	var docs []bson.Raw
	for i := int32(0); i < int32(n); i++ {
		docs = append(docs, mustRaw(t, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}}))
	}
	if _, err := w.Insert(context.Background(), "c", docs, wal.CommitInfo{Message: "load"}); err != nil {
		t.Fatal(err)
	}
	return w
}

// One scratch engine serves updates of many documents running at once on
// two branches of a process (each in a database of its own), and an update
// whose context is cancelled during the evaluation changes nothing in the
// working database, commits nothing, leaves nothing in the scratch engine,
// and the branch's next update goes through.
func TestReview13ScratchSharedAndCancelled(t *testing.T) {
	srv, r, main := waltest.Project(t)
	if !srv.Embedded {
		t.Skip("the scratch engine is the embedded engine's")
	}
	r.Exclusive = true // as a process that runs the engine itself
	ctx := context.Background()
	_, other, err := r.CreateProject(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	sc := &store.Scratch{}
	t.Cleanup(sc.Close)
	w1, w2 := r13Branch(t, r, main, sc, 450), r13Branch(t, r, other, sc, 450)

	inc := workdb.Modification{Filter: mustRaw(t, bson.D{}), Update: mustRaw(t, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1000}}}}), Many: true}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, w := range []*workdb.Branch{w1, w2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := w.Modify(ctx, "c", inc, workdb.Limits{}, wal.CommitInfo{Message: "inc"})
			if err == nil && res.Modified != 450 {
				err = fmt.Errorf("modified %d, want 450", res.Modified)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	for _, w := range []*workdb.Branch{w1, w2} {
		for _, d := range byKey(t, w.DB.Collection("c")) {
			if d.Lookup("n").Int32() != d.Lookup("_id").Int32()+1000 {
				t.Errorf("%s: %v after the concurrent updates", w.DB.Name(), d)
			}
		}
	}

	// Cancelled after the first batch of the evaluation.
	before := byKey(t, w1.DB.Collection("c"))
	head, err := r.Head(ctx, main.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cctx = workdb.WithProgress(cctx, func(what string, n int) {
		if what == "updating" && n > 0 {
			cancel()
		}
	})
	_, err = w1.Modify(cctx, "c", inc, workdb.Limits{}, wal.CommitInfo{Message: "cancelled"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("update cancelled during the evaluation: %v, want context.Canceled", err)
	}
	after := byKey(t, w1.DB.Collection("c"))
	if len(after) != len(before) {
		t.Errorf("%d documents after the cancelled update, %d before", len(after), len(before))
	}
	for k, d := range before {
		if !bytes.Equal(after[k], d) {
			t.Errorf("document changed by the cancelled update: %v -> %v", d, after[k])
		}
	}
	if h, err := r.Head(ctx, main.Timeline); err != nil || h.LSN != head.LSN {
		t.Errorf("head after the cancelled update: %d (%v), want %d", h.LSN, err, head.LSN)
	}
	probe, drop, err := sc.Collection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names, err := probe.Database().Client().ListDatabaseNames(ctx, bson.D{})
	drop()
	if err != nil || len(names) != 1 || names[0] != probe.Database().Name() {
		t.Errorf("scratch databases after the updates: %v (%v), want only the probe's %s", names, err, probe.Database().Name())
	}
	if _, err := w1.Modify(ctx, "c", inc, workdb.Limits{}, wal.CommitInfo{Message: "again"}); err != nil {
		t.Fatalf("update after the cancelled one: %v", err)
	}
	for _, d := range byKey(t, w1.DB.Collection("c")) {
		if d.Lookup("n").Int32() != d.Lookup("_id").Int32()+2000 {
			t.Errorf("after the next update: %v", d)
			break
		}
	}
}

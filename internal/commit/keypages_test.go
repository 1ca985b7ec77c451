package commit

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// A writer that died after announcing more keys than a lease record
// holds (they went to key pages) is repaired key by key like a small one:
// the void names the pages, every announced key is as committed again,
// and an application's uncommitted change to a key it did not announce
// stays. Before key pages, such a lease said its keys were unknown and the
// next holder rebuilt the whole working database.
func TestPagedLeaseTakeover(t *testing.T) {
	ctx := context.Background()
	var announced []wal.KeyRef
	r, b, n, _, committed := review8Crash(t, func(r *wal.Repo, b *wal.Branch, w *workdb.Branch, n int64, keys []wal.KeyRef) {
		announced = append(announced, keys...)
		for i := 0; i < wal.PageKeys; i++ { // keys of documents that do not exist
			announced = append(announced, review8Key("pad", int32(i)))
		}
		l := &wal.Lease{TL: w.TL, N: n, Token: "dead", TTLMillis: 30000, Host: "dead"}
		if err := r.InsertLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		pages := wal.Pages(announced)
		if err := r.WriteKeyPages(ctx, l.ID, pages, 0); err != nil {
			t.Fatal(err)
		}
		if err := r.AnnouncePages(ctx, l, len(pages)); err != nil {
			t.Fatal(err)
		}
	})
	r2 := *r
	r2.Exclusive = true
	w2 := New().Open(&r2, b)
	var notices []string
	w2.Notice = func(s string) { notices = append(notices, s) }
	review8WriteZ(t, w2, &notices, committed)
	v, err := r.ReadSlot(ctx, b.Timeline, n)
	if err != nil || v == nil {
		t.Fatalf("slot %d: %+v, %v", n, v, err)
	}
	if v.Kind != wal.SlotVoid || !v.Dirty || !v.Taker || v.KeysKnown || v.Pages != 2 {
		t.Fatalf("void %+v, want a dirty taker's void naming 2 key pages", v)
	}
	keys, err := r.KeyPagesOf(ctx, v.PagesID(), v.Pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(announced) || !sameKey(keys[0], announced[0]) || !sameKey(keys[len(keys)-1], announced[len(announced)-1]) {
		t.Errorf("the void's pages name %d keys, want the %d announced", len(keys), len(announced))
	}
}

// A write that touched more keys than a void holds and failed (a
// duplicate _id in its last batch) leaves a void naming them in key
// pages, and is repaired key by key: nothing of it stays, and an
// application's uncommitted change elsewhere in the working database
// stays too. Before key pages the void said its keys were unknown, and
// the repair rebuilt the whole database.
func TestFailedLargeWriteIsRepairedFromPages(t *testing.T) {
	t.Parallel()
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB // as the CLI: c's 20,006 keys are read by one scan there
	if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: int32(-1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Insert(ctx, "d", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("d").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}}); err != nil {
		t.Fatal(err)
	}
	// An application's uncommitted document in c itself stays too.
	if _, err := w.DB.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	for i := 0; i < wal.PageKeys+5; i++ {
		docs = append(docs, mustMarshal(bson.D{{Key: "_id", Value: int32(i)}}))
	}
	docs = append(docs, mustMarshal(bson.D{{Key: "_id", Value: int32(-1)}})) // committed: a duplicate
	var notices []string
	w.Notice = func(s string) { notices = append(notices, s) }
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err == nil {
		t.Fatal("an insert of a committed _id succeeded")
	}
	if n, err := w.DB.Collection("c").CountDocuments(ctx, bson.D{}); err != nil || n != 2 {
		t.Errorf("c holds %d documents after the failed insert (%v), want the committed one and the application's", n, err)
	}
	var d bson.M
	if err := w.DB.Collection("d").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d["v"] != int32(7) {
		t.Errorf("the application's uncommitted change to d is %v after the repair, want 7 (notices %q)", d["v"], notices)
	}
	h, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	var void *wal.Slot
	for i := h.Slot.N; i > 0 && void == nil; i-- {
		if s, err := r.ReadSlot(ctx, b.Timeline, i); err == nil && s != nil && s.Dirty {
			void = s
		}
	}
	if void == nil || void.KeysKnown || void.Pages != 2 {
		t.Fatalf("the failed write's void is %+v, want one naming 2 key pages", void)
	}
}

// A writer's key pages always read back as the keys it last wrote,
// whether they grew at the end (only the last page and new ones are
// written again) or changed (all are).
func TestWritePagesReadsBack(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	wr := &writer{r: r, lease: &wal.Lease{ID: b.Timeline + ":000000000009"}}
	key := func(i int) wal.KeyRef { return review8Key("c", int32(i)) }
	var keys []wal.KeyRef
	for _, grow := range []int{25000, 20000, 1} {
		for i := 0; i < grow; i++ {
			keys = append(keys, key(len(keys)))
		}
		check(t, ctx, r, wr, keys)
	}
	// Not a growth of what was written: every page again.
	keys[0], keys[len(keys)-1] = keys[len(keys)-1], keys[0]
	check(t, ctx, r, wr, keys)
	// Keys big enough that a page is cut by bytes before 20,000 keys.
	big := make([]wal.KeyRef, 300)
	for i := range big {
		big[i] = wal.KeyRef{Coll: "c", Key: append([]byte{byte(i), byte(i >> 8)}, make([]byte, 8000)...)}
	}
	if p := wal.Pages(big); len(p) != 3 {
		t.Errorf("300 keys of 8 kB cut into %d pages, want 3 (1 MiB each at most)", len(p))
	}
	check(t, ctx, r, wr, big)
}

func check(t *testing.T, ctx context.Context, r *wal.Repo, wr *writer, keys []wal.KeyRef) {
	t.Helper()
	n, err := wr.writePages(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.KeyPagesOf(ctx, wr.lease.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("%d pages read back %d keys, want %d", n, len(got), len(keys))
	}
	for i := range keys {
		if !sameKey(got[i], keys[i]) {
			t.Fatalf("key %d of %d read back as %x, want %x", i, len(keys), got[i].Key, keys[i].Key)
		}
	}
}

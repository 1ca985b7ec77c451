package commit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// Heartbeats every millisecond beside a write that announces its keys
// batch after batch: run with -race, the holder's goroutines share the
// lease without a data race, and the write ends (no deadlock on Lease.mu).
func TestReview4AnnounceBesideHeartbeats(t *testing.T) {
	t.Parallel()
	srv, r, b := waltest.Project(t)
	r.LeaseTTL = 3 * time.Millisecond
	ctx := context.Background()
	w := New().Open(r, b)
	w.ScanReads = srv.Embedded
	batch := 0
	_, err := w.InsertStream(ctx, "c", func() ([]bson.Raw, error) {
		if batch == 4 {
			return nil, nil
		}
		batch++
		var docs []bson.Raw
		// Batches of 300 documents in the README's suite, 1,000 at the
		// nightly size (internal/testsize).
		for i := 0; i < testsize.Pick(300, 1000); i++ {
			docs = append(docs, doc(t, bson.D{{Key: "_id", Value: fmt.Sprintf("b%d-%d", batch, i)}, {Key: "n", Value: i % 3}}))
		}
		return docs, nil
	}, wal.CommitInfo{Message: "m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: doc(t, bson.D{{Key: "n", Value: 1}}), Update: doc(t, bson.D{{Key: "$set", Value: bson.D{{Key: "m", Value: 1}}}}), Many: true}, workdb.Limits{}, wal.CommitInfo{Message: "u"}); err != nil {
		t.Fatal(err)
	}
}

// The lease record after each step of a write's widen/announce sequence:
// announce never marks known a write that may have changed keys it did
// not track (after Widen), a void's limits widen instead of announcing,
// and an announcement after a tracked widen names every key touched.
func TestReview4AnnounceAndWiden(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	key := func(s string) wal.KeyRef {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: s}})
		return wal.KeyRef{Coll: "c", Key: wal.KeyOf(bson.Raw(raw).Lookup("_id"))}
	}
	check := func(wr *writer, step string, known bool, keys ...wal.KeyRef) {
		t.Helper()
		l, err := r.ReadLease(ctx, wr.w.TL, wr.lease.N)
		if err != nil || l == nil {
			t.Fatalf("%s: lease %v, %v", step, l, err)
		}
		if l.KeysKnown != known {
			t.Fatalf("%s: lease known %v, want %v", step, l.KeysKnown, known)
		}
		if known && (len(l.Keys) != len(keys) || !covers(l.Keys, keys)) {
			t.Fatalf("%s: lease keys %d, want %d", step, len(l.Keys), len(keys))
		}
	}
	w := p.Open(r, b)
	// Untracked (an upsert left to the server) then an announcement.
	wr, err := p.acquire(ctx, w, []wal.KeyRef{key("a")})
	if err != nil {
		t.Fatal(err)
	}
	check(wr, "intent", true, key("a"))
	if err := wr.widen(ctx, false); err != nil {
		t.Fatal(err)
	}
	check(wr, "widen untracked", false)
	if err := wr.announce(ctx, []wal.KeyRef{key("b")}); err != nil {
		t.Fatal(err)
	}
	check(wr, "announce after an untracked widen", false)
	if !wr.untracked || !wr.unknown {
		t.Fatalf("untracked %v unknown %v after widen(false) and announce", wr.untracked, wr.unknown)
	}
	if err := wr.release(ctx); err != nil {
		t.Fatal(err)
	}
	// Past a void's limits, then back under them.
	wr, err = p.acquire(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A write whose keys are not known up front names none until it
	// announces them (review33: "unknown" made a holder killed before
	// changing anything cost a rebuild).
	check(wr, "no intent", true)
	if err := wr.announce(ctx, []wal.KeyRef{key("a")}); err != nil {
		t.Fatal(err)
	}
	check(wr, "first announcement", true, key("a"))
	many := make([]wal.KeyRef, intentKeys+1)
	for i := range many {
		many[i] = key(fmt.Sprint("k", i))
	}
	if err := wr.announce(ctx, many); err != nil {
		t.Fatal(err)
	}
	check(wr, "past the limit", false)
	if err := wr.announce(ctx, []wal.KeyRef{key("a"), key("b")}); err != nil {
		t.Fatal(err)
	}
	check(wr, "under the limit again (keys untouched)", true, key("a"), key("b"))
	if err := wr.release(ctx); err != nil {
		t.Fatal(err)
	}
}

// Once a write's slot is filled and its working database reflects it, a
// lease record that announced many keys keeps none (nothing reads them
// then); one that announced a few keeps them (not worth a round trip).
func TestFilledLeaseForgetsManyKeys(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := New().Open(r, b)
	w.ScanReads = srv.Embedded
	insert := func(n int) int {
		t.Helper()
		var docs []bson.Raw
		for i := 0; i < n; i++ {
			docs = append(docs, doc(t, bson.D{{Key: "_id", Value: fmt.Sprintf("n%d-%d", n, i)}}))
		}
		res, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "m"})
		if err != nil {
			t.Fatal(err)
		}
		h, err := r.Head(ctx, w.TL)
		if err != nil || h.LSN != res.Head {
			t.Fatalf("head %+v, %v; want LSN %d", h, err, res.Head)
		}
		l, err := r.ReadLease(ctx, w.TL, h.Slot.N)
		if err != nil || l == nil {
			t.Fatalf("lease of slot %d: %+v, %v", h.Slot.N, l, err)
		}
		return len(l.Keys)
	}
	if got := insert(5); got != 5 {
		t.Errorf("the lease of a 5-document insert keeps %d keys, want 5", got)
	}
	if got := insert(wal.LeaseKeysKept + 1); got != 0 {
		t.Errorf("the lease of a %d-document insert keeps %d keys, want none", wal.LeaseKeysKept+1, got)
	}
}

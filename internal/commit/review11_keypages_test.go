package commit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// review11Pads returns n keys of documents of collection coll that do not
// exist: enough of them put a lease past what its record holds.
func review11Pads(coll string, n int) []wal.KeyRef {
	out := make([]wal.KeyRef, n)
	for i := range out {
		out[i] = review8Key(coll, fmt.Sprintf("pad%06d", i))
	}
	return out
}

// review11Has reports whether collection coll of w's working database
// holds a document with _id id.
func review11Has(t *testing.T, w *workdb.Branch, coll string, id any) bool {
	t.Helper()
	n, err := w.DB.Collection(coll).CountDocuments(context.Background(), bson.D{{Key: "_id", Value: id}})
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// review11V is field v of document id of coll, or nil.
func review11V(t *testing.T, w *workdb.Branch, coll string, id any) any {
	t.Helper()
	var d bson.M
	if err := w.DB.Collection(coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		t.Fatalf("%s %v: %v", coll, id, err)
	}
	return d["v"]
}

// A write whose keys went to key pages, and which then may change a key
// it does not know (what workdb.Branch.Widen says: an upsert whose new
// _id the server chooses), must leave a lease that makes a taker rebuild.
// widen returns early when the lease's known is false, which a paged
// lease's always is, so the record keeps naming its pages: a writer that
// dies then is repaired at the paged keys only, and its untracked change
// stays in the working database, where it looks like an application's.
//
// Latent at 8466b7d: no workdb write calls Widen after announcing more
// than 20,000 keys today (Modify widens only for an upsert that matched
// nothing, before it touched anything), so the test drives the writer's
// callbacks directly, as a write would through BeginWrite.
func TestReview11WidenAfterPagesMakesTakerRebuild(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: int32(1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range review11Pads("pad", intentKeys+1) {
		w.Touch(k)
	}
	if err := wr.announce(ctx, w.Touched()); err != nil {
		t.Fatal(err)
	}
	if l, err := r.ReadLease(ctx, b.Timeline, wr.lease.N); err != nil || l == nil || l.Pages == 0 {
		t.Fatalf("lease after announcing %d keys: %+v, %v; want one naming key pages", intentKeys+1, l, err)
	}
	// What a write does before a change it cannot name (a rebuild;
	// until the twenty-third session also an upsert whose _id it could
	// not know).
	if err := wr.widen(ctx, false); err != nil {
		t.Fatal(err)
	}
	l, err := r.ReadLease(ctx, b.Timeline, wr.lease.N)
	if err != nil || l == nil {
		t.Fatal(l, err)
	}
	if l.KeysKnown || l.Pages != 0 {
		t.Errorf("lease after Widen: known %v, pages %d; want unknown keys and no pages (a taker must rebuild)", l.KeysKnown, l.Pages)
	}
	// The untracked change, then the writer dies.
	if _, err := w.DB.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "upserted"}, {Key: "v", Value: int32(1)}}); err != nil {
		t.Fatal(err)
	}
	wr.stopHB()
	wr.unhold()
	r2 := *r
	r2.Exclusive = true
	w2 := New().Open(&r2, b)
	w2.ScanReads = w.ScanReads
	if _, err := w2.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "z"}, {Key: "v", Value: int32(1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	v, err := r.ReadSlot(ctx, b.Timeline, wr.lease.N)
	if err != nil || v == nil {
		t.Fatal(v, err)
	}
	if review11Has(t, w2, "c", "upserted") {
		t.Errorf("the dead writer's untracked change is still in the working database after the takeover (its void: known %v, pages %d)", v.KeysKnown, v.Pages)
	}
}

// A large write (past what a lease holds) that was judged gone and voided
// while it still ran finds out at its commit, and repairs what it touched
// under a fresh lease (afterLoss). Its keys are known, in memory, and the
// key pages could name them, yet afterLoss still takes "more than 20,000
// keys" for unknown and rebuilds the whole working database: an
// application's uncommitted change to a document of another collection,
// which the write never touched, is lost. (Not a regression of 8466b7d:
// the same path rebuilt before it; the change stops at killed and failing
// writers.)
func TestReview11FencedLargeWriteKeepsApplicationsChange(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	if _, err := w.Insert(ctx, "d", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("d").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}}); err != nil {
		t.Fatal(err)
	}
	h, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	n := h.Slot.N + 1
	var docs []bson.Raw
	for i := 0; i < wal.PageKeys+5; i++ {
		docs = append(docs, mustMarshal(bson.D{{Key: "_id", Value: int32(i)}}))
	}
	// Another process judges the writer gone just before it commits, and
	// voids its slot as acquire does (copying the lease's keys).
	var hookErr error
	fenced := false
	Hook = func(pt string) {
		if pt != "before-commit" || fenced {
			return
		}
		fenced = true
		l, err := r.ReadLease(ctx, b.Timeline, n)
		if err != nil || l == nil {
			hookErr = fmt.Errorf("lease %d: %+v, %v", n, l, err)
			return
		}
		hookErr = r.InsertSlot(ctx, &wal.Slot{TL: b.Timeline, N: n, Kind: wal.SlotVoid, Base: h.LSN, LSN: h.LSN, Token: "taker",
			Time: time.Now(), Dirty: true, KeysKnown: l.KeysKnown, Keys: l.Keys, Pages: l.Pages, Taker: true})
	}
	defer func() { Hook = nil }()
	var notices []string
	w.Notice = func(s string) { notices = append(notices, s) }
	_, err = w.Insert(ctx, "c", docs, wal.CommitInfo{})
	Hook = nil
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	if !errors.As(err, new(*wal.TakenOverError)) {
		t.Fatalf("the fenced insert: %v, want a TakenOverError", err)
	}
	if got := review11V(t, w, "d", 1); got != int32(7) {
		t.Errorf("the application's uncommitted change to d is %v after the fenced writer's repair, want 7 (notices %q)", got, notices)
	}
	if n, err := w.DB.Collection("c").CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("c holds %d documents of the fenced write (%v), want none", n, err)
	}
}

// Voids given back over a dirty void that names key pages (writers whose
// hold of the writes failed, before they prepared) name the same pages
// (pages_of, the first void's _id, however many stack), stay unreadable
// to an older argon (known false, no keys: it rebuilds), and the next
// writer walks them all down and repairs every paged key, keeping an
// application's change elsewhere.
func TestReview11StackedVoidsNamePagesOfTheFirst(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	if _, err := w.Insert(ctx, "c", []bson.Raw{
		mustMarshal(bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: int32(1)}}),
		mustMarshal(bson.D{{Key: "_id", Value: "b"}, {Key: "v", Value: int32(1)}}),
	}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	// A writer announces 20,001 keys (a, and pads), changes a, and dies.
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := wr.lease.N
	w.Touch(review8Key("c", "a"))
	for _, k := range review11Pads("pad", intentKeys) {
		w.Touch(k)
	}
	if err := wr.announce(ctx, w.Touched()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(99)}}}}); err != nil {
		t.Fatal(err)
	}
	wr.stopHB()
	wr.unhold()
	// An application's change to a key the writer did not announce.
	if _, err := w.DB.Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: "b"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(77)}}}}); err != nil {
		t.Fatal(err)
	}
	r2 := *r
	r2.Exclusive = true
	// Two writers give their slot back unprepared.
	for i := 0; i < 2; i++ {
		wf := New().Open(&r2, b)
		wf.ScanReads = w.ScanReads
		wf.Files = holdFails{}
		if _, err := wf.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "never"}})}, wal.CommitInfo{}); err == nil {
			t.Fatal("an insert whose hold failed succeeded")
		}
	}
	leaseID := fmt.Sprintf("%s:%012d", b.Timeline, n)
	for i := int64(0); i < 3; i++ {
		s, err := r.ReadSlot(ctx, b.Timeline, n+i)
		if err != nil || s == nil {
			t.Fatalf("slot %d: %+v, %v", n+i, s, err)
		}
		if s.Kind != wal.SlotVoid || !s.Dirty || s.KeysKnown || len(s.Keys) != 0 || s.Pages != 2 || s.PagesID() != leaseID {
			t.Errorf("slot %d: kind %s dirty %v known %v keys %d pages %d of %q; want a dirty void naming the 2 pages of %s",
				n+i, s.Kind, s.Dirty, s.KeysKnown, len(s.Keys), s.Pages, s.PagesID(), leaseID)
		}
		raw, err := r.DB.Collection("slots").FindOne(ctx, bson.D{{Key: "_id", Value: s.ID}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		// What an argon from before pages reads: no keys, not known.
		if k, err := raw.LookupErr("known"); err == nil && k.Boolean() {
			t.Errorf("slot %d says known: an older argon would repair nothing", n+i)
		}
		if _, err := raw.LookupErr("keys"); err == nil {
			t.Errorf("slot %d holds keys beside its pages", n+i)
		}
	}
	raw, err := r.DB.Collection("leases").FindOne(ctx, bson.D{{Key: "_id", Value: leaseID}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if k := raw.Lookup("known"); k.Boolean() {
		t.Errorf("the paged lease says known: an older argon taking it over would repair nothing")
	}
	if _, err := raw.LookupErr("keys"); err == nil {
		t.Errorf("the paged lease still holds keys beside its pages")
	}
	w3 := New().Open(&r2, b)
	w3.ScanReads = w.ScanReads
	var notices []string
	w3.Notice = func(s string) { notices = append(notices, s) }
	if _, err := w3.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "z"}, {Key: "v", Value: int32(1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if got := review11V(t, w3, "c", "a"); got != int32(1) {
		t.Errorf("the dead writer's change to a is %v after the repair, want the committed 1 (notices %q)", got, notices)
	}
	if got := review11V(t, w3, "c", "b"); got != int32(77) {
		t.Errorf("the application's change to b is %v after the repair, want 77 (notices %q)", got, notices)
	}
	// The committed write's own lease announced no pages: the dead
	// writer's pages stay (a void names them).
	if keys, err := r.KeyPagesOf(ctx, leaseID, 2); err != nil || len(keys) != intentKeys+1 {
		t.Errorf("the void's pages after later writes: %d keys, %v; want %d", len(keys), err, intentKeys+1)
	}
}

// A writer taken over while it still runs (a zombie) and whose touched
// keys then shrink (workdb's untouchForeign after a failed batch) writes
// every page again from the first, under the _id the taker's void names,
// with a count the void did not copy. Whatever that count, the void's
// pages, read after the rewrite, still name every key the zombie may have
// changed: the rewritten pages hold the shrunk list whole and the stale
// ones beyond it only add keys.
func TestReview11ZombieRewriteKeepsVoidPagesCovering(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		keys, removed int
	}{
		{"same count", 3*intentKeys - 7, 11},
		{"fewer pages", 2*intentKeys + 5, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("%s:%012d", b.Timeline, 900+len(tc.name))
			wr := &writer{r: r, lease: &wal.Lease{ID: id}}
			all := review11Pads("c", tc.keys)
			n, err := wr.writePages(ctx, all)
			if err != nil {
				t.Fatal(err)
			}
			// The taker's void copies n. Then the zombie's list loses keys
			// in its first page (foreign ones), and is written again.
			shrunk := append(append([]wal.KeyRef(nil), all[:100]...), all[100+tc.removed:]...)
			if _, err := wr.writePages(ctx, shrunk); err != nil {
				t.Fatal(err)
			}
			got, err := r.KeyPagesOf(ctx, id, n)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, k := range got {
				have[string(k.Key)] = true
			}
			for i, k := range shrunk {
				if !have[string(k.Key)] {
					t.Fatalf("key %d of %d the zombie touched is not in the %d pages its void names", i, len(shrunk), n)
				}
			}
		})
	}
}

// A commit whose reply was lost and that never went in is fenced by the
// writer's own void (resolve), within its 2 s per try: with more keys
// than a void holds, the void names its key pages (written first, under
// the lease's _id) and they hold every key touched, including those
// touched after the last announcement.
func TestReview11ResolveVoidNamesPages(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := review11Pads("c", 2*intentKeys+3)
	for _, k := range keys[:intentKeys+1] {
		w.Touch(k)
	}
	if err := wr.announce(ctx, w.Touched()); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[intentKeys+1:] {
		w.Touch(k)
	}
	wr.stopHB()
	s := &wal.Slot{TL: b.Timeline, N: wr.lease.N, Kind: wal.SlotCommit, Base: wr.base.LSN, LSN: wr.base.LSN + 1, Token: wr.token}
	start := time.Now()
	if _, err := wr.resolve(ctx, s, errors.New("connection reset by peer")); err == nil || errors.As(err, new(*wal.UnknownOutcomeError)) {
		t.Fatalf("resolve of a commit never applied: %v, want not committed", err)
	}
	wr.unhold()
	t.Logf("resolve took %v", time.Since(start))
	v, err := r.ReadSlot(ctx, b.Timeline, wr.lease.N)
	if err != nil || v == nil {
		t.Fatal(v, err)
	}
	if v.Token != wr.token+"-void" || !v.Dirty || v.KeysKnown || v.Pages != 3 {
		t.Fatalf("slot after resolve: token %q dirty %v known %v pages %d; want the writer's dirty void naming 3 pages", v.Token, v.Dirty, v.KeysKnown, v.Pages)
	}
	got, err := r.KeyPagesOf(ctx, v.PagesID(), v.Pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) || !sameKey(got[len(got)-1], keys[len(keys)-1]) {
		t.Errorf("the void's pages name %d keys, want the %d touched", len(got), len(keys))
	}
}

// review11Unrepairable sets up a dead writer whose paged lease names "a"
// of c (and 20,000 keys of documents that do not exist, in "pad"), which
// it changed from x 1 to x 2, and an application's uncommitted document q
// with x 1 beside it: c has a unique index on x, so the repair of "a"
// cannot put the committed document back while q is there. It returns
// another process's repo (the dead one has ended) and the dead writer's
// slot.
func review11Unrepairable(t *testing.T) (*wal.Repo, *wal.Branch, *workdb.Branch, int64) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "a"}, {Key: "x", Value: int32(1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.CreateIndex(ctx, "c", mustMarshal(bson.D{{Key: "x", Value: int32(1)}}), workdb.IndexOptions{Unique: true}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Touch(review8Key("c", "a"))
	for _, k := range review11Pads("pad", intentKeys) {
		w.Touch(k)
	}
	if err := wr.announce(ctx, w.Touched()); err != nil {
		t.Fatal(err)
	}
	c := w.DB.Collection("c")
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: int32(2)}}}}); err != nil {
		t.Fatal(err)
	}
	wr.stopHB()
	wr.unhold()
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "q"}, {Key: "x", Value: int32(1)}}); err != nil {
		t.Fatal(err)
	}
	r2 := *r
	r2.Exclusive = true
	return &r2, b, w, wr.lease.N
}

// A repair that fails (here: it cannot put "a" back while an
// application's document holds its unique key) leaves a void naming the
// keys it touched: every key of every dirty void it walked down. The next
// try walks that void and every one below it again, so the keys double
// with each failed command: 20,001, 40,002, 80,004, ... all written to key
// pages and read back by the next walk, without end (a user retrying ten
// times makes the next command hold 10 million keys). Before key pages
// the limit of a void stopped the doubling (the keys became unknown, and
// the next holder rebuilt); now nothing does. The walk, or the failed
// repair's void, should name each key once.
func TestReview11FailedRepairsDoNotDoubleTheirKeys(t *testing.T) {
	r2, b, w, n := review11Unrepairable(t)
	ctx := context.Background()
	var counts []int
	for i := 0; i < 3; i++ {
		w2 := New().Open(r2, b)
		w2.ScanReads = w.ScanReads
		if _, err := w2.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "z"}, {Key: "x", Value: int32(9)}})}, wal.CommitInfo{}); err == nil {
			t.Skip("the repair of a succeeded: the setup no longer makes it fail")
		}
		v, err := r2.ReadSlot(ctx, b.Timeline, n+int64(i)+1)
		if err != nil || v == nil {
			t.Fatalf("slot %d: %+v, %v", n+int64(i)+1, v, err)
		}
		if !v.Dirty || (!v.KeysKnown && v.Pages == 0) {
			t.Fatalf("the failed repair's void: dirty %v known %v pages %d; want one naming its keys", v.Dirty, v.KeysKnown, v.Pages)
		}
		keys := v.Keys
		if v.Pages > 0 {
			if keys, err = r2.KeyPagesOf(ctx, v.PagesID(), v.Pages); err != nil {
				t.Fatal(err)
			}
		}
		counts = append(counts, len(keys))
	}
	if last := counts[len(counts)-1]; last > intentKeys+1 {
		t.Errorf("the voids of 3 failed repairs name %v keys, of %d distinct: each failed try doubles them", counts, intentKeys+1)
	}
}

// argon restore discards applications' changes and rebuilds the working
// database from the log: it must work when a repair cannot. It takes the
// branch like any writer, and acquire repairs the dirty void below before
// Restore rebuilds: the failing repair makes restore fail too, and the
// branch has no way out in argon (fsck --repair checks out the same way)
// until the application's document is removed by hand. The same holds,
// at 94bfc4b already, for a small write's dead writer (keys in its lease
// record); what 8466b7d changes is that a dead writer of more than 20,000
// keys now gets there too, where before it left unknown keys and the next
// holder (restore among them) rebuilt.
func TestReview11RestoreAfterAnUnrepairablePagedVoid(t *testing.T) {
	r2, b, w, _ := review11Unrepairable(t)
	ctx := context.Background()
	w2 := New().Open(r2, b)
	w2.ScanReads = w.ScanReads
	if _, err := New().Restore(ctx, w2); err != nil {
		t.Fatalf("restore: %v", err)
	}
	var a bson.M
	if err := w2.DB.Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&a); err != nil || a["x"] != int32(1) {
		t.Errorf("a after restore: %v, %v; want x 1", a, err)
	}
}

// A writer whose lease named key pages and that fills its own slot (a
// clean void here: it changed nothing) removes its pages (ForgetKeys);
// the pages of a slot someone else voided are never removed by a holder,
// which cannot fill that slot any more (its release finds the void and
// takes the loss path).
func TestReview11ForgetKeysOnlyForOwnFilledSlot(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	count := func(id string) int64 {
		t.Helper()
		n, err := r.DB.Collection("keypages").CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: id + ":p"}, {Key: "$lt", Value: id + ":q"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Released by its holder: pages gone.
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.announce(ctx, review11Pads("pad", intentKeys+1)); err != nil {
		t.Fatal(err)
	}
	if n := count(wr.lease.ID); n != 2 {
		t.Fatalf("%d pages after the announcement, want 2", n)
	}
	if err := wr.release(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(wr.lease.ID); n != 0 {
		t.Errorf("%d pages left after the holder released its slot, want none", n)
	}
	// Voided by another process, then released by the holder: the
	// void's pages stay.
	wr, err = p.acquire(ctx, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.announce(ctx, review11Pads("pad", intentKeys+1)); err != nil {
		t.Fatal(err)
	}
	l, err := r.ReadLease(ctx, b.Timeline, wr.lease.N)
	if err != nil || l == nil {
		t.Fatal(l, err)
	}
	if err := r.InsertSlot(ctx, &wal.Slot{TL: b.Timeline, N: wr.lease.N, Kind: wal.SlotVoid, Base: wr.base.LSN, LSN: wr.base.LSN,
		Token: "taker", Time: time.Now(), Dirty: true, Pages: l.Pages, Taker: true}); err != nil {
		t.Fatal(err)
	}
	if err := wr.release(ctx); !errors.As(err, new(*wal.TakenOverError)) {
		t.Fatalf("release of a voided slot: %v, want a TakenOverError", err)
	}
	if n := count(wr.lease.ID); n != 2 {
		t.Errorf("%d pages of the voided slot left, want its 2", n)
	}
}

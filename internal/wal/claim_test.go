package wal

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
)

func newRepo(t *testing.T) (*Repo, *Branch) {
	t.Helper()
	srv := enginetest.Start(t)
	r := Open(srv.Client, srv.DB)
	ctx := context.Background()
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatalf("EnsureSchema is not idempotent: %v", err)
	}
	_, b, err := r.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func commitPuts(t *testing.T, r *Repo, tl string, ids ...string) *Commit {
	t.Helper()
	ctx := context.Background()
	c, err := r.Claim(ctx, tl, "main")
	if err != nil {
		t.Fatal(err)
	}
	var es []Entry
	for _, id := range ids {
		es = append(es, mustPut(t, "c", bson.D{{Key: "_id", Value: id}}))
	}
	if err := c.Append(ctx, es); err != nil {
		t.Fatal(err)
	}
	cm, err := c.Commit(ctx, CommitInfo{Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func docIDs(t *testing.T, r *Repo, tl string, lsn int64) []string {
	t.Helper()
	st, err := r.Fold(context.Background(), tl, lsn, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range st.Docs("c") {
		out = append(out, d.Lookup("_id").StringValue())
	}
	return out
}

func TestCommitMovesHead(t *testing.T) {
	r, b := newRepo(t)
	ctx := context.Background()
	cm := commitPuts(t, r, b.Timeline, "a", "b")
	if cm.From != 1 || cm.To != 2 {
		t.Fatalf("commit LSNs %d..%d, want 1..2", cm.From, cm.To)
	}
	h, err := r.Head(ctx, b.Timeline)
	if err != nil || h.LSN != 2 || h.Claimed {
		t.Fatalf("head %+v %v, want LSN 2 unclaimed", h, err)
	}
	commitPuts(t, r, b.Timeline, "c")
	if got := docIDs(t, r, b.Timeline, 3); len(got) != 3 {
		t.Fatalf("state %v", got)
	}
	if got := docIDs(t, r, b.Timeline, 2); len(got) != 2 {
		t.Fatalf("state at 2: %v", got)
	}
	log, err := r.Log(ctx, b.Timeline, 3, 0)
	if err != nil || len(log) != 2 || log[0].From != 3 || log[1].To != 2 {
		t.Fatalf("log %+v %v", log, err)
	}
	// Only the newest two head records are kept.
	n, err := r.DB.Collection(collHeads).CountDocuments(ctx, bson.D{{Key: "tl", Value: b.Timeline}})
	if err != nil || n > 2 {
		t.Fatalf("%d head records kept, want at most 2 (%v)", n, err)
	}
}

// Entries appended under a claim stay invisible until the commit, and a
// claim that is abandoned leaves nothing behind for readers.
func TestUncommittedEntriesInvisible(t *testing.T) {
	r, b := newRepo(t)
	ctx := context.Background()
	commitPuts(t, r, b.Timeline, "a")
	c, err := r.Claim(ctx, b.Timeline, "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Append(ctx, []Entry{mustPut(t, "c", bson.D{{Key: "_id", Value: "ghost"}})}); err != nil {
		t.Fatal(err)
	}
	h, _ := r.Head(ctx, b.Timeline)
	if h.LSN != 1 || !h.Claimed {
		t.Fatalf("head while claimed: %+v", h)
	}
	if got := docIDs(t, r, b.Timeline, h.LSN); len(got) != 1 {
		t.Fatalf("reader sees uncommitted entries: %v", got)
	}
	if err := c.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	// The next writer sweeps the abandoned entry and reuses its LSN.
	cm := commitPuts(t, r, b.Timeline, "b")
	if cm.From != 2 {
		t.Fatalf("LSN after abort %d, want 2", cm.From)
	}
	if got := docIDs(t, r, b.Timeline, 2); len(got) != 2 || got[1] != "b" {
		t.Fatalf("state %v", got)
	}
}

// An expired claim is taken over; the old writer's commit then fails and
// its entries never become visible.
func TestExpiredClaimTakenOver(t *testing.T) {
	r, b := newRepo(t)
	ctx := context.Background()
	r.ClaimTTL = 50 * time.Millisecond
	slow, err := r.Claim(ctx, b.Timeline, "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Append(ctx, []Entry{mustPut(t, "c", bson.D{{Key: "_id", Value: "slow"}})}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	r.ClaimTTL = 30 * time.Second
	fast := commitPuts(t, r, b.Timeline, "fast")
	if fast.From != 1 {
		t.Fatalf("takeover wrote at %d, want 1", fast.From)
	}
	if _, err := slow.Commit(ctx, CommitInfo{Message: "late"}); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("late commit: %v, want ErrClaimLost", err)
	}
	if got := docIDs(t, r, b.Timeline, 1); len(got) != 1 || got[0] != "fast" {
		t.Fatalf("state %v, want [fast]", got)
	}
	log, err := r.Log(ctx, b.Timeline, 1, 0)
	if err != nil || len(log) != 1 || log[0].Message != "m" {
		t.Fatalf("log %+v %v", log, err)
	}
}

// A live claim makes other writers wait, then fail with BusyError.
func TestBusy(t *testing.T) {
	r, b := newRepo(t)
	ctx := context.Background()
	held, err := r.Claim(ctx, b.Timeline, "main")
	if err != nil {
		t.Fatal(err)
	}
	r.BusyTimeout = 100 * time.Millisecond
	_, err = r.Claim(ctx, b.Timeline, "main")
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("second claim: %v, want BusyError", err)
	}
	if _, err := held.Commit(ctx, CommitInfo{}); err != nil {
		t.Fatal(err)
	}
}

// Writers in many goroutines: every acknowledged commit is present, LSNs
// are dense and unique.
func TestConcurrentWritersInProcess(t *testing.T) {
	r, b := newRepo(t)
	ctx := context.Background()
	const workers, each = 6, 10
	var mu sync.Mutex
	var acked []*Commit
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				c, err := r.Claim(ctx, b.Timeline, "main")
				if err != nil {
					t.Error(err)
					return
				}
				id := string(rune('a'+w)) + string(rune('a'+i))
				if err := c.Append(ctx, []Entry{mustPut(t, "c", bson.D{{Key: "_id", Value: id}})}); err != nil {
					t.Error(err)
					return
				}
				cm, err := c.Commit(ctx, CommitInfo{Message: id})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, cm)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(acked) != workers*each {
		t.Fatalf("%d commits acknowledged, want %d", len(acked), workers*each)
	}
	seen := map[int64]bool{}
	for _, cm := range acked {
		if seen[cm.From] {
			t.Fatalf("LSN %d committed twice", cm.From)
		}
		seen[cm.From] = true
	}
	for l := int64(1); l <= workers*each; l++ {
		if !seen[l] {
			t.Fatalf("LSN %d missing", l)
		}
	}
	if got := docIDs(t, r, b.Timeline, workers*each); len(got) != workers*each {
		t.Fatalf("%d documents, want %d", len(got), workers*each)
	}
}

// A branch forked at an LSN sees its parent's history up to that LSN only,
// and numbers its own entries from there.
func TestForkContinuesLSNs(t *testing.T) {
	r, main := newRepo(t)
	ctx := context.Background()
	commitPuts(t, r, main.Timeline, "a", "b")
	commitPuts(t, r, main.Timeline, "c")
	old, err := r.CreateBranch(ctx, "p", "old", main, 2)
	if err != nil {
		t.Fatal(err)
	}
	cm := commitPuts(t, r, old.Timeline, "x")
	if cm.From != 3 {
		t.Fatalf("child's first LSN %d, want 3", cm.From)
	}
	if got := docIDs(t, r, old.Timeline, 3); len(got) != 3 || got[2] != "x" {
		t.Fatalf("child state %v, want [a b x]", got)
	}
	if got := docIDs(t, r, main.Timeline, 3); len(got) != 3 || got[2] != "c" {
		t.Fatalf("parent state %v, want [a b c]", got)
	}
	if _, err := r.CreateBranch(ctx, "p", "bad", main, 4); err == nil {
		t.Fatal("fork past the head succeeded")
	}
	// A grandchild forked below its parent's base attaches to the ancestor
	// that holds that LSN.
	gc, err := r.CreateBranch(ctx, "p", "gc", old, 1)
	if err != nil {
		t.Fatal(err)
	}
	tl, _ := r.Timeline(ctx, gc.Timeline)
	if tl.Parent != main.Timeline || tl.Base != 1 {
		t.Fatalf("grandchild forked from %s@%d, want main's timeline @1", tl.Parent, tl.Base)
	}
	if got := docIDs(t, r, gc.Timeline, 1); len(got) != 1 {
		t.Fatalf("grandchild state %v", got)
	}
}

package commit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// Review 25: fsck --repair deletes every entry of a writer that can no
// longer commit. These run real writers (acquire, emit, commit) instead of
// SpillEntries with chosen LSNs.

// r25Entries returns n put entries of collection c, ids prefix0..prefixN.
func r25Entries(prefix string, n int) []wal.Entry {
	var es []wal.Entry
	for i := 0; i < n; i++ {
		e, err := wal.PutEntry("c", mustMarshal(bson.D{{Key: "_id", Value: fmt.Sprintf("%s%03d", prefix, i)}}))
		if err != nil {
			panic(err)
		}
		es = append(es, e)
	}
	return es
}

// r25Fsck runs fsck (repair or not) and returns its report.
func r25Fsck(t *testing.T, p *Protocol, r *wal.Repo, repair bool) *Report {
	t.Helper()
	rep, err := p.Fsck(context.Background(), r, "p", func(b *wal.Branch) *workdb.Branch { return p.Open(r, b) }, repair)
	if err != nil {
		t.Fatalf("fsck (repair %v): %v", repair, err)
	}
	return rep
}

// r25Stored counts the stored entries of tl under token.
func r25Stored(t *testing.T, r *wal.Repo, tl, token string) int {
	t.Helper()
	n := 0
	cur, err := r.DB.Collection("entries").Find(context.Background(), bson.D{{Key: "tl", Value: tl}, {Key: "token", Value: token}})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(context.Background())
	for cur.Next(context.Background()) {
		var d struct {
			LSN  int64 `bson:"lsn"`
			Last int64 `bson:"last"`
		}
		if err := cur.Decode(&d); err != nil {
			t.Fatal(err)
		}
		n += int(max(d.Last-d.LSN+1, 1))
	}
	return n
}

// A timeline whose only spilled writer died (a new user's interrupted
// first import), then took small commits: no spilled commit names any
// token, and fsck --repair must still delete the dead writer's entries.
func TestReview25RepairWithoutSpilledCommits(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	if _, err := p.Open(r, b).Insert(ctx, "c", []bson.Raw{d1("a")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	dead := p.Open(r, b)
	wr, err := p.acquire(ctx, dead, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.emit(ctx, r25Entries("x", 100)); err != nil {
		t.Fatal(err)
	}
	wr.stopHB() // the process dies here
	if !wr.spill {
		t.Fatal("the writer did not spill")
	}
	r2 := *r
	r2.Exclusive = true // it has ended
	if _, err := p.Open(&r2, b).Insert(ctx, "c", []bson.Raw{d1("b")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	rep := r25Fsck(t, p, r, false)
	want := fmt.Sprintf("timeline %s: 100 log entries of writers that did not commit (invisible; 100 of writers that can no longer commit)", b.Timeline)
	if !slices.Contains(rep.Notes, want) {
		t.Errorf("fsck notes %q, want %q", rep.Notes, want)
	}
	rep = r25Fsck(t, p, r, true)
	if !slices.Contains(rep.Repaired, fmt.Sprintf("timeline %s: deleted 100 entries of writers that can no longer commit", b.Timeline)) {
		t.Errorf("fsck --repair: %q", rep.Repaired)
	}
	if n := r25Stored(t, r, b.Timeline, wr.token); n != 0 {
		t.Errorf("%d entries of the dead writer are left", n)
	}
}

// A live writer of an import that spills in several batches, leased on
// the head: fsck --repair while it writes leaves its entries, and it
// commits them all. fsck then finds everything committed.
func TestReview25LiveWriterSurvivesRepair(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	// A spilled commit and a small one: the head is past LSN 1.
	var docs []bson.Raw
	for i := 0; i < 100; i++ {
		docs = append(docs, d1(fmt.Sprintf("a%03d", i)))
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Insert(ctx, "c", []bson.Raw{d1("b")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	live := p.Open(r, b)
	wr, err := p.acquire(ctx, live, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pre := range []string{"x", "y", "z"} {
		if err := wr.emit(ctx, r25Entries(pre, 400)); err != nil {
			t.Fatal(err)
		}
	}
	// fsck --repair meanwhile (its checkout of the branch waits for the
	// live writer and gives up: that is not what is tested).
	rf := *r
	rf.BusyTimeout = 300 * time.Millisecond
	_, _ = p.Fsck(ctx, &rf, "p", func(b *wal.Branch) *workdb.Branch { return p.Open(&rf, b) }, true)
	if n := r25Stored(t, r, b.Timeline, wr.token); n != 1200 {
		t.Fatalf("the live writer has %d stored entries after fsck --repair, want 1200", n)
	}
	wr.stopHB()
	s, err := wr.commit(ctx, &wal.CommitInfo{Message: "import"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wr.finish(ctx, s, nil)
	st, err := r.Fold(ctx, b.Timeline, s.LSN, "")
	if err != nil {
		t.Fatal(err)
	}
	_ = st
	rep := r25Fsck(t, p, r, false)
	if len(rep.Problems) > 0 {
		t.Errorf("fsck after the commit: %+v", rep.Problems)
	}
	for _, n := range rep.Notes {
		if strings.Contains(n, "did not commit") {
			t.Errorf("fsck after the commit: %s", n)
		}
	}
}

// A writer taken over (a dirty void by a taker fills its slot, the head's
// LSN does not move): its entries are above the head and stay; once a
// later commit moves the head past its base they all go, and the writer,
// resuming, cannot commit.
func TestReview25TakenOverWriterGoesWhenTheHeadMoves(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	// A spilled commit first (a timeline without one fails otherwise:
	// TestReview25RepairWithoutSpilledCommits).
	var docs []bson.Raw
	for i := 0; i < 100; i++ {
		docs = append(docs, d1(fmt.Sprintf("a%03d", i)))
	}
	if _, err := p.Open(r, b).Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	stalled := p.Open(r, b)
	wr, err := p.acquire(ctx, stalled, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.emit(ctx, r25Entries("x", 1500)); err != nil {
		t.Fatal(err)
	}
	wr.stopHB()
	// The taker fences it out and gives the branch back (a read under a
	// lease would do the same): a dirty void, then a clean void.
	r2 := *r
	r2.Exclusive = true
	tw, err := p.acquire(ctx, p.Open(&r2, b), []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.release(ctx); err != nil {
		t.Fatal(err)
	}
	rep := r25Fsck(t, p, r, true)
	if n := r25Stored(t, r, b.Timeline, wr.token); n != 1500 {
		t.Fatalf("fsck --repair with the head at the writer's base left %d of 1500 entries", n)
	}
	for _, s := range rep.Repaired {
		if strings.Contains(s, "deleted") {
			t.Errorf("fsck --repair with nothing covered: %s", s)
		}
	}
	if _, err := p.Open(&r2, b).Insert(ctx, "c", []bson.Raw{d1("b")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	rep = r25Fsck(t, p, r, true)
	if !slices.Contains(rep.Repaired, fmt.Sprintf("timeline %s: deleted 1500 entries of writers that can no longer commit", b.Timeline)) {
		t.Errorf("fsck --repair: %q", rep.Repaired)
	}
	if n := r25Stored(t, r, b.Timeline, wr.token); n != 0 {
		t.Errorf("%d entries of the writer are left", n)
	}
	// The stalled writer resumes: its commit is refused.
	if _, err := wr.commit(ctx, &wal.CommitInfo{}, nil); err == nil {
		t.Fatal("the fenced writer committed")
	}
	if got := ids(t, p.Open(r, b)); len(got) != 101 || got[100] != "b" {
		t.Errorf("branch holds %d documents (%v...), want a000..a099 and b", len(got), got[:min(3, len(got))])
	}
	rep = r25Fsck(t, p, r, false)
	if len(rep.Problems) > 0 {
		t.Errorf("fsck: %+v", rep.Problems)
	}
}

// A writer leased on a branch that is then deleted: the closing void
// fills its slot and nothing can follow it, so the writer can never
// commit. The head's LSN is its base, so fsck counts none of its entries
// as "of writers that can no longer commit" and --repair leaves them for
// good (the branch never grows past them). Debatable: the rule "an entry
// at or below the head" is sufficient, not necessary; on a timeline
// closed by a delete (or a fast-forward's moved slot) every uncommitted
// writer can no longer commit.
func TestReview25ClosedTimelineWritersCanNoLongerCommit(t *testing.T) {
	_, r, main := waltest.Project(t)
	ctx := context.Background()
	p := New()
	var docs []bson.Raw
	for i := 0; i < 100; i++ {
		docs = append(docs, d1(fmt.Sprintf("a%03d", i)))
	}
	if _, err := p.Open(r, main).Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	g, err := r.CreateBranch(ctx, "p", "g", main, -1)
	if err != nil {
		t.Fatal(err)
	}
	inFlight := p.Open(r, g)
	wr, err := p.acquire(ctx, inFlight, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.emit(ctx, r25Entries("x", 100)); err != nil {
		t.Fatal(err)
	}
	wr.stopHB()
	if _, _, err := r.DeleteBranch(ctx, "p", "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := wr.commit(ctx, &wal.CommitInfo{}, nil); err == nil {
		t.Fatal("the writer committed on a deleted branch")
	}
	rep := r25Fsck(t, p, r, true)
	want := fmt.Sprintf("timeline %s: 100 log entries of writers that did not commit (invisible; 100 of writers that can no longer commit)", g.Timeline)
	if !slices.Contains(rep.Notes, want) {
		t.Errorf("fsck notes %q, want %q", rep.Notes, want)
	}
	if n := r25Stored(t, r, g.Timeline, wr.token); n != 0 {
		t.Errorf("fsck --repair left %d entries of a writer whose timeline is closed", n)
	}
}

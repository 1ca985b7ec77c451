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

func insertOp(w *workdb.Branch, id string) workdb.ApplyFunc {
	return func(ctx context.Context, emit func([]wal.Entry) error) error {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		w.Touch(wal.KeyRef{Coll: "c", Key: wal.KeyOf(bson.Raw(raw).Lookup("_id"))})
		if _, err := w.DB.Collection("c").InsertOne(ctx, bson.Raw(raw)); err != nil {
			return err
		}
		e, err := wal.PutEntry("c", raw)
		if err != nil {
			return err
		}
		return emit([]wal.Entry{e})
	}
}

func ids(t *testing.T, w *workdb.Branch) []string {
	t.Helper()
	docs, err := w.Find(context.Background(), "c", workdb.Query{Sort: bson.Raw(mustMarshal(bson.D{{Key: "_id", Value: 1}}))})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range docs {
		out = append(out, d.Lookup("_id").StringValue())
	}
	return out
}

func mustMarshal(d bson.D) []byte {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

func fsckClean(t *testing.T, p *Protocol, r *wal.Repo, w *workdb.Branch) {
	t.Helper()
	rep, err := p.Fsck(context.Background(), r, "p", func(b *wal.Branch) *workdb.Branch { return p.Open(r, b) }, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck: %+v", rep.Problems)
	}
}

// A writer that stalls after evaluating its change is judged gone and
// fenced out; when it resumes, its commit is refused (never accepted on a
// second try, never deleting anything), and the other writer's commit
// stands. Nothing here reads a PID, a hostname or a wall clock: the two
// writers even record commit times minutes apart.
func TestStalledWriterIsFencedOut(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	r.LeaseTTL = 100 * time.Millisecond
	r.BusyTimeout = 10 * time.Second
	skewed := *r
	skewed.Now = func() time.Time { return time.Now().Add(7 * time.Minute) } // another machine's clock
	stalled := p.Open(&skewed, b)
	live := p.Open(r, b)

	wr, err := p.acquire(ctx, stalled, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	wr.stopHB() // the process stalls: no more heartbeats
	if err := insertOp(stalled, "stalled")(ctx, func(e []wal.Entry) error { return wr.emit(ctx, e) }); err != nil {
		t.Fatal(err)
	}
	// No heartbeat: the stalled writer is judged gone after the TTL, its
	// slot voided, and the live writer commits the next one.
	if _, err := live.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "live"}})}, wal.CommitInfo{Message: "live"}); err != nil {
		t.Fatal(err)
	}
	_, err = wr.commit(ctx, &wal.CommitInfo{Message: "stalled"}, nil)
	var to *wal.TakenOverError
	if !errors.As(err, &to) || !to.Void {
		t.Fatalf("stalled commit: %v, want a TakenOverError (void)", err)
	}
	wr.afterLoss(ctx)
	if got := ids(t, live); len(got) != 1 || got[0] != "live" {
		t.Fatalf("branch holds %v, want [live]", got)
	}
	log, err := r.Log(ctx, b.Timeline, 1, 0)
	if err != nil || len(log) != 1 || log[0].Message != "live" {
		t.Fatalf("log %+v, %v", log, err)
	}
	fsckClean(t, p, r, live)
}

// Clock skew decides nothing: a holder that keeps its heartbeat is never
// taken over, however far apart the clocks of the two processes are.
func TestSkewedClocksDoNotTakeOver(t *testing.T) {
	t.Parallel()
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	// A TTL long enough that a heartbeat (every third of it) is not late
	// even on a loaded machine: this test is about clocks, not load.
	r.LeaseTTL = time.Second
	ahead := *r
	ahead.Now = func() time.Time { return time.Now().Add(-30 * time.Minute) }
	holder := p.Open(&ahead, b)
	wr, err := p.acquire(ctx, holder, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	waiter := *r
	waiter.BusyTimeout = 4 * time.Second // four TTLs
	_, err = p.Open(&waiter, b).Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "w"}})}, wal.CommitInfo{})
	var be *wal.BusyError
	if !errors.As(err, &be) {
		t.Fatalf("waiter: %v, want busy", err)
	}
	if err := insertOp(holder, "h")(ctx, func(e []wal.Entry) error { return wr.emit(ctx, e) }); err != nil {
		t.Fatal(err)
	}
	wr.stopHB()
	if _, err := wr.commit(ctx, &wal.CommitInfo{Message: "h"}, nil); err != nil {
		t.Fatalf("holder's commit: %v", err)
	}
}

// A commit whose reply was lost is resolved by reading its slot back: if
// the insert was applied, the write is reported committed; if it was not,
// the writer fences its own late insert with a void and reports failure;
// if the server cannot be read, the outcome is reported unknown. Nothing is
// undone while the outcome is unknown.
func TestLostCommitReply(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	start := func(id string) *writer {
		wr, err := p.acquire(ctx, w, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := insertOp(w, id)(ctx, func(e []wal.Entry) error { return wr.emit(ctx, e) }); err != nil {
			t.Fatal(err)
		}
		return wr
	}
	lost := errors.New("connection reset by peer")

	// Applied, reply lost.
	wr := start("applied")
	s := &wal.Slot{TL: b.Timeline, N: wr.lease.N, Kind: wal.SlotCommit, Base: wr.base.LSN, LSN: wr.next - 1, Token: wr.token,
		Entries: []wal.SlotEntry{{Op: wal.OpPut, Coll: "c", Key: wr.buf[0].KeyBytes, Doc: wr.buf[0].Doc}}}
	if err := r.InsertSlot(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got, err := wr.resolve(ctx, s, lost); err != nil || got == nil {
		t.Fatalf("resolve of an applied commit: %v", err)
	}
	wr.finish(ctx, s, nil)

	// Never applied: fenced and reported as not committed; the next
	// reader repairs the working database.
	wr = start("never")
	s = &wal.Slot{TL: b.Timeline, N: wr.lease.N, Kind: wal.SlotCommit, Base: wr.base.LSN, LSN: wr.next - 1, Token: wr.token}
	if _, err := wr.resolve(ctx, s, lost); err == nil || errors.As(err, new(*wal.UnknownOutcomeError)) {
		t.Fatalf("resolve of a commit never applied: %v, want not committed", err)
	}
	if late := r.InsertSlot(ctx, s); !wal.IsDuplicate(late) {
		t.Fatalf("a late commit insert after the fence: %v, want refused", late)
	}
	if got := ids(t, w); len(got) != 1 || got[0] != "applied" {
		t.Fatalf("branch holds %v, want [applied]", got)
	}

	// Server unreachable: unknown, after the bound.
	wr = start("unknown")
	s = &wal.Slot{TL: b.Timeline, N: wr.lease.N, Kind: wal.SlotCommit, Base: wr.base.LSN, LSN: wr.next - 1, Token: wr.token}
	down := *r
	if err := down.Client.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	wr.r = &down
	p.ResolveTimeout = 300 * time.Millisecond
	_, err := wr.resolve(ctx, s, lost)
	var uo *wal.UnknownOutcomeError
	if !errors.As(err, &uo) {
		t.Fatalf("resolve with the server gone: %v, want unknown outcome", err)
	}
}

// A reader never accepts a result taken while the working database is
// being rebuilt (the marker-version ABA of the old protocol): the lease a
// rebuild holds makes the reader wait, and it then sees the whole state.
func TestReaderWaitsForRebuild(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	docs := make([]bson.Raw, 300)
	for i := range docs {
		docs[i] = mustMarshal(bson.D{{Key: "_id", Value: fmt.Sprintf("d%03d", i)}})
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	// The reader has read the marker; before its query, another process
	// starts a rebuild (takes the lease, drops the database) and finishes
	// it a little later.
	rebuilder := p.Open(r, b)
	reader := p.Open(r, b)
	calls := 0
	done := make(chan error, 1)
	var n int64
	err := p.Read(ctx, reader, func(*workdb.Marker) error {
		calls++
		if calls == 1 {
			wr, err := p.acquire(ctx, rebuilder, nil)
			if err != nil {
				return err
			}
			if err := rebuilder.DB.Drop(ctx); err != nil {
				return err
			}
			go func() {
				time.Sleep(100 * time.Millisecond)
				_, err := rebuilder.Rebuild(ctx, wr.base, "")
				if err == nil {
					err = wr.release(ctx)
				}
				done <- err
			}()
		}
		var err error
		n, err = reader.DB.Collection("c").CountDocuments(ctx, bson.D{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n != 300 || calls < 2 {
		t.Fatalf("reader counted %d documents in %d tries, want 300 after a retry", n, calls)
	}
}

// Under a steady stream of writes a reader still finishes (finding 5 of
// the write-path issue: the old read loop could spin forever): after a few
// optimistic tries it queues for the branch like a writer.
func TestReadUnderSteadyWritesIsBounded(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	writer := p.Open(r, b)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			raw := mustMarshal(bson.D{{Key: "_id", Value: "w" + string(rune('a'+i%26)) + time.Now().Format("150405.000000000")}})
			if _, err := writer.Insert(ctx, "c", []bson.Raw{raw}, wal.CommitInfo{}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reader := *r
	reader.BusyTimeout = 2 * time.Second
	last := int64(-1)
	for i := 0; i < 20; i++ {
		n, err := p.Open(&reader, b).Count(ctx, "c", nil)
		if err != nil {
			t.Fatalf("read %d under steady writes: %v", i, err)
		}
		if n < last {
			t.Fatalf("read %d counted %d documents, fewer than the %d before", i, n, last)
		}
		last = n
	}
	close(stop)
	<-done
}

// A writer that waits on another's lease says so once, after a while: a
// stopped holder is only taken over after the lease TTL, and a command that
// printed nothing for that long looked hung (found by a new-user
// walkthrough).
func TestWaitingWriterSaysSo(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	r.LeaseTTL = time.Hour
	holder := p.Open(r, b)
	wr, err := p.acquire(ctx, holder, []wal.KeyRef{})
	if err != nil {
		t.Fatal(err)
	}
	defer wr.stopHB()
	defer func(d time.Duration) { waitNotice = d }(waitNotice)
	waitNotice = 50 * time.Millisecond
	waiter := *r
	waiter.BusyTimeout = time.Second
	w := p.Open(&waiter, b)
	var notices []string
	w.Notice = func(s string) { notices = append(notices, s) }
	_, err = w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "w"}})}, wal.CommitInfo{})
	var be *wal.BusyError
	if !errors.As(err, &be) {
		t.Fatalf("waiter: %v, want busy", err)
	}
	want := "waiting for another writer on branch main (on " + wal.Hostname() + "); one that stopped is taken over after 1h0m0s without a heartbeat"
	if len(notices) != 1 || notices[0] != want {
		t.Fatalf("notices %q, want one: %q", notices, want)
	}
}

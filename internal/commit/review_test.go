package commit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

func d1(id string) bson.Raw { return mustMarshal(bson.D{{Key: "_id", Value: id}}) }

// A streamed insert announces only its first batch in its lease, and
// widens it before later batches: a crash after them is repaired by a
// rebuild, so none of its documents stays (found in review: later batches
// stayed in the working database).
func TestStreamCrashLeavesNothing(t *testing.T) {
	_, r, b := waltest.Project(t)
	p := New()
	ctx, cancel := context.WithCancel(context.Background())
	w := p.Open(r, b)
	batches := [][]bson.Raw{{d1("a1"), d1("a2")}, {d1("b1"), d1("b2")}}
	i := 0
	next := func() ([]bson.Raw, error) {
		if i >= len(batches) {
			return nil, nil
		}
		i++
		return batches[i-1], nil
	}
	Hook = func(pt string) {
		if pt == "applied" {
			panic("killed")
		}
	}
	func() {
		defer func() { recover() }()
		_, _ = w.InsertStream(ctx, "c", next, wal.CommitInfo{}, nil)
	}()
	Hook = nil
	cancel()
	r2 := *r
	r2.Exclusive = true // the crashed process has ended
	w2 := p.Open(&r2, b)
	if _, err := w2.Insert(context.Background(), "c", []bson.Raw{d1("z")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, p.Open(r, b)); len(got) != 1 || got[0] != "z" {
		t.Fatalf("branch holds %v, want [z]", got)
	}
}

// When the repair of a dirty void fails (here the user's context is
// cancelled), the slot is voided dirty again with the keys being
// repaired, never released clean (found in review: the fenced writer's
// keys were never repaired).
func TestFailedRepairStaysDirty(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	stalled := p.Open(r, b)
	wr, err := p.acquire(ctx, stalled, []wal.KeyRef{{Coll: "c", Key: wal.KeyOf(d1("x").Lookup("_id"))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := insertOp(stalled, "x")(ctx, func(e []wal.Entry) error { return wr.emit(ctx, e) }); err != nil {
		t.Fatal(err)
	}
	wr.stopHB() // the process dies here
	r2 := *r
	r2.Exclusive = true
	w2 := p.Open(&r2, b)
	cctx, cancel := context.WithCancel(ctx)
	Hook = func(pt string) {
		if pt == "leased" {
			cancel() // Ctrl-C
		}
	}
	_, err = w2.Insert(cctx, "c", []bson.Raw{d1("y")}, wal.CommitInfo{})
	Hook = nil
	t.Logf("interrupted insert: %v", err)
	for n := int64(1); n <= 3; n++ {
		s, _ := r.ReadSlot(ctx, b.Timeline, n)
		if s != nil {
			t.Logf("slot %d: kind=%s dirty=%v known=%v keys=%d", n, s.Kind, s.Dirty, s.KeysKnown, len(s.Keys))
		}
	}
	if got := ids(t, p.Open(r, b)); len(got) != 0 {
		t.Fatalf("branch holds %v, want [] (x was never committed)", got)
	}
}

// A reader running under its own lease keeps it alive with a heartbeat,
// so a slow consumer is not fenced out mid-read (found in review: one Read
// saw two states). On a very busy machine the heartbeat may come later
// than the TTL and the reader is fenced out: then Read must fail, never
// return a torn result.
func TestSlowReadUnderLeaseIsNotTorn(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	if _, err := w.Insert(ctx, "c", []bson.Raw{d1("a"), d1("b")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	r.LeaseTTL = 100 * time.Millisecond
	r.BusyTimeout = 5 * time.Second
	if err := w.DB.Drop(ctx); err != nil { // forces the reader onto the lease path
		t.Fatal(err)
	}
	reader := p.Open(r, b)
	writer := p.Open(r, b)
	var first, second int64
	done := make(chan error, 1)
	go func() {
		done <- p.Read(ctx, reader, func(m *workdb.Marker) error {
			first, _ = reader.DB.Collection("c").CountDocuments(ctx, bson.D{})
			time.Sleep(600 * time.Millisecond) // a slow consumer, process alive
			second, _ = reader.DB.Collection("c").CountDocuments(ctx, bson.D{})
			return nil
		})
	}()
	time.Sleep(150 * time.Millisecond)
	if _, err := writer.Insert(ctx, "c", []bson.Raw{d1("w")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var taken *wal.TakenOverError
	if errors.As(err, &taken) {
		// Legitimate on a machine so busy that the heartbeat came later
		// than the TTL: the reader was fenced out and said so. What must
		// never happen is a torn read reported as a success.
		t.Logf("the reader's heartbeat was late and it was taken over: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatalf("one Read saw %d then %d documents and returned nil", first, second)
	}
}

// A writer judged gone whose change then fails must not write its stale
// base values back over a later acknowledged commit: it voids its slot
// (refused: it was fenced) and repairs under a fresh lease from the log's
// new head (found in review: the log later lost an increment).
func TestFailureAfterTakeoverKeepsLaterCommit(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	k := mustMarshal(bson.D{{Key: "_id", Value: "k"}, {Key: "v", Value: int32(1)}, {Key: "s", Value: "str"}})
	if _, err := w.Insert(ctx, "c", []bson.Raw{k}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	r.LeaseTTL = 100 * time.Millisecond
	r.BusyTimeout = 5 * time.Second
	var stall atomic.Bool
	stall.Store(true)
	resume := make(chan struct{})
	leased := make(chan struct{})
	Hook = func(pt string) {
		if pt == "leased" && stall.CompareAndSwap(true, false) {
			close(leased)
			<-resume
		}
	}
	defer func() { Hook = nil }()
	filter := mustMarshal(bson.D{{Key: "_id", Value: "k"}})
	stalledErr := make(chan error, 1)
	go func() {
		_, err := p.Open(r, b).Modify(ctx, "c", workdb.Modification{Filter: filter,
			Update: mustMarshal(bson.D{{Key: "$inc", Value: bson.D{{Key: "s", Value: 1}}}})}, workdb.Limits{}, wal.CommitInfo{})
		stalledErr <- err
	}()
	<-leased
	res, err := p.Open(r, b).Modify(ctx, "c", workdb.Modification{Filter: filter,
		Update: mustMarshal(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(2)}}}})}, workdb.Limits{}, wal.CommitInfo{})
	if err != nil || res.Commit == nil {
		t.Fatalf("live update: %v %+v", err, res)
	}
	close(resume)
	t.Logf("stalled update: %v", <-stalledErr)
	docs, err := p.Open(r, b).Find(ctx, "c", workdb.Query{})
	if err != nil {
		t.Fatal(err)
	}
	v := docs[0].Lookup("v").Int32()
	st, _ := r.Fold(ctx, b.Timeline, res.Head, "c")
	logv := st.Docs("c")[0].Lookup("v").Int32()
	if v != logv {
		t.Errorf("working database has v=%d, log head has v=%d (acknowledged)", v, logv)
	}
	res, err = p.Open(r, b).Modify(ctx, "c", workdb.Modification{Filter: filter,
		Update: mustMarshal(bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: int32(1)}}}})}, workdb.Limits{}, wal.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ = r.Fold(ctx, b.Timeline, res.Head, "c")
	if got := st.Docs("c")[0].Lookup("v").Int32(); got != 3 {
		t.Errorf("after v=2 (acknowledged) and $inc v 1 (acknowledged), the LOG holds v=%d", got)
	}
}

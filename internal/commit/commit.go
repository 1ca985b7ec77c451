// Package commit is argon's write protocol, end to end: a write takes a
// token and a lease on the next head slot of its timeline, evaluates its
// change on the branch's working database, and commits by one unique
// insert of that slot. Readers of working databases are guarded here too.
//
// Safety comes from the slot insert alone (fencing): slots are dense,
// never changed and never deleted, and a slot names the token whose entries
// it makes visible. Leases only decide when a writer tries: a writer judged
// gone is fenced out by a void slot inserted at its number, so whatever it
// does later cannot commit. No decision depends on wall clocks, process ids
// or host names. See docs/ARCHITECTURE.md, "Commit protocol".
package commit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// Hook, when set (by tests only), is called at named points of the
// protocol: "leased", "applied", "before-commit", "after-commit". A test
// uses it to stop or kill a writer at an exact step.
var Hook func(point string)

func hook(point string) {
	if Hook != nil {
		Hook(point)
	}
}

// Inline limits: a commit with at most this many entries and bytes keeps
// its entries inside its slot, so that it is one insert.
const (
	inlineEntries = 64
	inlineBytes   = 64 << 10
	// intentKeys is the most keys a void records for repair; past it, the
	// repair rebuilds the working database.
	intentKeys = 1000
)

// Protocol runs writes and guards reads of working databases.
type Protocol struct {
	// ResolveTimeout bounds how long a commit whose reply was lost is
	// read back before its outcome is reported unknown.
	ResolveTimeout time.Duration
	// Since measures elapsed time on this process's own clock (tests
	// replace it); only waiting decisions use it.
	Since func(time.Time) time.Duration
}

// New returns the protocol with its defaults.
func New() *Protocol {
	return &Protocol{ResolveTimeout: 20 * time.Second, Since: time.Since}
}

// Open returns the working database of branch b, run by protocol p.
func (p *Protocol) Open(repo *wal.Repo, b *wal.Branch) *workdb.Branch {
	w := workdb.Open(repo, b)
	w.Protocol = p
	return w
}

// observation is what a waiting process saw of a lease, and since when.
type observation struct {
	token string
	beat  int64
	first time.Time
}

// gone reports whether the holder of lease l may be taken over: in an
// exclusive process at once (its holder has ended), otherwise once its
// heartbeat has been seen unchanged for its TTL on this process's clock.
func (p *Protocol) gone(r *wal.Repo, l *wal.Lease, seen map[int64]*observation) bool {
	if r.Exclusive {
		return true
	}
	o := seen[l.N]
	if o == nil || o.token != l.Token || o.beat != l.Beat {
		seen[l.N] = &observation{token: l.Token, beat: l.Beat, first: time.Now()}
		return false
	}
	ttl := time.Duration(l.TTLMillis) * time.Millisecond
	if ttl <= 0 {
		ttl = r.LeaseTTL
	}
	return p.Since(o.first) >= ttl
}

// writer is one write in progress.
type writer struct {
	p      *Protocol
	w      *workdb.Branch
	r      *wal.Repo
	token  string
	lease  *wal.Lease
	base   *wal.Slot
	epoch  string
	sums   workdb.Sums // fingerprint at base, nil when unknown
	next   int64
	buf    []wal.Entry
	bytes  int
	spill  bool
	stats  map[string]*wal.CollStats
	stopHB func()
}

func sleepJitter(ctx context.Context, backoff *time.Duration) error {
	d := *backoff/2 + rand.N(*backoff)
	*backoff = min(*backoff*2, 100*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// acquire takes the lease on the next slot of w's timeline, waiting for a
// live holder and fencing out a gone one, then brings the working
// database to the committed head (rebuilding or repairing it as the log
// says).
func (p *Protocol) acquire(ctx context.Context, w *workdb.Branch, intent []wal.KeyRef) (*writer, error) {
	r := w.Repo
	token := bson.NewObjectID().Hex()
	m, err := w.Marker(ctx)
	if err != nil {
		return nil, err
	}
	var known *wal.Slot
	if m != nil && m.TL == w.TL {
		// The marker names a slot that exists and a state the database
		// holds cleanly.
		known = &wal.Slot{TL: w.TL, N: m.Slot, LSN: m.LSN, Token: m.Token, Kind: wal.SlotCommit}
	} else if known, err = r.HeadSlot(ctx, w.TL, nil); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(r.BusyTimeout)
	seen := map[int64]*observation{}
	backoff := 2 * time.Millisecond
	var lease *wal.Lease
	for {
		n := known.N + 1
		lease = &wal.Lease{TL: w.TL, N: n, Token: token, TTLMillis: r.LeaseTTL.Milliseconds(), Keys: intent, Host: wal.Hostname()}
		err := r.InsertLease(ctx, lease)
		if err == nil {
			break
		}
		if !wal.IsDuplicate(err) {
			return nil, err
		}
		s, err := r.ReadSlot(ctx, w.TL, n)
		if err != nil {
			return nil, err
		}
		if s != nil {
			known = s // the head moved on
			continue
		}
		cur, err := r.ReadLease(ctx, w.TL, n)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			continue
		}
		if cur.Token == token {
			break // our own insert, whose reply was lost
		}
		if p.gone(r, cur, seen) {
			void := &wal.Slot{TL: w.TL, N: n, Kind: wal.SlotVoid, Base: known.LSN, LSN: known.LSN,
				Token: token, Time: r.Now(), Dirty: true, Keys: cur.Keys}
			if err := r.InsertSlot(ctx, void); err != nil && !wal.IsDuplicate(err) {
				return nil, err
			} else if err == nil {
				w.Notice(fmt.Sprintf("a writer on branch %s (on %s) stopped before committing; its write was discarded", w.Name, cur.Host))
			}
			continue
		}
		if time.Now().After(deadline) {
			return nil, &wal.BusyError{Branch: w.Name, Host: cur.Host}
		}
		if err := sleepJitter(ctx, &backoff); err != nil {
			return nil, err
		}
	}
	hook("leased")
	wr := &writer{p: p, w: w, r: r, token: token, lease: lease, base: known, next: known.LSN + 1,
		stats: map[string]*wal.CollStats{}, stopHB: func() {}}
	if err := wr.prepare(ctx, m); err != nil {
		wr.abort(ctx)
		return nil, err
	}
	return wr, nil
}

// prepare brings the working database to the base state. m is the marker
// read before the lease was taken.
func (wr *writer) prepare(ctx context.Context, m *workdb.Marker) error {
	w, base := wr.w, wr.base
	switch {
	case m == nil:
		notice := ""
		if w.Known(ctx) {
			notice = "the working database of branch " + w.Name + " was missing; rebuilt it from the log"
		}
		nm, err := w.Rebuild(ctx, base, notice)
		if err != nil {
			return err
		}
		wr.epoch, wr.sums = nm.Epoch, nm.Sums
		return nil
	case m.TL != w.TL || m.Slot > base.N:
		nm, err := w.Rebuild(ctx, base, "")
		if err != nil {
			return err
		}
		wr.epoch, wr.sums = nm.Epoch, nm.Sums
		return nil
	}
	wr.epoch = m.Epoch
	if m.Slot == base.N {
		wr.sums = m.Sums
	}
	if base.Kind != wal.SlotVoid || !base.Dirty {
		return nil
	}
	// A writer was fenced out at base: the database may hold part of its
	// change. Repair what it announced (and what fenced-out writers just
	// before it announced); rebuild when any of them did not say.
	var keys []wal.KeyRef
	for s := base; s.Kind == wal.SlotVoid && s.Dirty; {
		if s.Keys == nil {
			nm, err := w.Rebuild(ctx, base, "a write to branch "+w.Name+" did not complete; rebuilt its working database from the log")
			if err != nil {
				return err
			}
			wr.epoch, wr.sums = nm.Epoch, nm.Sums
			return nil
		}
		keys = append(keys, s.Keys...)
		if s.N <= m.Slot+1 {
			break
		}
		prev, err := wr.r.ReadSlot(ctx, w.TL, s.N-1)
		if err != nil || prev == nil {
			return fmt.Errorf("read slot %d of timeline %s: %v", s.N-1, w.TL, err)
		}
		s = prev
	}
	w.Notice("a write to branch " + w.Name + " did not complete; repaired the documents it touched from the log")
	wr.sums = nil
	return w.Repair(ctx, base.LSN, keys)
}

// heartbeat keeps the lease visibly alive while the write runs.
func (wr *writer) heartbeat(ctx context.Context) {
	every := wr.r.LeaseTTL / 3
	if every <= 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = wr.r.Heartbeat(context.WithoutCancel(ctx), wr.lease)
			}
		}
	}()
	stopped := false
	wr.stopHB = func() {
		if !stopped {
			stopped = true
			close(done)
		}
	}
}

// emit gives the next entries their LSNs and token and keeps them: inline
// while the commit is small, in the entries collection once it is not.
func (wr *writer) emit(ctx context.Context, entries []wal.Entry) error {
	for i := range entries {
		e := &entries[i]
		e.TL, e.LSN, e.Token = wr.w.TL, wr.next, wr.token
		wr.next++
		wr.bytes += len(e.Doc) + len(e.KeyBytes) + len(e.Coll)
	}
	wal.AddStats(wr.stats, entries)
	wr.buf = append(wr.buf, entries...)
	if !wr.spill && len(wr.buf) <= inlineEntries && wr.bytes <= inlineBytes {
		return nil
	}
	wr.spill = true
	if err := wr.r.SpillEntries(ctx, wr.buf); err != nil {
		return err
	}
	wr.buf = wr.buf[:0]
	return nil
}

// commit inserts the slot. It returns the committed slot, a
// TakenOverError, or an UnknownOutcomeError.
func (wr *writer) commit(ctx context.Context, info *wal.CommitInfo) (*wal.Slot, error) {
	s := &wal.Slot{TL: wr.w.TL, N: wr.lease.N, Kind: wal.SlotCommit, Base: wr.base.LSN, LSN: wr.next - 1,
		Token: wr.token, Time: wr.r.Now(), Message: info.Message, Author: info.Author, MergeOf: info.MergeOf,
		Stats: wal.SortedStats(wr.stats), Spilled: wr.spill}
	if !wr.spill {
		s.Entries = make([]wal.SlotEntry, len(wr.buf))
		for i, e := range wr.buf {
			s.Entries[i] = wal.SlotEntry{Op: e.Op, Coll: e.Coll, Key: e.KeyBytes, Doc: e.Doc}
		}
	}
	hook("before-commit")
	err := wr.r.InsertSlot(ctx, s)
	if err == nil {
		return s, nil
	}
	if wal.IsDuplicate(err) {
		got, rerr := wr.r.ReadSlot(context.WithoutCancel(ctx), s.TL, s.N)
		if rerr == nil && got != nil && got.Token == wr.token {
			return s, nil
		}
		return nil, &wal.TakenOverError{Branch: wr.w.Name, Void: got != nil && got.Kind == wal.SlotVoid}
	}
	return wr.resolve(ctx, s, err)
}

// resolve settles a commit whose reply was lost: read the slot back; if it
// is not there, fill it with a void of our own, which fences out the
// commit insert should it still be in flight, and read again. Whichever
// insert the server took decides. Nothing is undone while the outcome is
// unknown.
func (wr *writer) resolve(ctx context.Context, s *wal.Slot, cause error) (*wal.Slot, error) {
	deadline := time.Now().Add(wr.p.ResolveTimeout)
	base := context.WithoutCancel(ctx)
	backoff := 20 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(base, 2*time.Second)
		got, err := wr.r.ReadSlot(tctx, s.TL, s.N)
		if err == nil && got == nil {
			void := &wal.Slot{TL: s.TL, N: s.N, Kind: wal.SlotVoid, Base: s.Base, LSN: s.Base, Token: wr.token + "-void",
				Time: wr.r.Now(), Dirty: true, Keys: touchedKeys(wr.w)}
			err = wr.r.InsertSlot(tctx, void)
			if err == nil || wal.IsDuplicate(err) {
				got, err = wr.r.ReadSlot(tctx, s.TL, s.N)
			}
		}
		cancel()
		if err == nil && got != nil {
			if got.Token == wr.token {
				return s, nil
			}
			if got.Token == wr.token+"-void" {
				return nil, fmt.Errorf("the write was not committed: %w", cause)
			}
			return nil, &wal.TakenOverError{Branch: wr.w.Name, Void: got.Kind == wal.SlotVoid}
		}
		if time.Now().After(deadline) {
			return nil, &wal.UnknownOutcomeError{Branch: wr.w.Name, Err: cause}
		}
		_ = sleepJitter(base, &backoff)
		backoff = max(backoff, 200*time.Millisecond)
	}
}

func touchedKeys(w *workdb.Branch) []wal.KeyRef {
	t := w.Touched()
	if len(t) > intentKeys {
		return nil
	}
	if t == nil {
		return []wal.KeyRef{}
	}
	return t
}

// finish records, after the slot is in, that the working database
// reflects it. A failure here loses nothing: the marker is only a hint.
func (wr *writer) finish(ctx context.Context, s *wal.Slot, sums workdb.Sums) {
	_ = wr.w.AdvanceMarker(context.WithoutCancel(ctx), wr.epoch, s, sums)
	wr.r.MaybeAdvanceHint(context.WithoutCancel(ctx), s.TL, s.N)
}

// release gives the lease back without a commit, by filling the slot with
// a clean void: the database reflects the base state again.
func (wr *writer) release(ctx context.Context) error {
	wr.stopHB()
	ctx = context.WithoutCancel(ctx)
	void := &wal.Slot{TL: wr.w.TL, N: wr.lease.N, Kind: wal.SlotVoid, Base: wr.base.LSN, LSN: wr.base.LSN,
		Token: wr.token, Time: wr.r.Now()}
	if err := wr.r.InsertSlot(ctx, void); err != nil {
		if !wal.IsDuplicate(err) {
			return err
		}
		got, rerr := wr.r.ReadSlot(ctx, void.TL, void.N)
		if rerr != nil || got == nil || got.Token != wr.token {
			return nil // someone took over; they repair
		}
	}
	wr.finish(ctx, void, wr.sums)
	return nil
}

// abort ends a write that failed before its commit: the keys it touched
// are repaired from the log, under its lease, and the lease is released.
// If the repair cannot be done, the slot is voided as dirty, naming the
// keys, so that the next writer repairs them.
func (wr *writer) abort(ctx context.Context) {
	wr.stopHB()
	ctx = context.WithoutCancel(ctx)
	defer func() {
		if wr.spill {
			// Our own entries, under a slot that is now void or will be
			// voided by whoever takes over: they can never commit.
			_ = wr.r.DeleteOwnEntries(ctx, wr.w.TL, wr.token)
		}
	}()
	if t := wr.w.Touched(); len(t) > 0 {
		if err := wr.w.Repair(ctx, wr.base.LSN, t); err != nil {
			void := &wal.Slot{TL: wr.w.TL, N: wr.lease.N, Kind: wal.SlotVoid, Base: wr.base.LSN, LSN: wr.base.LSN,
				Token: wr.token, Time: wr.r.Now(), Dirty: true, Keys: touchedKeys(wr.w)}
			_ = wr.r.InsertSlot(ctx, void)
			return
		}
	}
	_ = wr.release(ctx)
}

// Write runs apply on the working database of w as one commit.
func (p *Protocol) Write(ctx context.Context, w *workdb.Branch, info *wal.CommitInfo, intent []wal.KeyRef, apply workdb.ApplyFunc) (*wal.Commit, int64, error) {
	wr, err := p.acquire(ctx, w, intent)
	if err != nil {
		return nil, 0, err
	}
	wr.heartbeat(ctx)
	w.BeginWrite(wr.base.LSN)
	err = apply(ctx, func(entries []wal.Entry) error { return wr.emit(ctx, entries) })
	hook("applied")
	if err != nil {
		wr.abort(ctx)
		return nil, 0, err
	}
	if wr.next == wr.base.LSN+1 {
		// Nothing changed: no commit.
		return nil, wr.base.LSN, wr.release(ctx)
	}
	if wr.spill && len(wr.buf) > 0 {
		if err := wr.r.SpillEntries(ctx, wr.buf); err != nil {
			wr.abort(ctx)
			return nil, 0, err
		}
	}
	wr.stopHB()
	s, err := wr.commit(ctx, info)
	if err != nil {
		var to *wal.TakenOverError
		if errors.As(err, &to) {
			p.repairAfterLoss(ctx, w, w.Touched())
		}
		return nil, 0, err
	}
	hook("after-commit")
	wr.finish(ctx, s, w.NextSums(wr.sums))
	return s.Commit(), s.LSN, nil
}

// repairAfterLoss takes the keys a fenced-out write changed back to the
// log's state, under a lease of its own: the write may have changed the
// database after the process that fenced it out repaired it.
func (p *Protocol) repairAfterLoss(ctx context.Context, w *workdb.Branch, keys []wal.KeyRef) {
	if len(keys) == 0 {
		return
	}
	keys = append([]wal.KeyRef(nil), keys...)
	ctx = context.WithoutCancel(ctx)
	wr, err := p.acquire(ctx, w, keys)
	if err != nil {
		return
	}
	w.BeginWrite(wr.base.LSN)
	if err := w.Repair(ctx, wr.base.LSN, keys); err != nil {
		wr.abort(ctx)
		return
	}
	_ = wr.release(ctx)
}

// Restore rebuilds the working database from the log at the head,
// discarding what applications changed in it.
func (p *Protocol) Restore(ctx context.Context, w *workdb.Branch) (int64, error) {
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		return 0, err
	}
	w.BeginWrite(wr.base.LSN)
	m, err := w.Rebuild(ctx, wr.base, "")
	if err != nil {
		wr.abort(ctx)
		return 0, err
	}
	wr.epoch, wr.sums = m.Epoch, m.Sums
	return wr.base.LSN, wr.release(ctx)
}

// Read runs fn against a working database that reflects the committed
// head, and makes sure no writer touched it while fn ran: fn runs again
// if one did, and after three tries it runs under a lease of its own.
//
// Fast path: read the marker (slot m), run fn, then check that nobody has
// taken slot m+1. Every writer takes that lease before it changes the
// database, so its absence after fn means fn saw exactly the state of
// slot m, and that slot m is still the head.
func (p *Protocol) Read(ctx context.Context, w *workdb.Branch, fn func(*workdb.Marker) error) error {
	r := w.Repo
	seen := map[int64]*observation{}
	backoff := 2 * time.Millisecond
	// A few optimistic tries; then the reader queues for the branch like a
	// writer, so that a steady stream of writes cannot starve it.
	for attempt := 0; attempt < 3; attempt++ {
		m, err := w.Marker(ctx)
		if err != nil {
			return err
		}
		if m == nil || m.TL != w.TL {
			break
		}
		ok, err := p.readAt(ctx, w, m, m, fn)
		if err != nil || ok {
			return err
		}
		// The marker lags, or a writer is at work or gone.
		h, err := r.HeadSlot(ctx, w.TL, &wal.Slot{TL: w.TL, N: m.Slot, LSN: m.LSN, Token: m.Token})
		if err != nil {
			return err
		}
		if h.Kind == wal.SlotVoid && h.Dirty {
			break // a repair is due
		}
		if h.N > m.Slot {
			mh := *m
			mh.Slot, mh.LSN, mh.Token, mh.Sums = h.N, h.LSN, h.Token, nil
			ok, err := p.readAt(ctx, w, m, &mh, fn)
			if err != nil {
				return err
			}
			if ok {
				_ = w.AdvanceMarker(ctx, m.Epoch, h, nil)
				return nil
			}
		}
		l, err := r.ReadLease(ctx, w.TL, h.N+1)
		if err != nil {
			return err
		}
		if l != nil && p.gone(r, l, seen) {
			break
		}
		if err := sleepJitter(ctx, &backoff); err != nil {
			return err
		}
	}
	// Take the branch (waiting for a live writer, bounded by BusyTimeout;
	// fencing a gone one; rebuilding or repairing), read under the lease,
	// let go.
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		return err
	}
	at := &workdb.Marker{Project: w.Project, Branch: w.Name, TL: w.TL, Slot: wr.base.N, LSN: wr.base.LSN,
		Token: wr.base.Token, Epoch: wr.epoch, Sums: wr.sums}
	err = fn(at)
	if rerr := wr.release(ctx); err == nil {
		err = rerr
	}
	return err
}

// readAt runs fn with marker at when the database reflects it: when slot
// at.Slot+1 is untaken before and after fn. m is the marker as read.
func (p *Protocol) readAt(ctx context.Context, w *workdb.Branch, m, at *workdb.Marker, fn func(*workdb.Marker) error) (bool, error) {
	if at != m {
		busy, err := w.Repo.LeaseExists(ctx, w.TL, at.Slot+1)
		if err != nil || busy {
			return false, err
		}
	}
	if err := fn(at); err != nil {
		return false, err
	}
	busy, err := w.Repo.LeaseExists(ctx, w.TL, at.Slot+1)
	return !busy && err == nil, err
}

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
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// Hook, when set (by tests only), is called at named points of the
// protocol: "marked" (the working database's marker read), "leasing"
// (before each try for the lease, which a hold of the working database's
// writes at argon serve may ride on), "leased",
// "applied", "before-commit", "after-commit". A test
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
	// intentKeys is the most keys a lease or a void holds itself; past
	// it, or past intentBytes of them, they go to key pages (wal's
	// collKeyPages), so that a void stays far from a document's size
	// limit whatever the _ids.
	intentKeys  = wal.PageKeys
	intentBytes = wal.PageBytes
)

// keyBytes is the size of keys, as a void holds them.
func keyBytes(keys []wal.KeyRef) int { return wal.KeyBytes(keys) }

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

// writer is one write in progress: a lease held on slot lease.N.
type writer struct {
	p     *Protocol
	w     *workdb.Branch
	r     *wal.Repo
	token string
	lease *wal.Lease
	base  *wal.Slot
	epoch string
	sums  workdb.Sums // fingerprint at base, nil when unknown
	// built: this writer rebuilt the working database from the log.
	built bool
	next  int64
	buf   []wal.Entry
	bytes int
	spill bool
	// keyed counts the key records of the chunks spilled (Slot.Keyed);
	// -1 once some could not be written.
	keyed  int
	stats  map[string]*wal.CollStats
	stopHB func()
	// unhold lets other clients' writes reach the working database again
	// (see workdb.DBFiles.HoldWrites).
	unhold func()
	// paged is the keys this writer last wrote to its key pages, in the
	// order written (see writePages).
	paged []wal.KeyRef
	// rebuilding: the caller rebuilds the database right after taking
	// the branch (acquireFor).
	rebuilding bool
	// prepared is set once the working database is at base (prepare):
	// a dirty void below is repaired.
	prepared bool
	// advanced: the marker's update to the commit rode on the commit's
	// insert and was applied (insertCommit).
	advanced bool
	// cause is the error that made the write fail, when a server answer
	// or the lack of one ended it (see fail).
	cause error
	// unknown is set once the lease no longer announces the keys the
	// write may change (a rebuild, a widened write), until it announces
	// them again (announce): if this process dies meanwhile, the next
	// holder rebuilds.
	unknown bool
	// untracked is set once the write may have changed keys it did not
	// record as touched (a rebuild, Widen): a failure then leaves a void
	// that makes the next holder rebuild. A write widened past a void's
	// limits by announce still touches every key before it changes it: a
	// failure in the process repairs them.
	untracked bool
}

// waitNotice is how long a writer waits on another's lease before it says
// so.
var waitNotice = 3 * time.Second

// maxBackoff caps the wait between polls of a held branch: short, so that
// a waiting reader or writer gets its turn between the commits of a busy
// writer, which re-leases within a few milliseconds.
const maxBackoff = 20 * time.Millisecond

func sleepJitter(ctx context.Context, backoff *time.Duration) error {
	d := *backoff/2 + rand.N(*backoff)
	*backoff = min(*backoff*2, maxBackoff)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// acquire takes the lease on the next slot of w's timeline, waiting for a
// live holder and fencing out a gone one, keeps it alive with a heartbeat,
// then brings the working database to the committed head (rebuilding or
// repairing it as the log says). intent names the keys the write will
// change, when known (nil: unknown).
func (p *Protocol) acquire(ctx context.Context, w *workdb.Branch, intent []wal.KeyRef) (*writer, error) {
	return p.acquireFor(ctx, w, intent, false)
}

// acquireFor is acquire; with rebuilding, the caller rebuilds the working
// database from the log at once (Restore), so the keys of a write that
// did not complete are not repaired first: a repair that cannot succeed
// (an application's uncommitted document holds a unique key a committed
// one needs back) would otherwise leave no way out (found by review).
func (p *Protocol) acquireFor(ctx context.Context, w *workdb.Branch, intent []wal.KeyRef, rebuilding bool) (*writer, error) {
	r := w.Repo
	token := bson.NewObjectID().Hex()
	m, err := w.Marker(ctx)
	if err != nil {
		return nil, err
	}
	hook("marked")
	var known *wal.Slot
	// fromLog: the head was read from the log after the marker, so a
	// writer may have built the database and committed in between.
	fromLog := m == nil || m.TL != w.TL
	if !fromLog {
		// The marker names a slot that exists and a state the database
		// holds cleanly.
		known = &wal.Slot{TL: w.TL, N: m.Slot, LSN: m.LSN, Token: m.Token, Kind: wal.SlotCommit}
	} else if known, err = r.HeadSlot(ctx, w.TL, nil); err != nil {
		return nil, err
	}
	if known, err = follow(ctx, w, known); err != nil {
		return nil, err
	}
	if known.Closed {
		return nil, &wal.TakenOverError{Branch: w.Name, Void: true, Deleted: true}
	}
	deadline := time.Now().Add(r.BusyTimeout)
	seen := map[int64]*observation{}
	backoff := 2 * time.Millisecond
	var lease *wal.Lease
	waited, told := false, false
	var waitedSince time.Time
	// unhold releases a hold of the working database's writes that rode
	// on the lease's insert (workdb.CarriedHolds); nil: none did.
	var unhold func()
	for {
		n := known.N + 1
		// The lease names the keys the write may change: those known up
		// front (intent), and from then on each key before it changes,
		// or it widens first (workdb's announceTouched, Widen). So a
		// write whose keys are not known up front starts naming none,
		// not "unknown": a holder killed before it changed anything
		// leaves nothing to repair, and one killed while it repaired an
		// earlier write's keys leaves them named by that write's void,
		// where "unknown" made the next holder rebuild the database and
		// lose applications' uncommitted changes (review33: an index
		// create killed after taking the branch).
		lease = &wal.Lease{TL: w.TL, N: n, Token: token, TTLMillis: r.LeaseTTL.Milliseconds(),
			KeysKnown: true, Keys: intent, Host: wal.Hostname()}
		hook("leasing")
		var err error
		unhold, err = insertLease(ctx, w, lease)
		if err == nil {
			break
		}
		if !wal.IsDuplicate(err) {
			return nil, err
		}
		waited = true
		s, err := r.ReadSlot(ctx, w.TL, n)
		if err != nil {
			return nil, err
		}
		if s != nil {
			// The head moved on: try the next slot at once (on the
			// timeline a fast-forward moved the branch to, if it did).
			if s.Kind == wal.SlotMoved {
				if s, err = follow(ctx, w, s); err != nil {
					return nil, err
				}
				seen = map[int64]*observation{}
			}
			if s.Closed {
				return nil, &wal.TakenOverError{Branch: w.Name, Void: true, Deleted: true}
			}
			known = s
			backoff = 2 * time.Millisecond
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
				Token: token, Time: r.Now(), Dirty: true, KeysKnown: cur.KeysKnown, Keys: cur.Keys, Pages: cur.Pages, Taker: true}
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
		if waitedSince.IsZero() {
			waitedSince = time.Now()
		} else if !told && time.Since(waitedSince) >= waitNotice && w.Notice != nil {
			// Say why nothing happens (a stopped writer is only taken
			// over after the lease TTL). The notice decides nothing.
			told = true
			w.Notice(fmt.Sprintf("waiting for another writer on branch %s (on %s); one that stopped is taken over after %s without a heartbeat",
				w.Name, cur.Host, r.LeaseTTL))
		}
		if err := sleepJitter(ctx, &backoff); err != nil {
			return nil, err
		}
	}
	if waited || fromLog {
		// The marker read before waiting may predate the holders we
		// waited for (one may have built the database meanwhile). So
		// may one read before the head was read from the log: a writer
		// that built the database and committed in between leaves a
		// head this lease follows at once, and the stale marker made
		// this writer build or adopt a database with a marker already
		// in it (E11000 on _argon; seen in CI with five writers on a
		// new branch through the shared engine).
		if m, err = w.Marker(ctx); err != nil {
			void := &wal.Slot{TL: w.TL, N: lease.N, Kind: wal.SlotVoid, Base: known.LSN, LSN: known.LSN, Token: token, Time: r.Now()}
			stillDirty(void, known)
			_ = r.InsertSlot(context.WithoutCancel(ctx), void)
			if unhold != nil {
				unhold()
			}
			return nil, err
		}
	}
	hook("leased")
	wr := &writer{p: p, w: w, r: r, token: token, lease: lease, base: known, next: known.LSN + 1,
		stats: map[string]*wal.CollStats{}, stopHB: func() {}, unhold: func() {}}
	wr.heartbeat(ctx)
	// Before anything can fail: what an earlier write on w touched is not
	// this one's (a hold that failed looked like a write that changed
	// them; found by review).
	w.BeginWrite(known.LSN, wr.widen, wr.announce)
	if unhold != nil {
		wr.unhold = unhold
	} else if err := wr.hold(ctx); err != nil {
		wr.fail(ctx, false)
		return nil, err
	}
	held := w.DB.Name()
	wr.rebuilding = rebuilding
	if err := wr.prepare(ctx, m); err != nil {
		wr.fail(ctx, false)
		return nil, err
	}
	wr.prepared = true
	if w.DB.Name() != held {
		// Preparing gave the branch a database of another name (rebind):
		// the hold moves there, and the old name's database, another
		// metadata database's now, is let go.
		wr.unhold()
		if err := wr.hold(ctx); err != nil {
			wr.fail(ctx, false)
			return nil, err
		}
	}
	return wr, nil
}

// insertLease inserts lease l of w's branch. Where the working database's
// writes are held at argon serve and the hold can ride on the insert
// (workdb.CarriedHolds), it does, and the function that releases it is
// returned (nil: nothing held; the writer holds after the lease).
func insertLease(ctx context.Context, w *workdb.Branch, l *wal.Lease) (func(), error) {
	if ch, ok := w.Files.(workdb.CarriedHolds); ok {
		if field, done, ok := ch.HoldOn(w.DB.Name(), w.Repo.LeaseTTL); ok {
			ans, err := w.Repo.InsertLeaseCarrying(ctx, l, field)
			return done(ans, err), err
		}
	}
	return nil, w.Repo.InsertLease(ctx, l)
}

// hold holds, at argon serve, every other client's writes to the branch's
// working database: an application's uncommitted change never becomes
// part of what this writer checks, changes and reads back.
func (wr *writer) hold(ctx context.Context) error {
	w := wr.w
	if w.Files == nil {
		return nil
	}
	rel, err := w.Files.HoldWrites(ctx, w.DB.Name(), wr.r.LeaseTTL)
	if err != nil {
		return fmt.Errorf("holding the writes of %s at argon serve: %w", w.DB.Name(), err)
	}
	wr.unhold = rel
	return nil
}

// follow returns s, unless s closes its timeline: a fast-forward moved the
// branch to timeline s.To. Then w is pointed there (and the branch's
// binding too, if it still names the closed timeline: the fast-forward
// may have stopped before repointing it), and the head there is returned.
// Nothing is ever written to a timeline after its moved slot.
func follow(ctx context.Context, w *workdb.Branch, s *wal.Slot) (*wal.Slot, error) {
	for hops := 0; s.Kind == wal.SlotMoved; hops++ {
		if hops == 1000 {
			return nil, fmt.Errorf("log is inconsistent: timeline %s moves on more than 1000 times", w.TL)
		}
		from := w.TL
		w.TL = s.To
		if _, err := w.Repo.Repoint(ctx, w.Project, w.Name, from, s.To, s.LSN, wal.MoveAction(s)+" (completed by a later command)"); err != nil {
			return nil, err
		}
		next, err := w.Repo.HeadSlot(ctx, w.TL, nil)
		if err != nil {
			return nil, err
		}
		s = next
	}
	return s, nil
}

// widen clears the lease's announced keys before the holder goes beyond
// them.
func (wr *writer) widen(ctx context.Context, tracked bool) error {
	if !tracked {
		wr.untracked = true
	}
	if wr.unknown {
		return nil
	}
	wr.unknown = true
	if !wr.lease.KeysKnown && wr.lease.Pages == 0 {
		return nil
	}
	// A lease naming key pages says so with known false: Widen takes the
	// pages off it too (found by review).
	return wr.r.Widen(ctx, wr.lease)
}

// announce records keys in the lease as every key the write may change
// (workdb's announceTouched), unless it names them already: a writer that
// then dies is repaired key by key, not rebuilt. A write that may have
// changed keys it did not track cannot announce; past the limits of a
// void, the lease is widened instead.
func (wr *writer) announce(ctx context.Context, keys []wal.KeyRef) error {
	if wr.untracked {
		return nil
	}
	if len(keys) > intentKeys || keyBytes(keys) > intentBytes {
		// Too many for the lease record: they go to its key pages first,
		// then the record names how many there are.
		n, err := wr.writePages(ctx, keys)
		if err != nil {
			return err
		}
		if err := wr.r.AnnouncePages(ctx, wr.lease, n); err != nil {
			return err
		}
		wr.unknown = false
		return nil
	}
	if wr.lease.KeysKnown && !wr.unknown && covers(wr.lease.Keys, keys) {
		return nil
	}
	if err := wr.r.Announce(ctx, wr.lease, keys); err != nil {
		return err
	}
	wr.unknown = false
	return nil
}

// writePages stores keys as the key pages of this writer's lease (whose
// _id is its slot's) and returns how many pages they take. Keys only ever
// grow at the end during a write, so the pages before the last one
// written stand as they are; should the list differ from what was
// written, every page is written again.
func (wr *writer) writePages(ctx context.Context, keys []wal.KeyRef) (int, error) {
	pages := wal.Pages(keys)
	from := 0
	if len(wr.paged) <= len(keys) && slices.EqualFunc(wr.paged, keys[:len(wr.paged)], sameKey) {
		from = max(0, len(wal.Pages(wr.paged))-1)
	}
	if err := wr.r.WriteKeyPages(ctx, wr.lease.ID, pages, from); err != nil {
		return 0, err
	}
	wr.paged = append(wr.paged[:0], keys...)
	return len(pages), nil
}

func sameKey(a, b wal.KeyRef) bool {
	return a.Coll == b.Coll && a.Index == b.Index && string(a.Key) == string(b.Key)
}

// covers reports whether every key of keys is among have. More keys than
// have counts as not covered without a look: new keys, or a key touched
// twice, which costs one needless update of the lease.
func covers(have, keys []wal.KeyRef) bool {
	if len(keys) > len(have) {
		return false
	}
	id := func(k wal.KeyRef) string {
		kind := "d"
		if k.Index {
			kind = "i"
		}
		return kind + k.Coll + "\x00" + string(k.Key)
	}
	set := make(map[string]bool, len(have))
	for _, k := range have {
		set[id(k)] = true
	}
	for _, k := range keys {
		if !set[id(k)] {
			return false
		}
	}
	return true
}

// prepare brings the working database to the base state. m is the marker
// read before the lease was taken.
func (wr *writer) prepare(ctx context.Context, m *workdb.Marker) error {
	w, base := wr.w, wr.base
	build := func(notice string, keep bool) error {
		announced := wr.lease.KeysKnown
		if err := wr.widen(ctx, false); err != nil {
			return err
		}
		var nm *workdb.Marker
		var err error
		if keep {
			nm, err = w.Build(ctx, base)
		} else {
			nm, err = w.Rebuild(ctx, base, notice)
		}
		if errors.Is(err, workdb.ErrFilled) {
			// Nothing argon must repair: the database is adopted as it
			// is, and the write goes back to touching what it changes
			// (and to its announced keys).
			wr.unknown, wr.untracked = false, false
			if announced {
				if err := wr.r.Narrow(ctx, wr.lease); err != nil {
					return err
				}
			}
		}
		if err != nil {
			return err
		}
		wr.epoch, wr.sums, wr.built = nm.Epoch, nm.Sums, true
		// The rebuild is complete: from here on the write touches what
		// it changes, and changes only what it announced (or announces).
		wr.unknown, wr.untracked = false, false
		if announced {
			return wr.r.Narrow(ctx, wr.lease)
		}
		return nil
	}
	rebuild := func(notice string) error { return build(notice, false) }
	switch {
	case m == nil && base.Kind == wal.SlotVoid && base.Dirty && !base.KeysKnown && base.Pages == 0:
		// A rebuild or a write that could not say what it touched did not
		// finish: what the database holds is not an application's work.
		return rebuild("a write to branch " + w.Name + " did not complete; rebuilt its working database from the log")
	case m == nil:
		data, err := w.HasData(ctx)
		if err != nil {
			return err
		}
		if !data {
			// Missing or dropped, with nothing in it: nothing to keep,
			// but an application may write to it at any moment, so
			// the build never drops (ErrFilled: adopt what it wrote).
			if err := build("", true); !errors.Is(err, workdb.ErrFilled) {
				return err
			}
		}
		// Dropped (or never built by argon) and filled by an
		// application: keep what it holds, as uncommitted changes. Never
		// built: the branch's committed documents go in around it.
		adopt, notice := w.Adopt, "the working database of branch "+w.Name+" was re-created outside argon; what it holds shows as uncommitted changes (argon status; argon restore discards them)"
		if !w.Known(ctx) {
			adopt, notice = w.FillIn, "the working database of branch "+w.Name+" was written to before argon built it; argon put the branch's documents in around what it holds, which shows as uncommitted changes (argon status; argon restore discards them)"
		}
		nm, err := adopt(ctx, base)
		if errors.As(err, new(*workdb.ForeignError)) {
			// Not an application's work on this branch: another
			// metadata database's database took the name.
			return rebuild("")
		}
		if err != nil {
			return err
		}
		w.Notice(notice)
		m = nm
	case m.TL != w.TL || m.Slot > base.N:
		return rebuild("")
	}
	wr.epoch = m.Epoch
	if m.Slot == base.N {
		wr.sums = m.Sums
	}
	if base.Kind != wal.SlotVoid || !base.Dirty || wr.rebuilding {
		return nil
	}
	// A write that did not commit ended at base, leaving its changes in
	// the database: repair what it named (and what the dirty voids just
	// before it named); rebuild when any of them could not say.
	var keys []wal.KeyRef
	seen := map[string]bool{}
	add := func(ks []wal.KeyRef) {
		// Each key once: a repair that fails leaves a void naming every
		// key it walked, and without this each retry named them all
		// again, doubling (found by review).
		for _, k := range ks {
			id := k.Coll + "\x00" + string(k.Key)
			if k.Index {
				id = "i" + id
			}
			if !seen[id] {
				seen[id] = true
				keys = append(keys, k)
			}
		}
	}
	taker, reached := false, false
	for s := base; s.Kind == wal.SlotVoid && s.Dirty; {
		taker = taker || s.Taker
		if !s.KeysKnown && s.Pages == 0 {
			notice := ""
			if taker {
				notice = "a write to branch " + w.Name + " did not complete; rebuilt its working database from the log"
			}
			return rebuild(notice)
		}
		add(s.Keys)
		if s.Pages > 0 {
			pk, err := wr.r.KeyPagesOf(ctx, s.PagesID(), s.Pages)
			if err != nil {
				return err
			}
			add(pk)
		}
		if s.N <= m.Slot+1 {
			reached = true
			break
		}
		prev, err := wr.r.ReadSlot(ctx, w.TL, s.N-1)
		if err != nil || prev == nil {
			return fmt.Errorf("read slot %d of timeline %s: %v", s.N-1, w.TL, err)
		}
		s = prev
	}
	if taker {
		w.Notice("a write to branch " + w.Name + " did not complete; repaired the documents it touched from the log")
	}
	// Voids change nothing: when only voids lie between the marker and
	// base, the repaired database has the marker's fingerprint.
	wr.sums = nil
	if reached {
		wr.sums = m.Sums
	}
	wr.w.BeginWrite(base.LSN, wr.widen, wr.announce)
	for _, k := range keys {
		wr.w.Touch(k)
	}
	if err := w.Repair(ctx, base.LSN, keys); err != nil {
		return fmt.Errorf("repair what a write that did not complete changed in the working database of branch %s: %w (argon restore rebuilds it from the log, discarding its uncommitted changes)", w.Name, err)
	}
	wr.w.BeginWrite(base.LSN, wr.widen, wr.announce)
	return nil
}

// heartbeat keeps the lease visibly alive until stopHB.
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
			case <-t.C:
				_ = wr.r.Heartbeat(context.WithoutCancel(ctx), wr.lease)
			}
		}
	}()
	var once sync.Once
	wr.stopHB = func() { once.Do(func() { close(done) }) }
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
	n, err := wr.r.SpillEntries(ctx, wr.w.Project, wr.buf)
	if err != nil {
		return err
	}
	wr.addKeyed(n)
	wr.buf = wr.buf[:0]
	return nil
}

// addKeyed counts n more key records of spilled chunks, as SpillEntries
// returned it: -1 (some could not be written) leaves the commit with none.
func (wr *writer) addKeyed(n int) {
	if n < 0 || wr.keyed < 0 {
		wr.keyed = -1
		return
	}
	wr.keyed += n
}

// commit inserts the slot. It returns the committed slot, a
// TakenOverError, or an UnknownOutcomeError.
func (wr *writer) commit(ctx context.Context, info *wal.CommitInfo, sums workdb.Sums) (*wal.Slot, error) {
	s := &wal.Slot{TL: wr.w.TL, N: wr.lease.N, Kind: wal.SlotCommit, Base: wr.base.LSN, LSN: wr.next - 1,
		Token: wr.token, Time: wr.r.Now(), Message: info.Message, Author: info.Author, MergeOf: info.MergeOf,
		Stats: wal.SortedStats(wr.stats), Spilled: wr.spill, Keyed: max(wr.keyed, 0)}
	if !wr.spill {
		s.Entries = make([]wal.SlotEntry, len(wr.buf))
		for i, e := range wr.buf {
			s.Entries[i] = wal.SlotEntry{Op: e.Op, Coll: e.Coll, Key: e.KeyBytes, Doc: e.Doc}
		}
	}
	hook("before-commit")
	return wr.inserted(ctx, s, wr.insertCommit(ctx, s, sums))
}

// insertCommit inserts commit slot s. Through an argon serve that takes
// follow-ups (workdb.CarriedHolds), the working database's marker update
// to s (finish's, with sums) rides on it, and the release of the hold of
// its writes on that: the serve passes it on once the insert succeeded,
// so a commit is the slot's round trip alone.
func (wr *writer) insertCommit(ctx context.Context, s *wal.Slot, sums workdb.Sums) error {
	ch, ok := wr.w.Files.(workdb.CarriedHolds)
	if !ok || wr.built {
		return wr.r.InsertSlot(ctx, s)
	}
	db := wr.w.DB.Name()
	var extra []bson.E
	relField, relDone, relOK := ch.ReleaseOn(db)
	if relOK {
		extra = append(extra, relField)
	}
	field, done, ok := ch.Then(db, wr.w.AdvanceMarkerCommand(wr.epoch, s, sums, extra...))
	if !ok {
		if relOK {
			relDone(nil, errNotCarried)
		}
		return wr.r.InsertSlot(ctx, s)
	}
	ans, err := wr.r.InsertSlotCarrying(ctx, s, field)
	then := done(ans, err)
	if then != nil {
		ok, _ := then.Lookup("ok").AsFloat64OK()
		_, werr := then.LookupErr("writeErrors")
		wr.advanced = ok == 1 && werr != nil
	}
	if relOK {
		if then == nil {
			relDone(nil, errNotCarried)
		} else if relDone(then, nil) != nil {
			wr.unhold = func() {} // released
		}
	}
	return err
}

// errNotCarried stands for the answer of a command that carried nothing.
var errNotCarried = errors.New("not carried")

// insert writes slot s, the one the lease is for, and settles a duplicate
// or a lost reply: it returns s, a TakenOverError, or an
// UnknownOutcomeError.
func (wr *writer) insert(ctx context.Context, s *wal.Slot) (*wal.Slot, error) {
	return wr.inserted(ctx, s, wr.r.InsertSlot(ctx, s))
}

// inserted is insert once slot s's insert answered err.
func (wr *writer) inserted(ctx context.Context, s *wal.Slot, err error) (*wal.Slot, error) {
	if err == nil {
		return s, nil
	}
	if wal.IsDuplicate(err) {
		got, rerr := wr.r.ReadSlot(context.WithoutCancel(ctx), s.TL, s.N)
		if rerr != nil || got == nil {
			return wr.resolve(ctx, s, err)
		}
		if got.Token == wr.token {
			return s, nil // our own earlier attempt
		}
		return nil, &wal.TakenOverError{Branch: wr.w.Name, Void: got.Kind == wal.SlotVoid, Deleted: got.Closed}
	}
	return wr.resolve(ctx, s, err)
}

// resolve settles a commit whose reply was lost: read the slot back; if it
// is not there, fill it with a dirty void of our own, which fences out the
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
			err = wr.r.InsertSlot(tctx, wr.dirtyVoid(tctx, wr.token+"-void"))
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
			return nil, &wal.TakenOverError{Branch: wr.w.Name, Void: got.Kind == wal.SlotVoid, Deleted: got.Closed}
		}
		if time.Now().After(deadline) {
			return nil, &wal.UnknownOutcomeError{Branch: wr.w.Name, Err: cause}
		}
		_ = sleepJitter(base, &backoff)
		backoff = max(backoff, 200*time.Millisecond)
	}
}

// dirtyVoid is the void that ends this write without a commit while the
// database may hold its changes: it names the keys the write touched, or
// says they are unknown.
func (wr *writer) dirtyVoid(ctx context.Context, token string) *wal.Slot {
	v := &wal.Slot{TL: wr.w.TL, N: wr.lease.N, Kind: wal.SlotVoid, Base: wr.base.LSN, LSN: wr.base.LSN,
		Token: token, Time: wr.r.Now(), Dirty: true}
	switch t := wr.w.Touched(); {
	case wr.untracked:
	case len(t) <= intentKeys && keyBytes(t) <= intentBytes:
		v.KeysKnown, v.Keys = true, t
	default:
		// In key pages of its own _id, written before the void: one that
		// cannot be written leaves the keys unknown (a rebuild).
		if n, err := wr.writePages(ctx, t); err == nil {
			v.Pages = n
		}
	}
	return v
}

// finish records, after the slot is in, that the working database
// reflects it. A failure here loses nothing: the marker is only a hint.
func (wr *writer) finish(ctx context.Context, s *wal.Slot, sums workdb.Sums) {
	if err := wr.advance(context.WithoutCancel(ctx), s, sums); err == nil && wr.built && wr.w.Files != nil {
		// Built whole from the log under this lease, and now at slot s
		// (released as it was, or with this writer's commit): the next
		// status need not read it.
		_ = wr.w.Files.Built(wr.w.DB.Name())
	}
	// After the clean record: a write let through now is not in it.
	wr.unhold()
	wr.r.MaybeAdvanceHint(context.WithoutCancel(ctx), s.TL, s.N)
	if len(wr.lease.Keys) > wal.LeaseKeysKept || wr.lease.Pages > 0 {
		// The slot is filled and the database reflects it: the keys are
		// never read again (best effort: left, they only take space).
		wr.stopHB()
		_ = wr.r.ForgetKeys(context.WithoutCancel(ctx), wr.lease)
	}
}

// advance advances the working database's marker to s. The release of
// the hold of its writes rides on that update where it can
// (workdb.CarriedHolds), except after a build (Built asks for the write
// token while the database is still held).
func (wr *writer) advance(ctx context.Context, s *wal.Slot, sums workdb.Sums) error {
	if wr.advanced {
		return nil // on the commit's insert (insertCommit)
	}
	if ch, ok := wr.w.Files.(workdb.CarriedHolds); ok && !wr.built {
		if field, done, ok := ch.ReleaseOn(wr.w.DB.Name()); ok {
			ans, err := wr.w.AdvanceMarkerCarrying(ctx, wr.epoch, s, sums, field)
			if done(ans, err) != nil {
				wr.unhold = func() {} // released
			}
			return err
		}
	}
	return wr.w.AdvanceMarker(ctx, wr.epoch, s, sums)
}

// mutated reports whether this writer changed the working database.
func (wr *writer) mutated() bool { return wr.untracked || len(wr.w.Touched()) > 0 }

// release gives the lease back without a commit, by filling the slot with
// a clean void: the database reflects the base state. If someone else
// filled the slot (this process was judged gone), what it changed is
// repaired under a fresh lease and a TakenOverError is returned.
func (wr *writer) release(ctx context.Context) error {
	wr.stopHB()
	defer wr.unhold()
	ctx = context.WithoutCancel(ctx)
	void := &wal.Slot{TL: wr.w.TL, N: wr.lease.N, Kind: wal.SlotVoid, Base: wr.base.LSN, LSN: wr.base.LSN,
		Token: wr.token, Time: wr.r.Now()}
	if !wr.prepared {
		stillDirty(void, wr.base)
	}
	if err := wr.r.InsertSlot(ctx, void); err != nil {
		if !wal.IsDuplicate(err) {
			return err
		}
		got, rerr := wr.r.ReadSlot(ctx, void.TL, void.N)
		if rerr != nil {
			return rerr
		}
		if got == nil || got.Token != wr.token {
			wr.afterLoss(ctx)
			return &wal.TakenOverError{Branch: wr.w.Name, Void: true}
		}
	}
	wr.finish(ctx, void, wr.sums)
	return nil
}

// fail ends a write that did not commit. If it changed nothing, the lease
// is released. Otherwise the slot becomes a dirty void naming what the
// write touched — nothing is written back in place, since this process
// may no longer hold the branch — and, when settle is set, the branch is
// taken again at once to repair those keys from the log, so applications
// do not see the failed change.
func (wr *writer) fail(ctx context.Context, settle bool) {
	wr.stopHB()
	defer wr.unhold()
	ctx = context.WithoutCancel(ctx)
	// The database is recorded clean again only after a failure the
	// server answered: a write cut off by a cancelled context or a lost
	// connection may still be landing (FerretDB finishes a request whose
	// client left), after the repair (found by review).
	startedClean := wr.w.StartedClean() && answered(wr.cause)
	if wr.spill {
		defer func() {
			// Our own entries, under a slot that is now void or will be
			// voided by whoever takes over: they can never commit.
			_ = wr.r.DeleteOwnEntries(ctx, wr.w.TL, wr.token)
		}()
	}
	if !wr.mutated() {
		if wr.release(ctx) == nil && startedClean {
			wr.w.RepairedClean() // nothing to repair
		}
		return
	}
	void := wr.dirtyVoid(ctx, wr.token)
	if err := wr.r.InsertSlot(ctx, void); err != nil {
		got, rerr := wr.r.ReadSlot(ctx, void.TL, void.N)
		if rerr != nil || got == nil {
			return // the server is unreachable: the next holder fences
		}
		if got.Token != wr.token {
			wr.afterLoss(ctx)
			return
		}
	}
	if settle {
		// Let go of the writes first: the next writer, which may have
		// taken the branch already, waits for them, and this process
		// would wait for it.
		wr.unhold()
		if s, err := wr.p.acquire(ctx, wr.w, []wal.KeyRef{}); err == nil {
			if s.release(ctx) == nil && startedClean {
				// Every key this write touched is back as the log has
				// it, and it began on a database holding exactly the
				// committed state.
				wr.w.RepairedClean()
			}
		}
	}
}

// stillDirty makes void, given back over base by a writer that did not
// repair the working database (prepare), name what base names when base
// is a dirty void: the next holder walks the dirty voids down from its
// base and repairs every key they name, and a clean void on top would
// hide them for good (found by review).
func stillDirty(void, base *wal.Slot) {
	if base.Kind == wal.SlotVoid && base.Dirty {
		void.Dirty, void.KeysKnown, void.Keys = true, base.KeysKnown, base.Keys
		if base.Pages > 0 {
			void.Pages, void.PagesOf = base.Pages, base.PagesID()
		}
	}
}

// answered reports whether err (nil: none known) came with the server's
// answer to every request of the write: not a cancelled or expired
// context, not a network error or a timeout.
func answered(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		!mongo.IsNetworkError(err) && !mongo.IsTimeout(err)
}

// afterLoss repairs, under a fresh lease, what this writer changed in the
// working database: it was fenced out, and may have changed the database
// after the process that fenced it repaired it. The values come from the
// log at the new head, never from this writer's own base.
func (wr *writer) afterLoss(ctx context.Context) {
	// The writer that took over waits for this one's hold of the writes,
	// and this one is about to wait for it.
	wr.unhold()
	if !wr.mutated() {
		return
	}
	keys := append([]wal.KeyRef(nil), wr.w.Touched()...)
	unknown := wr.untracked
	paged := len(keys) > intentKeys || keyBytes(keys) > intentBytes
	w := wr.w
	// The repair's lease names the keys it repairs (none known: it
	// rebuilds), so that a repair killed half way is finished by the
	// next holder (found by review: it named none); past what a lease
	// holds, in key pages, announced before anything changes (found by
	// review: such a repair rebuilt).
	var intent []wal.KeyRef
	if !unknown {
		intent = keys
		if paged {
			intent = []wal.KeyRef{}
		}
	}
	nw, err := wr.p.acquire(ctx, w, intent)
	if err != nil {
		return
	}
	if !unknown && paged {
		if err := nw.announce(ctx, keys); err != nil {
			nw.fail(ctx, false)
			return
		}
	}
	if unknown {
		// Not rebuilt under a lease that names no keys: killed half way,
		// the rebuild would be adopted as an application's work
		// (review34).
		if err := nw.widen(ctx, false); err != nil {
			nw.fail(ctx, false)
			return
		}
		m, err := w.Rebuild(ctx, nw.base, "")
		if err != nil {
			nw.fail(ctx, false)
			return
		}
		nw.epoch, nw.sums = m.Epoch, m.Sums
	} else {
		for _, k := range keys {
			w.Touch(k)
		}
		if err := w.Repair(ctx, nw.base.LSN, keys); err != nil {
			nw.fail(ctx, false)
			return
		}
		nw.sums = nil
	}
	_ = nw.release(ctx)
}

// Write runs apply on the working database of w as one commit.
func (p *Protocol) Write(ctx context.Context, w *workdb.Branch, info *wal.CommitInfo, intent []wal.KeyRef, apply workdb.ApplyFunc) (*wal.Commit, int64, error) {
	w.TakeMarker() // this write moves the marker: a read after it reads it again
	wr, err := p.acquire(ctx, w, intent)
	if err != nil {
		return nil, 0, err
	}
	defer wr.unhold()
	w.SetBaseSums(wr.sums)
	err = apply(ctx, func(entries []wal.Entry) error { return wr.emit(ctx, entries) })
	hook("applied")
	if err != nil {
		wr.cause = err
		wr.fail(ctx, true)
		return nil, 0, err
	}
	if wr.next == wr.base.LSN+1 && info.MergeOf == "" {
		// Nothing changed: no commit. (A merge that changes nothing is
		// still committed, empty, so that the next merge starts from it.)
		if err := wr.release(ctx); err != nil {
			return nil, 0, err
		}
		return nil, wr.base.LSN, nil
	}
	if wr.spill && len(wr.buf) > 0 {
		n, err := wr.r.SpillEntries(ctx, wr.w.Project, wr.buf)
		if err != nil {
			wr.cause = err
			wr.fail(ctx, true)
			return nil, 0, err
		}
		wr.addKeyed(n)
	}
	wr.stopHB()
	sums := w.NextSums(wr.sums)
	s, err := wr.commit(ctx, info, sums)
	if err != nil {
		var to *wal.TakenOverError
		if errors.As(err, &to) {
			wr.afterLoss(ctx)
		}
		return nil, 0, err
	}
	hook("after-commit")
	wr.finish(ctx, s, sums)
	// What the write kept to repair a failure (the keys it touched, its
	// key pages) is not needed once it is committed: the image below,
	// which may fold the whole state, gets that memory.
	wr.buf, wr.paged = nil, nil
	w.EndWrite()
	// An image snapshot when the timeline has grown enough since the last
	// one. The commit is done, whatever happens here.
	if _, err := w.Repo.MaybeImage(ctx, w.Project, w.TL, s.Base, s.LSN); err != nil && w.Notice != nil && ctx.Err() == nil {
		w.Notice(fmt.Sprintf("committed; an image snapshot at LSN %d was not saved: %v", s.LSN, err))
	}
	return s.Commit(), s.LSN, nil
}

// Move fast-forwards branch w: it closes w's timeline and hands the
// branch to the timeline whose root slot is to (a fork of the state the
// branch moves to). It takes the branch like a writer and checks that the
// head is still at LSN base; apply brings the working database to to's
// state (its entries are not logged: to's history holds them). Then the
// marker names to, and the moved slot is inserted on the old timeline:
// that unique insert is the move. A writer that raced it finds the slot
// taken and follows it; the binding is repointed last, and whoever finds
// the moved slot first repoints it if this process stops before. The
// reflog records the move under action when the binding is repointed.
func (p *Protocol) Move(ctx context.Context, w *workdb.Branch, to *wal.Slot, base int64, action string, info *wal.CommitInfo, apply workdb.ApplyFunc) error {
	from := w.TL
	wr, err := p.acquire(ctx, w, nil)
	if err != nil {
		return err
	}
	defer wr.unhold()
	if w.TL != from || wr.base.LSN != base {
		if err := wr.release(ctx); err != nil {
			return err
		}
		return &wal.MovedOnError{Branch: w.Name}
	}
	if err := apply(ctx, func([]wal.Entry) error { return nil }); err != nil {
		wr.cause = err
		wr.fail(ctx, true)
		return err
	}
	hook("applied")
	if err := w.Retarget(ctx, to, w.NextSums(wr.sums)); err != nil {
		wr.cause = err
		wr.fail(ctx, true)
		return err
	}
	wr.stopHB()
	s := &wal.Slot{TL: from, N: wr.lease.N, Kind: wal.SlotMoved, Base: base, LSN: base, Token: wr.token,
		Time: wr.r.Now(), Message: info.Message, Author: info.Author, MergeOf: info.MergeOf, To: to.TL}
	if _, err := wr.insert(ctx, s); err != nil {
		var lost *wal.TakenOverError
		if errors.As(err, &lost) {
			wr.afterLoss(ctx)
		}
		return err
	}
	hook("after-commit")
	w.TL = to.TL
	if _, err := w.Repo.Repoint(context.WithoutCancel(ctx), w.Project, w.Name, from, to.TL, base, action); err != nil && w.Notice != nil {
		w.Notice(fmt.Sprintf("moved; branch %s still names timeline %s, which its next command repoints: %v", w.Name, from, err))
	}
	return nil
}

// Restore rebuilds the working database from the log at the head,
// discarding what applications changed in it.
func (p *Protocol) Restore(ctx context.Context, w *workdb.Branch) (int64, error) {
	wr, err := p.acquireFor(ctx, w, []wal.KeyRef{}, true)
	if err != nil {
		return 0, err
	}
	if err := wr.widen(ctx, false); err != nil {
		wr.fail(ctx, false)
		return 0, err
	}
	m, err := w.Rebuild(ctx, wr.base, "")
	if err != nil {
		wr.fail(ctx, false)
		return 0, err
	}
	wr.epoch, wr.sums, wr.built = m.Epoch, m.Sums, true
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
		m := w.TakeMarker()
		if m == nil {
			var err error
			if m, err = w.Marker(ctx); err != nil {
				return err
			}
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
		if h.Kind == wal.SlotVoid && h.Dirty || h.Kind == wal.SlotMoved {
			break // a repair is due, or the branch moved to another timeline
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
	wr, err := p.acquire(ctx, w, []wal.KeyRef{})
	if err != nil {
		return err
	}
	at := &workdb.Marker{Project: w.Project, Branch: w.Name, TL: w.TL, Slot: wr.base.N, LSN: wr.base.LSN,
		Token: wr.base.Token, Epoch: wr.epoch, Sums: wr.sums, Held: true}
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

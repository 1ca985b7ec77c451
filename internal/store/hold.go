package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A CLI write checks what it is about to change (each document must be
// committed: workdb.refuseUncommitted), changes it, and reads the result
// back as the entries it commits. An application writing to the same
// database through argon serve between the check and the read-back would
// have its uncommitted change taken into the CLI's commit. So a client of
// argon serve holds the working database's writes while it holds a branch
// (commit's writer): the guard passes on no other client's write to that
// database, and no write whose database it cannot tell, until the hold
// ends. Reads pass as always.
//
// The guard knows which connections belong to the holder by the name
// each connection's handshake gives: argon's client names itself
// holdAppPrefix followed by a random tag of its process, and the hold is
// the tag's, over all of that process's connections. A hold ends when the
// holder releases it, when the last connection of its tag closes (the
// process ended), or a time to live after it was last renewed (a process
// stopped but alive): the holder's lease TTL, so that the hold lapses
// with the lease; the holder renews it every third of that. An expired
// hold is the one case where an application's write can reach the
// database between the check and the read-back: the holder was stalled
// for longer than its lease TTL, so its lease can be taken over as well
// and its commit refused (see ARCHITECTURE, "fencing").

// holdCommand holds ({argonHoldWrites: 1, ttlMillis: N}), renews (renew:
// true) or releases ({argonHoldWrites: 1, release: true}) the writes of
// the database its $db names; the guard answers it itself.
const holdCommand = "argonHoldWrites"

// holdAppPrefix starts the application name of argon's own clients of
// argon serve (the driver's handshake carries it on every connection).
const holdAppPrefix = "argon/"

// holdTTL is how long a hold lasts without a renewal when the holder
// names no time (ttlMillis), or names one over 10 minutes.
const holdTTL = 30 * time.Second

// holdTTLOf is the time to live a hold request names, within bounds.
func holdTTLOf(ms int64) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 {
		return holdTTL
	}
	return min(max(d, 100*time.Millisecond), 10*time.Minute)
}

type writeHolds struct {
	// writes is the guard's count of writes passed on (nil in tests of
	// holds alone): a hold is in place once the writes to its database
	// that were passed on before it have been answered.
	writes *writeLog
	mu     sync.Mutex
	// held is each held database's holder (by lower-case name, as the
	// guard counts writes).
	held map[string]*writeHold
	// conns counts the open connections of each tag.
	conns map[string]int
	// changed is closed, and replaced, whenever a hold ends.
	changed chan struct{}
}

type writeHold struct {
	tag   string
	until time.Time
	// depth counts the holder's hold requests not yet released: a
	// process may take the same database again while holding it.
	depth int
}

func newWriteHolds(writes *writeLog) *writeHolds {
	return &writeHolds{writes: writes, held: map[string]*writeHold{}, conns: map[string]int{}, changed: make(chan struct{})}
}

// ended wakes every waiter; h.mu is held.
func (h *writeHolds) ended() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *writeHolds) connected(tag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[tag]++
}

// disconnected ends the tag's holds with its last connection.
func (h *writeHolds) disconnected(tag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[tag]--
	if h.conns[tag] > 0 {
		return
	}
	delete(h.conns, tag)
	for db, hd := range h.held {
		if hd.tag == tag {
			delete(h.held, db)
		}
	}
	h.ended()
}

// blocker is the live hold of another tag that a write of tag to db ("":
// every database) must wait for, or nil; h.mu is held.
func (h *writeHolds) blocker(db, tag string) *writeHold {
	now := time.Now()
	for d, hd := range h.held {
		if hd.tag != tag && now.Before(hd.until) && (db == "" || d == db) {
			return hd
		}
	}
	return nil
}

// wait returns once a write of tag to db may pass.
func (h *writeHolds) wait(db, tag string) { h.pass(db, tag, func() {}) }

// pass waits until a write of tag to db may pass, and then runs sent (the
// guard counting the write as passed on) before any hold can be granted:
// a hold granted after it waits for the write's answer.
func (h *writeHolds) pass(db, tag string, sent func()) {
	for {
		h.mu.Lock()
		hd := h.blocker(db, tag)
		if hd == nil {
			sent()
			h.mu.Unlock()
			return
		}
		ch, left := h.changed, time.Until(hd.until)
		h.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// hold gives tag the writes of db for ttl, once no other tag holds them
// and every write to db passed on before has been answered (waiting at
// most ttl, and not for writes whose client left: writeLog.settle). A renewal (renew) only extends a hold tag still has: one
// that arrives after its release, on another connection, holds nothing.
func (h *writeHolds) hold(db, tag string, renew bool, ttl time.Duration) {
	if renew {
		h.mu.Lock()
		if hd := h.held[db]; hd != nil && hd.tag == tag {
			hd.until = time.Now().Add(ttl)
		}
		h.mu.Unlock()
		return
	}
	for {
		h.wait(db, tag)
		h.mu.Lock()
		hd := h.held[db]
		if hd != nil && hd.tag != tag && time.Now().Before(hd.until) {
			h.mu.Unlock() // taken meanwhile
			continue
		}
		if hd == nil || hd.tag != tag {
			hd = &writeHold{tag: tag}
			h.held[db] = hd
		}
		hd.depth++
		hd.until = time.Now().Add(ttl)
		h.mu.Unlock()
		break
	}
	if h.writes != nil {
		h.writes.settle(db, ttl)
	}
}

// tryHold is hold for a hold carried by another command (see Carrier): it
// gives tag the writes of db only when no other tag holds them, and never
// waits for one; it reports whether it did.
func (h *writeHolds) tryHold(db, tag string, ttl time.Duration) bool {
	h.mu.Lock()
	if hd := h.held[db]; hd != nil && (hd.tag != tag || hd.depth > 0) && time.Now().Before(hd.until) {
		h.mu.Unlock()
		return false
	}
	h.held[db] = &writeHold{tag: tag, depth: 1, until: time.Now().Add(ttl)}
	h.mu.Unlock()
	if h.writes != nil {
		h.writes.settle(db, ttl)
	}
	return true
}

// release ends one hold of db by tag.
func (h *writeHolds) release(db, tag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hd := h.held[db]
	if hd == nil || hd.tag != tag {
		return
	}
	if hd.depth--; hd.depth > 0 {
		return
	}
	delete(h.held, db)
	h.ended()
}

// holdTag is the tag of a connection whose handshake body names argon's
// client, or "".
func holdTag(body bson.Raw) string {
	v, err := body.LookupErr("client", "application", "name")
	if err != nil {
		return ""
	}
	name, _ := v.StringValueOK()
	if !strings.HasPrefix(name, holdAppPrefix) {
		return ""
	}
	return strings.TrimPrefix(name, holdAppPrefix)
}

// isArgonClient reports whether a handshake comes from argon's own client:
// a client of argon serve (holdAppPrefix) or one given the serve's address
// as its server (--uri), both named by argon (see openURI).
func isArgonClient(body bson.Raw) bool {
	name, _ := body.Lookup("client", "application", "name").StringValueOK()
	return name == "argon" || strings.HasPrefix(name, holdAppPrefix)
}

// newHoldTag is a random tag for this process's client.
func newHoldTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveHolds is a client's side of holds: it holds a database at most
// once at a time per process, counting nested holds, and renews every
// hold it has until released.
//
// The serve answers a hold and a release with the database's write token
// at that moment, kept here with this process's own write counts then
// (see ownWrites): while the hold lasts and this process has not written,
// the token at the hold is the token now, which saves the clean record's
// token request at the start of a write; the token at the release stands
// for the one the clean record asks for after the write (an older token
// is always safe to record clean: see DBFiles.recordToken).
type serveHolds struct {
	client *mongo.Client
	own    *ownWrites
	mu     sync.Mutex
	depth  map[string]int
	stop   map[string]chan struct{}
	ttl    map[string]time.Duration
	// granted and released hold the tokens of the last hold and release
	// of each database.
	granted, released map[string]tokenCounts
	// carried: the serve takes holds and releases carried by other
	// commands (see Carrier); followUps: follow-up commands too.
	carried, followUps bool
}

func newServeHolds(client *mongo.Client, own *ownWrites, carried bool) *serveHolds {
	return &serveHolds{client: client, own: own, depth: map[string]int{}, stop: map[string]chan struct{}{},
		ttl: map[string]time.Duration{}, granted: map[string]tokenCounts{}, released: map[string]tokenCounts{}, carried: carried}
}

// heldToken returns db's write token when this process holds db and has
// not written since the hold began.
func (s *serveHolds) heldToken(db string) (tokenCounts, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tc, ok := s.granted[db]
	return tc, ok && s.depth[db] > 0 && s.unmoved(db, tc)
}

// releasedToken returns, once, db's write token at this process's last
// release of it, when this process has not written since.
func (s *serveHolds) releasedToken(db string) (tokenCounts, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tc, ok := s.released[db]
	delete(s.released, db)
	return tc, ok && s.unmoved(db, tc)
}

// unmoved reports whether this process's write counts are those of tc.
func (s *serveHolds) unmoved(db string, tc tokenCounts) bool {
	if s.own == nil || tc.token == "" {
		return false
	}
	n, all, ok := s.own.counts(db)
	return ok && n == tc.n && all == tc.all
}

// sendCounted sends a hold or release and returns the token its answer
// gave, with this process's own counts when they did not move while it
// was asked ("" otherwise).
func (s *serveHolds) sendCounted(ctx context.Context, db string, release bool, ttl time.Duration) (tokenCounts, error) {
	var n0, all0 int64
	if s.own != nil {
		n0, all0, _ = s.own.counts(db)
	}
	token, err := s.sendToken(ctx, db, release, false, ttl)
	if err != nil || s.own == nil {
		return tokenCounts{}, err
	}
	n1, all1, ok := s.own.counts(db)
	if !ok || n0 != n1 || all0 != all1 {
		return tokenCounts{}, nil
	}
	return tokenCounts{token: token, n: n1, all: all1}, nil
}

// Hold holds db's writes at the serve for ttl past each renewal (see
// writeHolds) and returns the function that releases them. It fails when
// the serve does not answer.
func (s *serveHolds) Hold(ctx context.Context, db string, ttl time.Duration) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.depth[db] > 0 {
		s.depth[db]++
		return s.releaser(db), nil
	}
	tc, err := s.sendCounted(ctx, db, false, ttl)
	if err != nil {
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == 59 {
			// An argon serve from before holds (CommandNotFound):
			// writes go on as they did with it.
			return func() {}, nil
		}
		// Granted with its answer lost, perhaps: let it go.
		_ = s.send(context.Background(), db, true, false, ttl)
		return nil, err
	}
	return s.adopt(db, ttl, tc), nil
}

// adopt records a hold of db the serve granted with token tc, while this
// process held none, and returns the function that releases it; s.mu is
// held.
func (s *serveHolds) adopt(db string, ttl time.Duration, tc tokenCounts) func() {
	stop := make(chan struct{})
	s.stop[db], s.ttl[db] = stop, ttl
	s.granted[db] = tc
	delete(s.released, db)
	go s.renew(db, stop, ttl)
	s.depth[db] = 1
	return s.releaser(db)
}

// releaser is the function that ends one hold of db, once.
func (s *serveHolds) releaser(db string) func() {
	var once sync.Once
	return func() { once.Do(func() { s.release(db) }) }
}

func (s *serveHolds) release(db string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.depth[db] == 0 {
		return // released by a carrying command (Carrier)
	}
	if s.depth[db]--; s.depth[db] > 0 {
		return
	}
	ttl := s.ttl[db]
	s.drop(db)
	// Best effort: a release that does not arrive ends with the
	// process's connections, or at the hold's expiry.
	if tc, err := s.sendCounted(context.Background(), db, true, ttl); err == nil {
		s.released[db] = tc
	}
}

// drop forgets this process's last hold of db, which ends; s.mu is held.
func (s *serveHolds) drop(db string) {
	delete(s.depth, db)
	if stop := s.stop[db]; stop != nil {
		close(stop)
	}
	delete(s.stop, db)
	delete(s.ttl, db)
	delete(s.granted, db)
}

func (s *serveHolds) renew(db string, stop chan struct{}, ttl time.Duration) {
	t := time.NewTicker(holdTTLOf(ttl.Milliseconds()) / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			select {
			case <-stop: // released meanwhile: nothing to renew
				return
			default:
			}
			_ = s.send(context.Background(), db, false, true, ttl)
		}
	}
}

func (s *serveHolds) send(ctx context.Context, db string, release, renew bool, ttl time.Duration) error {
	_, err := s.sendToken(ctx, db, release, renew, ttl)
	return err
}

// sendToken is send, returning the token the answer gives ("" from a
// renewal, or from an argon serve that gives none).
func (s *serveHolds) sendToken(ctx context.Context, db string, release, renew bool, ttl time.Duration) (string, error) {
	// A hold waits for another process's, which lapses within its TTL
	// (at most 10 minutes) when that process stops renewing it.
	ctx, cancel := context.WithTimeout(ctx, 11*time.Minute)
	defer cancel()
	cmd := bson.D{{Key: holdCommand, Value: 1}, {Key: "ttlMillis", Value: ttl.Milliseconds()}}
	if release {
		cmd = append(cmd, bson.E{Key: "release", Value: true})
	}
	if renew {
		cmd = append(cmd, bson.E{Key: "renew", Value: true})
	}
	var res struct {
		Token string `bson:"token"`
	}
	err := s.client.Database(db).RunCommand(ctx, cmd).Decode(&res)
	return res.Token, err
}

package store

import (
	"testing"
	"time"
)

// passes reports whether a write of tag to db passes within d.
func passes(h *writeHolds, db, tag string, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		h.wait(db, tag)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func TestWriteHolds(t *testing.T) {
	t.Parallel()
	const quick = 200 * time.Millisecond
	h := newWriteHolds(nil)
	h.connected("cli")
	h.hold("ar_p__main", "cli", false, time.Minute)

	if !passes(h, "ar_p__main", "cli", time.Minute) {
		t.Fatal("the holder's own write waited")
	}
	if !passes(h, "ar_p__other", "", time.Minute) {
		t.Fatal("a write to another database waited")
	}
	if passes(h, "ar_p__main", "", quick) {
		t.Fatal("an application's write to the held database passed")
	}
	if passes(h, "", "", quick) {
		t.Fatal("a write whose database the guard cannot tell passed")
	}

	// Nested: two holds need two releases.
	h.hold("ar_p__main", "cli", false, time.Minute)
	h.hold("ar_p__main", "cli", true, time.Minute) // a renewal adds no depth
	h.release("ar_p__main", "cli")
	if passes(h, "ar_p__main", "", quick) {
		t.Fatal("a write passed while one of two holds remained")
	}
	waiting := make(chan struct{})
	go func() {
		h.wait("ar_p__main", "app")
		close(waiting)
	}()
	h.release("ar_p__main", "cli")
	select {
	case <-waiting:
	case <-time.After(time.Minute):
		t.Fatal("a waiting write stayed waiting after the release")
	}

	// Another client's hold waits for the first.
	h.hold("ar_p__main", "cli", false, time.Minute)
	got := make(chan struct{})
	go func() {
		h.hold("ar_p__main", "cli2", false, time.Minute)
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second client got a held database")
	case <-time.After(quick):
	}
	// The holder's last connection ends: its holds end with it.
	h.disconnected("cli")
	select {
	case <-got:
	case <-time.After(time.Minute):
		t.Fatal("a hold outlived its holder's connections")
	}
	h.release("ar_p__main", "cli2")
	if !passes(h, "ar_p__main", "", time.Minute) {
		t.Fatal("a write waited after every hold ended")
	}
}

// A holder that stops renewing (a process stopped but alive) holds no
// longer than the time to live.
func TestWriteHoldsExpire(t *testing.T) {
	h := newWriteHolds(nil)
	h.connected("cli")
	h.hold("ar_p__main", "cli", false, 300*time.Millisecond)
	start := time.Now()
	if !passes(h, "ar_p__main", "", time.Minute) {
		t.Fatal("an expired hold still held")
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Fatal("a write passed before the hold expired")
	}
}

// A hold waits for the answers of writes passed on before it, but not for
// a write whose client left before its answer: the engine may never
// answer it, and the database has no write token for good instead.
func TestSettleSkipsWritesWhoseClientLeft(t *testing.T) {
	l := newWriteLog()
	l.sent("ar_p__main")
	start := time.Now()
	l.settle("ar_p__main", 200*time.Millisecond)
	if time.Since(start) < 150*time.Millisecond {
		t.Fatal("settle did not wait for a write passed on and not answered")
	}
	l.abandoned("ar_p__main")
	done := make(chan struct{})
	go func() {
		l.settle("ar_p__main", time.Hour)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("settle waited for a write whose client left")
	}
	if tok := l.token("ar_p__main"); tok != "" {
		t.Fatalf("token %q after a write whose client left, want none", tok)
	}
	if tok := l.token("ar_p__other"); tok == "" {
		t.Fatal("another database lost its token")
	}
}

package store

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/event"
)

// A client of argon serve keeps a working database's clean record across
// its own writes the way a process that runs the engine itself does (see
// DBFiles.KeepClean): it counts the writes it sends, per database, exactly
// as the serve's guard counts them (classifyBody), and after its write it
// records the serve's new token as clean only when the token moved by its
// own writes and nothing else. Without it every CLI write through a serve
// dropped the record, and the next status or write read and folded the
// whole branch (0.8 s on 20,000 documents).
//
// Why that is safe: a token is given only while no write to the database
// is waiting for its answer, and its counts name every write the guard
// passed on (writeLog). When the database's count grew by exactly the
// number of writes this process sent to it between the two tokens, and
// the count of writes the guard could not place did not grow beyond this
// process's, no other client's write reached the database in between. A
// write this process counted that never reached the guard (a connection
// lost before it was sent) makes the counts differ: nothing is recorded,
// the next command checks as before.

// ownWrites counts the writes this process sent, by database as the guard
// classifies them ("" for the writes it counts against every database).
//
// A write that fails may not have reached the engine (the guard refused
// it and answered itself, or the connection failed before it was sent):
// counted here and not by the guard, it would leave this process one
// ahead, and a single write of someone else's between two tokens would
// even the counts (found by an adversarial review). Any failed write
// therefore makes the counts untrusted for the rest of the process:
// nothing more is recorded clean by them.
type ownWrites struct {
	mu        sync.Mutex
	gen       map[string]int64
	writes    map[int64]bool // requests started and not ended that are writes
	untrusted bool
}

func newOwnWrites() *ownWrites {
	return &ownWrites{gen: map[string]int64{}, writes: map[int64]bool{}}
}

// monitor returns a command monitor that counts into o and passes every
// event on to next (nil: none).
func (o *ownWrites) monitor(next *event.CommandMonitor) *event.CommandMonitor {
	if next == nil {
		next = &event.CommandMonitor{}
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if _, db, write := classifyBody(e.Command); write {
				o.mu.Lock()
				o.gen[db]++
				o.writes[e.RequestID] = true
				o.mu.Unlock()
			}
			if next.Started != nil {
				next.Started(ctx, e)
			}
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			o.mu.Lock()
			delete(o.writes, e.RequestID)
			o.mu.Unlock()
			if next.Succeeded != nil {
				next.Succeeded(ctx, e)
			}
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			o.mu.Lock()
			if o.writes[e.RequestID] {
				o.untrusted = true
				delete(o.writes, e.RequestID)
			}
			o.mu.Unlock()
			if next.Failed != nil {
				next.Failed(ctx, e)
			}
		},
	}
}

// followed counts a write to db that argon serve passed on for this
// process without this process sending it (a follow-up a command carried:
// Carrier): the guard counts it against the database as this process's.
func (o *ownWrites) followed(db string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gen[strings.ToLower(db)]++
}

// counts returns the writes sent so far to db and to every database; ok
// is false once a write failed (see ownWrites).
func (o *ownWrites) counts(db string) (n, all int64, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gen[strings.ToLower(db)], o.gen[""], !o.untrusted
}

// tokenCounts is a write token and this process's own write counts when
// it was given.
type tokenCounts struct {
	token  string
	n, all int64
}

// tokenAt asks for db's token and returns it with the own counts, or ""
// when this process wrote while it asked (nothing to chain from).
func (f *DBFiles) tokenAt(db string) (tokenCounts, error) {
	if f.holds != nil {
		if tc, ok := f.holds.heldToken(db); ok {
			return tc, nil
		}
	}
	n0, all0, _ := f.own.counts(db)
	t, err := f.token(db)
	if err != nil {
		return tokenCounts{}, err
	}
	n1, all1, ok := f.own.counts(db)
	if n0 != n1 || all0 != all1 || !ok {
		return tokenCounts{}, nil
	}
	return tokenCounts{token: t, n: n1, all: all1}, nil
}

// onlyOwnWrites reports whether token b followed token a by exactly this
// process's writes between them (see above).
func onlyOwnWrites(a, b tokenCounts) bool {
	ea, alla, na, ok1 := parseToken(a.token)
	eb, allb, nb, ok2 := parseToken(b.token)
	return ok1 && ok2 && ea == eb && allb-alla == b.all-a.all && nb-na == b.n-a.n
}

// parseToken splits a write token "serve:epoch:all:db" (writeLog.token).
func parseToken(t string) (epoch string, all, n int64, ok bool) {
	parts := strings.Split(t, ":")
	if len(parts) != 4 || parts[0] != "serve" {
		return "", 0, 0, false
	}
	all, err1 := strconv.ParseInt(parts[2], 10, 64)
	n, err2 := strconv.ParseInt(parts[3], 10, 64)
	return parts[1], all, n, err1 == nil && err2 == nil
}

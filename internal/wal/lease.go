package wal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Lease is a writer's announcement that it is working towards slot N of
// timeline TL. It is advisory: it tells other writers to wait instead of
// wasting work, and tells readers that the working database may be
// changing. It never decides whether a write counts; the unique insert of
// slot N does.
//
// A lease carries no expiry time: clocks of different machines disagree.
// The holder increments Beat while it works, and another process judges the
// holder gone only after watching Beat stay unchanged for TTL on its own
// clock. Judging wrongly costs the holder its write (the taker voids slot
// N first, so the holder's commit is refused), never the log.
type Lease struct {
	ID    string `bson:"_id"`
	TL    string `bson:"tl"`
	N     int64  `bson:"n"`
	Token string `bson:"token"`
	Beat  int64  `bson:"beat"`
	// TTLMillis is how long the holder may go without a beat.
	TTLMillis int64 `bson:"ttl_ms"`
	// KeysKnown says that Keys names every document (or index) the
	// holder may change, so that a taker can repair exactly those; when
	// not, a taker rebuilds the working database. A holder that goes
	// beyond what it announced clears it first (Widen).
	KeysKnown bool    `bson:"known"`
	Keys      KeyList `bson:"keys,omitempty"`
	// Pages, when not 0, is how many key pages name those keys instead
	// (see collKeyPages); KeysKnown is then false.
	Pages int `bson:"pages,omitempty"`
	// Host is for people reading the record; nothing decides on it.
	Host string `bson:"host,omitempty"`

	// widened is the page count Widen took off the record, which Narrow
	// puts back.
	widened int

	// mu keeps the holder's updates of the record one at a time: on
	// FerretDB an update rewrites the whole document from what it read,
	// so a heartbeat running beside an announcement of keys could write
	// the old keys back (seen under load: a killed import was repaired
	// at its first batches' keys only).
	mu sync.Mutex
}

func leaseID(tl string, n int64) string { return slotID(tl, n) }

// filter names the holder's own record by _id alone. Its _id is unique
// and only its holder inserts it; no record is ever replaced or deleted,
// so the _id names the holder's record and nobody else's. A filter with a
// second field (the token, as here before) is not an indexed lookup on
// FerretDB, which uses its _id index only for a filter of _id alone: each
// update read every lease record of the project, and every write leaves
// one, with up to 1 MiB of keys. Measured: the lease updates of a
// 5,000-document insert went from 0.06 s to 0.6 s over 8 such inserts
// (BENCHMARKS, eleventh session).
func (l *Lease) filter() bson.D { return bson.D{{Key: "_id", Value: l.ID}} }

// InsertLease takes slot n of tl for writing. A duplicate-key error means
// someone else did first.
func (r *Repo) InsertLease(ctx context.Context, l *Lease) error {
	l.ID = leaseID(l.TL, l.N)
	_, err := r.DB.Collection(collLeases).InsertOne(ctx, l)
	return err
}

// InsertLeaseCarrying is InsertLease with field added to its insert
// command, for a request riding on it (a hold of the working database's
// writes at argon serve: workdb.CarriedHolds); it returns the command's
// answer. Only for argon serve: the command carries no write concern,
// and the embedded engine, one node, has none to apply.
func (r *Repo) InsertLeaseCarrying(ctx context.Context, l *Lease, field bson.E) (bson.Raw, error) {
	l.ID = leaseID(l.TL, l.N)
	return r.insertCarrying(ctx, collLeases, l, field)
}

// InsertSlotCarrying is InsertSlot with field added to its insert command
// (the working database's marker update, riding on it as a follow-up:
// workdb.CarriedHolds), as InsertLeaseCarrying.
func (r *Repo) InsertSlotCarrying(ctx context.Context, s *Slot, field bson.E) (bson.Raw, error) {
	s.ID = slotID(s.TL, s.N)
	return r.insertCarrying(ctx, collSlots, s, field)
}

// insertCarrying inserts doc into coll with one insert command that has
// field added, and returns its answer; a write error is returned as the
// driver's InsertOne returns it (mongo.IsDuplicateKeyError holds).
func (r *Repo) insertCarrying(ctx context.Context, coll string, doc any, field bson.E) (bson.Raw, error) {
	cmd := bson.D{{Key: "insert", Value: coll}, {Key: "documents", Value: bson.A{doc}}, {Key: "ordered", Value: true}, field}
	return r.DB.RunCommand(ctx, cmd, options.RunCmd().SetReadPreference(readpref.Primary())).Raw()
}

// ReadLease returns the lease on slot n of tl, or nil.
func (r *Repo) ReadLease(ctx context.Context, tl string, n int64) (*Lease, error) {
	var l Lease
	err := r.DB.Collection(collLeases).FindOne(ctx, bson.D{{Key: "_id", Value: leaseID(tl, n)}}).Decode(&l)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// LeaseExists reports whether anyone ever took slot n of tl: one point
// read, without decoding.
func (r *Repo) LeaseExists(ctx context.Context, tl string, n int64) (bool, error) {
	err := r.DB.Collection(collLeases).FindOne(ctx, bson.D{{Key: "_id", Value: leaseID(tl, n)}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// Widen records, before the holder of l changes keys it did not announce,
// that its changes are no longer known.
func (r *Repo) Widen(ctx context.Context, l *Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Pages > 0 {
		l.widened = l.Pages
	}
	l.KeysKnown, l.Pages = false, 0
	_, err := r.DB.Collection(collLeases).UpdateOne(ctx,
		l.filter(),
		bson.D{{Key: "$set", Value: bson.D{{Key: "known", Value: false}}}, {Key: "$unset", Value: bson.D{{Key: "pages", Value: ""}}}})
	return err
}

// Narrow records that the holder of l is back to changing only the keys it
// announced (after a rebuild it finished).
func (r *Repo) Narrow(ctx context.Context, l *Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.widened > 0 {
		// What it announced is in key pages: the record names them again
		// (known true there would name no key at all; found by review).
		_, err := r.DB.Collection(collLeases).UpdateOne(ctx, l.filter(),
			bson.D{{Key: "$set", Value: bson.D{{Key: "pages", Value: l.widened}}}})
		if err == nil {
			l.Pages, l.widened = l.widened, 0
		}
		return err
	}
	l.KeysKnown = true
	_, err := r.DB.Collection(collLeases).UpdateOne(ctx,
		l.filter(),
		bson.D{{Key: "$set", Value: bson.D{{Key: "known", Value: true}}}})
	return err
}

// Announce records that the holder of l changes only keys from here on
// (among them every key it changed so far).
func (r *Repo) Announce(ctx context.Context, l *Lease, keys []KeyRef) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys = append([]KeyRef(nil), keys...)
	_, err := r.DB.Collection(collLeases).UpdateOne(ctx,
		l.filter(),
		bson.D{{Key: "$set", Value: bson.D{{Key: "known", Value: true}, {Key: "keys", Value: KeyList(keys)}}}, {Key: "$unset", Value: bson.D{{Key: "pages", Value: ""}}}})
	if err == nil {
		l.KeysKnown, l.Keys, l.Pages, l.widened = true, keys, 0, 0
	}
	return err
}

// LeaseKeysKept is the most announced keys a lease record keeps once its
// slot is filled (ForgetKeys): past it, the holder removes them.
const LeaseKeysKept = 16

// ForgetKeys removes the announced keys from the record of lease l, whose
// slot its holder filled (a commit or a void) and whose working database
// reflects it: nothing reads a lease's keys once its slot is filled (a
// taker reads the lease of an unfilled slot, and copies its keys into the
// void it inserts), and the record stays, so that no writer can take the
// slot again. A large write announced up to 1 MiB of keys there.
func (r *Repo) ForgetKeys(ctx context.Context, l *Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := r.DB.Collection(collLeases).UpdateOne(ctx, l.filter(),
		bson.D{{Key: "$unset", Value: bson.D{{Key: "keys", Value: ""}}}})
	if l.Pages > 0 {
		r.DeleteKeyPages(ctx, l.ID, l.Pages)
	}
	return err
}

// Heartbeat records that the holder of lease l is still working.
func (r *Repo) Heartbeat(ctx context.Context, l *Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Beat++
	_, err := r.DB.Collection(collLeases).UpdateOne(ctx,
		l.filter(),
		bson.D{{Key: "$set", Value: bson.D{{Key: "beat", Value: l.Beat}}}})
	return err
}

// TakenOverError reports a write whose slot was filled by someone else
// before it could commit: the write did not happen.
type TakenOverError struct {
	Branch string
	// Void is set when another process judged this writer gone and voided
	// its slot; otherwise another writer committed there.
	Void bool
	// Deleted is set when the branch was deleted meanwhile: its delete
	// closed the timeline with that void.
	Deleted bool
}

func (e *TakenOverError) Error() string {
	if e.Deleted {
		return fmt.Sprintf("the write to branch %q was not committed: the branch was deleted meanwhile", e.Branch)
	}
	if e.Void {
		return fmt.Sprintf("the write to branch %q was not committed: another process judged this one stalled and took the branch over", e.Branch)
	}
	return fmt.Sprintf("the write to branch %q was not committed: another writer committed first", e.Branch)
}

// UnknownOutcomeError reports a commit whose reply was lost and whose
// result could not be read back in time: it may or may not have happened.
// The next command on the branch settles it.
type UnknownOutcomeError struct {
	Branch string
	Err    error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("the commit to branch %q may have been applied: its reply was lost (%v); run `argon log` or `argon fsck` to see", e.Branch, e.Err)
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// DefaultLeaseTTL is how long a holder may go without a heartbeat before
// others may take its slot over.
const DefaultLeaseTTL = 30 * time.Second

// MovedOnError reports a branch whose head moved between the planning of
// a fast-forward and its start: nothing was written; merge again.
type MovedOnError struct {
	Branch string
	// Op is the command that planned the write ("merge" when empty).
	Op string
}

func (e *MovedOnError) Error() string {
	op := e.Op
	if op == "" {
		op = "merge"
	}
	return fmt.Sprintf("branch %q moved while the %s was being prepared; nothing was written, %s again", e.Branch, op, op)
}

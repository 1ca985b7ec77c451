package wal

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const (
	stateClaim  = "claim"
	stateCommit = "commit"
)

// headRecord is one record of a timeline's head history. The record with
// the highest N is current: a commit (the head is LSN) or a claim (a writer
// holds the timeline; the committed head is LSN).
type headRecord struct {
	ID      string    `bson:"_id"`
	TL      string    `bson:"tl"`
	N       int64     `bson:"n"`
	State   string    `bson:"state"`
	LSN     int64     `bson:"lsn"`
	Token   string    `bson:"token,omitempty"`
	Expires time.Time `bson:"expires,omitempty"`
	Host    string    `bson:"host,omitempty"`
	PID     int       `bson:"pid,omitempty"`
	// Dirty marks a release that may have left entries above its LSN.
	Dirty bool `bson:"dirty,omitempty"`
}

func headID(tl string, n int64) string { return fmt.Sprintf("%s:%012d", tl, n) }

// Head is the committed state of a timeline.
type Head struct {
	// LSN is the committed head: entries above it are invisible.
	LSN int64
	// Claimed reports that a live writer holds the timeline.
	Claimed bool
	// PID of the writer holding the timeline, when Claimed.
	PID int

	n int64
}

func (r *Repo) latestHead(ctx context.Context, tl string) (*headRecord, error) {
	var h headRecord
	err := r.DB.Collection(collHeads).FindOne(ctx, bson.D{{Key: "tl", Value: tl}},
		options.FindOne().SetSort(bson.D{{Key: "n", Value: -1}})).Decode(&h)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, &NotFoundError{Kind: "timeline", Name: tl}
	}
	return &h, err
}

// Head returns the committed head of timeline tl.
func (r *Repo) Head(ctx context.Context, tl string) (Head, error) {
	h, err := r.latestHead(ctx, tl)
	if err != nil {
		return Head{}, err
	}
	return Head{LSN: h.LSN, Claimed: h.State == stateClaim && r.live(h), PID: h.PID, n: h.N}, nil
}

// live reports whether a claim still holds its timeline: it has not
// expired, and, when its writer ran on this host, that process still exists.
func (r *Repo) live(h *headRecord) bool {
	if time.Now().After(h.Expires) {
		return false
	}
	if h.Host == hostname() && h.PID > 0 && h.PID != os.Getpid() {
		err := syscall.Kill(h.PID, 0)
		if err != nil && !errors.Is(err, syscall.EPERM) {
			return false
		}
	}
	return true
}

// Claim is a writer's hold on a timeline: a lease. Entries appended under
// it become visible only when Commit succeeds.
//
// The lease is what makes the protocol safe without transactions: a writer
// acts (sweeps, appends, commits) only while its claim has at least a third
// of its time to live left, and only with a context that ends there; other
// writers take a claim over only once it has expired. So a writer that
// stalled (a GC pause, a slow network) finds its lease gone and stops,
// instead of deleting or writing over a newer writer's work.
type Claim struct {
	r      *Repo
	TL     string
	Branch string
	// Base is the committed head when the claim was taken.
	Base  int64
	token string
	next  int64
	stats map[string]*CollStats

	// mu guards the lease (n, expires), which a Hold renews in the
	// background while a long operation runs.
	mu      sync.Mutex
	n       int64
	expires time.Time
}

// Claim takes timeline tl for writing, waiting (bounded by BusyTimeout)
// while another live writer holds it. A claim left by a writer that died or
// expired is taken over, and its uncommitted entries are deleted.
func (r *Repo) Claim(ctx context.Context, tl, branch string) (*Claim, error) {
	deadline := time.Now().Add(r.BusyTimeout)
	backoff := 2 * time.Millisecond
	wait := func(pid int) error {
		if time.Now().After(deadline) {
			return &BusyError{Branch: branch, PID: pid}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(backoff*2, 100*time.Millisecond)
		return nil
	}
	for {
		h, err := r.latestHead(ctx, tl)
		if err != nil {
			return nil, err
		}
		if h.State == stateClaim && r.live(h) {
			if err := wait(h.PID); err != nil {
				return nil, err
			}
			continue
		}
		c := &Claim{r: r, TL: tl, Branch: branch, Base: h.LSN, n: h.N + 1,
			token: bson.NewObjectID().Hex(), next: h.LSN + 1, expires: time.Now().Add(r.ClaimTTL)}
		rec := headRecord{ID: headID(tl, c.n), TL: tl, N: c.n, State: stateClaim, LSN: h.LSN,
			Token: c.token, Expires: c.expires, Host: hostname(), PID: os.Getpid()}
		if _, err := r.DB.Collection(collHeads).InsertOne(ctx, rec); err != nil {
			if isDup(err) {
				continue // another writer got there first
			}
			return nil, err
		}
		// Old head records are trimmed, so a writer that read a record long
		// ago can insert a number that was used and trimmed since. Its claim
		// is valid only if it is now the newest record.
		latest, err := r.latestHead(ctx, tl)
		if err != nil {
			return nil, err
		}
		if latest.N != c.n || latest.Token != c.token {
			_, _ = r.DB.Collection(collHeads).DeleteOne(ctx, bson.D{{Key: "_id", Value: rec.ID}, {Key: "token", Value: c.token}})
			continue
		}
		// Entries above the head exist only if the previous holder did not
		// finish: it died or lost its claim (R is a claim), or it aborted
		// without clearing up (R is dirty). Only then is the log swept; a
		// sweep scans the timeline's entries on engines without range
		// indexes, and most writes follow a clean commit.
		if h.State == stateClaim || h.Dirty {
			if err := c.sweep(ctx); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
}

// Hold returns a context for work under the claim that may take longer
// than one lease: the claim is renewed in the background, and the context
// is cancelled (with cause ErrClaimLost) if a renewal fails or the lease
// runs out without one. stop ends the renewals; call it before Commit.
func (c *Claim) Hold(ctx context.Context) (context.Context, func(), error) {
	if err := c.renew(ctx); err != nil {
		return nil, nil, err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		for {
			c.mu.Lock()
			renewAt := c.expires.Add(-c.r.ClaimTTL / 2)
			c.mu.Unlock()
			safe := c.safeUntil()
			select {
			case <-done:
				return
			case <-hctx.Done():
				return
			case <-time.After(time.Until(safe)):
				cancel(ErrClaimLost)
				return
			case <-time.After(time.Until(renewAt)):
				if err := c.renew(context.WithoutCancel(ctx)); err != nil {
					cancel(ErrClaimLost)
					return
				}
			}
		}
	}()
	var once sync.Once
	return hctx, func() {
		once.Do(func() {
			close(done)
			cancel(context.Canceled)
		})
	}, nil
}

// LostErr turns an error from work under Hold into ErrClaimLost when the
// hold ended because the claim was lost.
func LostErr(hctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(hctx), ErrClaimLost) {
		return ErrClaimLost
	}
	return err
}

// Lease returns a context that ends when the claim stops being safe to act
// on, or ErrClaimLost if that moment has passed. Whatever a writer changes
// under its claim (the working database too) it changes with this context.
func (c *Claim) Lease(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := c.renew(ctx); err != nil {
		return nil, nil, err
	}
	return c.lease(ctx)
}

func (c *Claim) lease(ctx context.Context) (context.Context, context.CancelFunc, error) {
	safeUntil := c.safeUntil()
	if !time.Now().Before(safeUntil) {
		return nil, nil, ErrClaimLost
	}
	lctx, cancel := context.WithDeadline(ctx, safeUntil)
	return lctx, cancel, nil
}

// safeUntil is when the claim stops being safe to act on: a third of its
// time to live before it expires, so that clock drift and one slow request
// cannot carry a write past the moment another writer may take over.
func (c *Claim) safeUntil() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expires.Add(-c.r.ClaimTTL / 3)
}

// renew extends the lease when less than half of it is left, by inserting
// the next head record: a unique insert, so it fails if anyone else took
// the timeline.
func (c *Claim) renew(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Until(c.expires) > c.r.ClaimTTL/2 {
		return nil
	}
	safeUntil := c.expires.Add(-c.r.ClaimTTL / 3)
	if !time.Now().Before(safeUntil) {
		return ErrClaimLost
	}
	lctx, cancel := context.WithDeadline(ctx, safeUntil)
	defer cancel()
	expires := time.Now().Add(c.r.ClaimTTL)
	rec := headRecord{ID: headID(c.TL, c.n+1), TL: c.TL, N: c.n + 1, State: stateClaim, LSN: c.Base,
		Token: c.token, Expires: expires, Host: hostname(), PID: os.Getpid()}
	if _, err := c.r.DB.Collection(collHeads).InsertOne(lctx, rec); err != nil {
		if isDup(err) {
			return ErrClaimLost
		}
		return leaseErr(err)
	}
	c.n, c.expires = c.n+1, expires
	return nil
}

// leaseErr reports an operation cut off by the end of its lease as a lost
// claim.
func leaseErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrClaimLost
	}
	return err
}

// sweep deletes entries and commit records above the committed head: they
// belong to writers that died or lost their claim, and can never commit.
func (c *Claim) sweep(ctx context.Context) error {
	lctx, cancel, err := c.lease(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	above := bson.D{{Key: "tl", Value: c.TL}, {Key: "lsn", Value: bson.D{{Key: "$gt", Value: c.Base}}}}
	if _, err := c.r.DB.Collection(collEntries).DeleteMany(lctx, above); err != nil {
		return leaseErr(err)
	}
	_, err = c.r.DB.Collection(collCommits).DeleteMany(lctx,
		bson.D{{Key: "tl", Value: c.TL}, {Key: "lsn_to", Value: bson.D{{Key: "$gt", Value: c.Base}}}})
	return leaseErr(err)
}

// Next is the LSN the next appended entry gets.
func (c *Claim) Next() int64 { return c.next }

// Append writes entries at the next LSNs of the timeline, in order. They
// stay invisible until Commit.
func (c *Claim) Append(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := c.renew(ctx); err != nil {
		return err
	}
	lctx, cancel, err := c.lease(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	docs := make([]any, len(entries))
	now := c.r.Now()
	for i := range entries {
		e := &entries[i]
		e.TL, e.LSN, e.Time, e.Token = c.TL, c.next+int64(i), now, c.token
		e.ID = entryID(c.TL, e.LSN)
		docs[i] = e
	}
	if c.stats == nil {
		c.stats = map[string]*CollStats{}
	}
	pending := map[string]*CollStats{}
	for i := range entries {
		cs := pending[entries[i].Coll]
		if cs == nil {
			cs = &CollStats{Coll: entries[i].Coll}
			pending[entries[i].Coll] = cs
		}
		switch entries[i].Op {
		case OpDel:
			cs.Dels++
		case OpPut:
			cs.Puts++
		default:
			cs.Indexes++
		}
	}
	for attempt := 0; ; attempt++ {
		_, err := c.r.DB.Collection(collEntries).InsertMany(lctx, docs)
		if err == nil {
			break
		}
		if !isDup(err) || attempt >= 5 {
			return leaseErr(err)
		}
		// An entry sits where ours go: left by a writer that died after the
		// sweep could see it. This lease is the valid one: clear everything
		// above what we had appended before this batch, and write it again.
		if _, err := c.r.DB.Collection(collEntries).DeleteMany(lctx, bson.D{
			{Key: "tl", Value: c.TL}, {Key: "lsn", Value: bson.D{{Key: "$gte", Value: c.next}}},
		}); err != nil {
			return leaseErr(err)
		}
	}
	c.next += int64(len(entries))
	for name, p := range pending {
		if cs := c.stats[name]; cs != nil {
			cs.Puts += p.Puts
			cs.Dels += p.Dels
			cs.Indexes += p.Indexes
		} else {
			c.stats[name] = p
		}
	}
	return nil
}

// CommitInfo describes a commit.
type CommitInfo struct {
	Message string
	Author  string
	// MergeOf names the other side of a merge commit.
	MergeOf string
}

// Commit makes the appended entries visible as one commit and releases the
// claim. With nothing appended it only releases the claim. ErrClaimLost
// means the claim expired and was taken over: nothing was committed.
func (c *Claim) Commit(ctx context.Context, info CommitInfo) (*Commit, error) {
	return c.commit(ctx, info, false)
}

func (c *Claim) commit(ctx context.Context, info CommitInfo, dirty bool) (*Commit, error) {
	lctx, cancel, err := c.lease(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	var cm *Commit
	if c.next > c.Base+1 {
		cm = &Commit{ID: entryID(c.TL, c.next-1), TL: c.TL, From: c.Base + 1, To: c.next - 1,
			Time: c.r.Now(), Message: info.Message, Author: info.Author, MergeOf: info.MergeOf,
			Token: c.token, Stats: sortedStats(c.stats)}
		if err := c.insertCommit(lctx, cm); err != nil {
			return nil, leaseErr(err)
		}
	}
	if hook := os.Getenv("ARGON_TEST_CRASH_BEFORE_COMMIT"); hook != "" && cm != nil {
		// Test-only: die as a crash would, after the entries and the
		// commit record are written but before the head moves.
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	rec := headRecord{ID: headID(c.TL, c.n+1), TL: c.TL, N: c.n + 1, State: stateCommit, LSN: c.next - 1, Token: c.token, Dirty: dirty}
	if _, err := c.r.DB.Collection(collHeads).InsertOne(lctx, rec); err != nil {
		if isDup(err) {
			return nil, ErrClaimLost
		}
		// The outcome is unknown (a timeout, a dropped connection): the
		// record may be in. Look, so that a commit is never reported as
		// failed when it happened.
		var got headRecord
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer ccancel()
		if ferr := c.r.DB.Collection(collHeads).FindOne(cctx, bson.D{{Key: "_id", Value: rec.ID}}).Decode(&got); ferr != nil || got.Token != c.token {
			return nil, leaseErr(err)
		}
	}
	// Trim: only the newest two head records matter.
	_, _ = c.r.DB.Collection(collHeads).DeleteMany(ctx, bson.D{
		{Key: "tl", Value: c.TL}, {Key: "n", Value: bson.D{{Key: "$lt", Value: c.n}}},
	})
	return cm, nil
}

func (c *Claim) insertCommit(ctx context.Context, cm *Commit) error {
	for attempt := 0; ; attempt++ {
		_, err := c.r.DB.Collection(collCommits).InsertOne(ctx, cm)
		if err == nil {
			return nil
		}
		if !isDup(err) || attempt >= 3 {
			return err
		}
		// A dead writer's commit record sits where ours goes.
		if _, err := c.r.DB.Collection(collCommits).DeleteOne(ctx, bson.D{
			{Key: "_id", Value: cm.ID}, {Key: "token", Value: bson.D{{Key: "$ne", Value: c.token}}},
		}); err != nil {
			return err
		}
	}
}

// Abort releases the claim without committing: the head stays where it
// was. Entries appended under the claim are deleted first, under the lease;
// if that fails, the release is marked dirty so that the next writer
// sweeps them.
func (c *Claim) Abort(ctx context.Context) error {
	appended := c.next > c.Base+1
	c.next = c.Base + 1
	dirty := false
	if appended {
		dirty = c.sweep(ctx) != nil
	}
	_, err := c.commit(ctx, CommitInfo{}, dirty)
	return err
}

// Package workdb keeps each branch's working database: a real MongoDB
// database holding the branch's committed head, where the server evaluates
// queries and update operators, and where applications connect. It is a
// cache of the log: it can be dropped and rebuilt from the WAL at any time.
package workdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/wal"
)

// MarkerCollection holds the one document that records what a working
// database reflects. It is not user data: argon never lists or versions it.
const MarkerCollection = "_argon"

const markerID = "marker"

// replayLimit is the most entries replayed one by one to catch a working
// database up; past it the database is rebuilt from a fold, which costs
// one read of the log instead of a round trip per entry.
const replayLimit = 1000

// Marker records the state a working database reflects.
type Marker struct {
	ID      string `bson:"_id"`
	Project string `bson:"project"`
	Branch  string `bson:"branch"`
	TL      string `bson:"tl"`
	// Applied is the LSN whose state the database holds.
	Applied int64 `bson:"applied_lsn"`
	// Writing is set while a writer changes the database; a marker left
	// with Writing set means a writer died, and the database is rebuilt.
	Writing bool `bson:"writing"`
	// Version changes on every write, so that a reader can tell that its
	// query ran on one unchanged state.
	Version int64 `bson:"version"`
	// Sums fingerprint the committed content (see Sums); absent on markers
	// written before they existed, in which case changes are always looked
	// for the slow way.
	Sums Sums `bson:"sums"`
}

// Branch is a branch's working database.
type Branch struct {
	Repo    *wal.Repo
	DB      *mongo.Database
	Project string
	Name    string
	TL      string
	// Notice receives one-line notices for the user (rebuilds).
	Notice func(string)
	// ScanReads is set when the engine scans a whole collection for any
	// filter but an _id equality (the embedded engine).
	ScanReads bool

	// delta is the fingerprint change of the write in progress: documents
	// it removed and added, XORed in.
	delta Sums
}

// changed records that a write replaced before with after in coll (either
// may be nil), for the marker's fingerprint.
func (w *Branch) changed(coll string, before, after bson.Raw) {
	if w.delta == nil {
		w.delta = Sums{}
	}
	if before != nil {
		w.delta.toggle(coll, before)
	}
	if after != nil {
		w.delta.toggle(coll, after)
	}
}

// Open returns the working database of branch b.
func Open(repo *wal.Repo, b *wal.Branch) *Branch {
	return &Branch{
		Repo: repo, Project: b.Project, Name: b.Name, TL: b.Timeline,
		DB:     repo.Client.Database(repo.WorkingDatabaseName(b.Project, b.Name)),
		Notice: func(string) {},
	}
}

func (w *Branch) marker(ctx context.Context) (*Marker, error) {
	var m Marker
	err := w.DB.Collection(MarkerCollection).FindOne(ctx, bson.D{{Key: "_id", Value: markerID}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	return &m, err
}

func (w *Branch) saveMarker(ctx context.Context, m *Marker) error {
	m.ID, m.Project, m.Branch, m.TL = markerID, w.Project, w.Name, w.TL
	m.Version++
	_, err := w.DB.Collection(MarkerCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: markerID}}, m,
		options.Replace().SetUpsert(true))
	return err
}

// sync brings the database to the committed head, under the caller's
// claim on the timeline. It returns the marker now in force.
func (w *Branch) sync(ctx context.Context, head int64) (*Marker, error) {
	m, err := w.marker(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case m == nil:
		notice := ""
		if w.known(ctx) {
			notice = "the working database of branch " + w.Name + " was missing; rebuilt it from the log"
		}
		if err := w.rebuild(ctx, head, notice); err != nil {
			return nil, err
		}
	case m.TL != w.TL:
		if err := w.rebuild(ctx, head, ""); err != nil {
			return nil, err
		}
	case m.Writing || m.Applied > head:
		// A writer died or failed mid-write, or before its commit.
		if err := w.rebuild(ctx, head, "a write to branch "+w.Name+" did not complete; rebuilt its working database from the log"); err != nil {
			return nil, err
		}
	case m.Applied < head && head-m.Applied > replayLimit:
		if err := w.rebuild(ctx, head, ""); err != nil {
			return nil, err
		}
	case m.Applied < head:
		m.Writing = true
		if err := w.saveMarker(ctx, m); err != nil {
			return nil, err
		}
		err := w.Repo.EachEntry(ctx, w.TL, m.Applied, head, "", func(e *wal.Entry) error {
			return w.apply(ctx, e)
		})
		if err != nil {
			return nil, err
		}
		// Replayed documents replaced whatever was there: count afresh.
		if m.Sums, err = scanSums(ctx, w.DB); err != nil {
			return nil, err
		}
		m.Applied, m.Writing = head, false
		if err := w.saveMarker(ctx, m); err != nil {
			return nil, err
		}
	default:
		return m, nil
	}
	return w.marker(ctx)
}

func (w *Branch) apply(ctx context.Context, e *wal.Entry) error {
	c := w.DB.Collection(e.Coll)
	switch e.Op {
	case wal.OpIndex:
		return createFromSpec(ctx, w.DB, e.Coll, bson.Raw(e.Doc))
	case wal.OpDropIndex:
		return c.Indexes().DropOne(ctx, wal.KeyValue(e.KeyBytes).StringValue())
	}
	id := bson.D{{Key: "_id", Value: wal.KeyValue(e.KeyBytes)}}
	if e.Op == wal.OpDel {
		_, err := c.DeleteOne(ctx, id)
		return err
	}
	_, err := c.ReplaceOne(ctx, id, bson.Raw(e.Doc), options.Replace().SetUpsert(true))
	return err
}

// rebuild drops the database and materialises the state at head from the
// log.
func (w *Branch) rebuild(ctx context.Context, head int64, notice string) error {
	if notice != "" {
		w.Notice(notice)
	}
	if err := w.DB.Drop(ctx); err != nil {
		return fmt.Errorf("drop working database %s: %w", w.DB.Name(), err)
	}
	m := &Marker{Applied: 0, Writing: true}
	if err := w.saveMarker(ctx, m); err != nil {
		return err
	}
	st, err := w.Repo.Fold(ctx, w.TL, head, "")
	if err != nil {
		return err
	}
	for _, coll := range st.Collections() {
		if err := insertBatches(ctx, w.DB.Collection(coll), st.Docs(coll)); err != nil {
			return err
		}
	}
	if err := materialiseIndexes(ctx, w.DB, st); err != nil {
		return err
	}
	m.Sums = Sums{}
	for _, coll := range st.Collections() {
		for _, d := range st.Docs(coll) {
			m.Sums.toggle(coll, d)
		}
	}
	m.Applied, m.Writing = head, false
	if err := w.saveMarker(ctx, m); err != nil {
		return err
	}
	_, err = w.Repo.DB.Collection(workdbsCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: w.DB.Name()}},
		bson.D{{Key: "_id", Value: w.DB.Name()}, {Key: "project", Value: w.Project}, {Key: "branch", Value: w.Name}},
		options.Replace().SetUpsert(true))
	return err
}

// workdbsCollection, in the metadata database, lists the working
// databases argon has built, so that one dropped by hand is noticed.
const workdbsCollection = "workdbs"

// known reports whether argon built this working database before.
func (w *Branch) known(ctx context.Context) bool {
	n, err := w.Repo.DB.Collection(workdbsCollection).CountDocuments(ctx, bson.D{{Key: "_id", Value: w.DB.Name()}})
	return err == nil && n > 0
}

const batchSize = 1000

func insertBatches(ctx context.Context, c *mongo.Collection, docs []bson.Raw) error {
	for len(docs) > 0 {
		n := min(len(docs), batchSize)
		batch := make([]any, n)
		for i := range batch {
			batch[i] = docs[i]
		}
		if _, err := c.InsertMany(ctx, batch); err != nil {
			return fmt.Errorf("materialise %s: %w", c.Name(), err)
		}
		docs = docs[n:]
	}
	return nil
}

// Checkout makes the working database exist and reflect the committed
// head, and returns the LSN it reflects.
func (w *Branch) Checkout(ctx context.Context) (int64, error) {
	var lsn int64
	err := w.read(ctx, func(m *Marker) error {
		lsn = m.Applied
		return nil
	})
	return lsn, err
}

// read runs fn against a working database that reflects the committed head,
// and makes sure no write touched the database while fn ran: if one did, fn
// runs again. A stale, missing or interrupted database is brought up to
// date first, under a claim.
func (w *Branch) read(ctx context.Context, fn func(*Marker) error) error {
	deadline := time.Now().Add(w.Repo.BusyTimeout)
	for attempt := 0; ; attempt++ {
		head, err := w.Repo.Head(ctx, w.TL)
		if err != nil {
			return err
		}
		m, err := w.marker(ctx)
		if err != nil {
			return err
		}
		if m != nil && m.TL == w.TL && !m.Writing && m.Applied == head.LSN {
			if err := fn(m); err != nil {
				return err
			}
			after, err := w.marker(ctx)
			if err != nil {
				return err
			}
			if after != nil && after.Version == m.Version {
				return nil
			}
			continue
		}
		if time.Now().After(deadline) {
			return &wal.BusyError{Branch: w.Name, PID: head.PID}
		}
		if head.Claimed {
			time.Sleep(time.Duration(5+attempt%20) * time.Millisecond)
			continue
		}
		claim, err := w.Repo.Claim(ctx, w.TL, w.Name)
		if err != nil {
			return err
		}
		hctx, stop, err := claim.Hold(ctx)
		if err != nil {
			return err
		}
		_, err = w.sync(hctx, claim.Base)
		err = wal.LostErr(hctx, err)
		stop()
		if err != nil {
			_ = claim.Abort(ctx)
			return err
		}
		if err := claim.Abort(ctx); err != nil && !errors.Is(err, wal.ErrClaimLost) {
			return err
		}
	}
}

// Drop removes the working database. It is a cache: nothing is lost.
func (w *Branch) Drop(ctx context.Context) error {
	if _, err := w.Repo.DB.Collection(workdbsCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: w.DB.Name()}}); err != nil {
		return err
	}
	return w.DB.Drop(ctx)
}

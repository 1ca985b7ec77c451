package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Scratch is an engine of this process's own for evaluations whose
// results argon reads back and writes elsewhere: the update operators of
// an update of many documents, applied to copies of the documents (see
// workdb's bulk.go). It is FerretDB, the same code as the embedded engine,
// over SQLite files in a temporary folder that SQLite never syncs: nothing
// in it has to survive a crash, and the embedded engine's updateMany
// spends most of its time syncing each document it writes. It starts on
// first use and is removed by Close; the folder of a process killed
// before is removed by the next scratch engine to start. The zero value
// is ready to use.
type Scratch struct {
	mu     sync.Mutex
	dir    string
	lock   *flock.Flock
	eng    *Engine
	client *mongo.Client
	n      int
}

// scratchPattern names the folders of scratch engines in the system's
// temporary directory; each holds scratchLock, locked by its process
// while it runs (the system releases the lock when the process ends, even
// killed), so the folder of a process that ended is known by a lock that
// can be taken, and the next scratch engine to start removes it.
const (
	scratchPattern = "argon-scratch-*"
	scratchLock    = "lock"
)

// Scratch returns the store's scratch engine, for a store of the embedded
// engine (in this process or through argon serve), else nil: a FerretDB
// server may run another version, whose evaluation could differ.
func (s *Store) Scratch() *Scratch {
	if !s.Embedded {
		return nil
	}
	return &s.scratch
}

// Collection returns an empty collection, in a database of its own, with
// the index on _id the engine's writes by _id use (see idIndexes), and a
// function that drops that database.
func (s *Scratch) Collection(ctx context.Context) (*mongo.Collection, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		if err := s.start(ctx); err != nil {
			// Any reason (a temporary directory that cannot be written,
			// say): the caller evaluates in its deployment instead.
			if !errors.Is(err, ErrNoScratch) {
				err = fmt.Errorf("%w: %v", ErrNoScratch, err)
			}
			return nil, nil, fmt.Errorf("start the scratch engine: %w", err)
		}
	}
	s.n++
	db := s.client.Database(fmt.Sprintf("s%d", s.n))
	if err := db.CreateCollection(ctx, "c"); err != nil {
		return nil, nil, err
	}
	// The folder is this process's alone and the database new: no other
	// connection to its file can be open (see idIndexes).
	if err := IndexIDsIn(s.dir, db.Name()); err != nil {
		return nil, nil, err
	}
	return db.Collection("c"), func() { _ = db.Drop(context.WithoutCancel(ctx)) }, nil
}

// ErrNoScratch reports that the scratch engine cannot run here: callers
// evaluate in their deployment instead.
var ErrNoScratch = errors.New("no scratch engine")

func (s *Scratch) start(ctx context.Context) error {
	// FerretDB puts the folder into SQLite URIs unescaped: a path with %,
	// ? or # names another file (found by an adversarial review).
	if tmp := os.TempDir(); strings.ContainsAny(tmp, "%?#") {
		return fmt.Errorf("%w: the temporary directory %q has a %%, ? or # in its path", ErrNoScratch, tmp)
	}
	dir, err := os.MkdirTemp("", strings.TrimSuffix(scratchPattern, "*"))
	if err != nil {
		return err
	}
	lock := flock.New(filepath.Join(dir, scratchLock), flock.SetPermissions(0o600))
	if ok, err := lock.TryLock(); !ok || err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("lock %s: %v", dir, err)
	}
	removeEndedScratch(dir)
	fail := func(err error) error {
		_ = lock.Unlock()
		_ = os.RemoveAll(dir)
		return err
	}
	f, err := newFerretDB("file:"+dir+"/?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(off)", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	eng := runEngine(f)
	client, err := mongo.Connect(options.Client().ApplyURI(eng.URI))
	if err == nil {
		err = client.Ping(ctx, nil)
	}
	if err != nil {
		eng.Stop()
		return fail(err)
	}
	s.dir, s.lock, s.eng, s.client = dir, lock, eng, client
	return nil
}

// removeEndedScratch removes the folders of scratch engines whose
// processes ended (their lock can be taken), but own. A folder without a
// lock file is left: its process may be about to lock it.
func removeEndedScratch(own string) {
	dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(own), scratchPattern))
	for _, d := range dirs {
		if d == own {
			continue
		}
		path := filepath.Join(d, scratchLock)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		l := flock.New(path)
		if ok, err := l.TryLock(); ok && err == nil {
			_ = l.Unlock() // first: an open file cannot be removed on Windows
			_ = os.RemoveAll(d)
		}
	}
}

// Close stops the scratch engine, if it started, and removes its folder.
func (s *Scratch) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.client.Disconnect(ctx)
	s.eng.Stop()
	_ = s.lock.Unlock()
	_ = os.RemoveAll(s.dir)
	s.eng, s.client, s.lock = nil, nil, nil
}

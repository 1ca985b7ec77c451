package store

import (
	"path/filepath"
	"sync"
)

// argon serve gives collections created while it runs the same _id index
// that it gives every existing one as it starts (see idIndexes): without
// it, a working database created after the serve started (a new branch's,
// or the log's own when the serve started before argon init) read a whole
// table for every lookup by _id, and the engine's updateMany on it was
// quadratic.
//
// The serve can do this safely where a client could not because every
// request reaches the engine through its guard. The one engine operation
// that a second connection on a file must never overlap is dropDatabase:
// the engine closes its connections to the file and deletes it, and a
// connection left open keeps the write-ahead log, which the database
// created next under the same name then loses (an adversarial review
// reproduced that loss of an acknowledged write). serveIndexer therefore
// passes on no dropDatabase while it has a file open, and opens none from
// the moment a dropDatabase is passed on until the engine has answered it.
// A dropDatabase the guard cannot follow to its answer (its client or the
// engine's connection closed first, or the answers lost their order)
// stops the indexing for the rest of the serve's life.
//
// It looks at a database after an answered write that can create a
// collection, and only when that collection is not known to be indexed
// already; a drop, a dropDatabase or a write whose database the guard
// cannot tell (renameCollection) forgets what it knew. Errors are left,
// as everywhere for these indexes: they only make lookups faster.

// createsCollection are the writes that can create the collection they
// name (first key's value) in their database.
var createsCollection = map[string]bool{
	"insert": true, "update": true, "findAndModify": true, "findandmodify": true,
	"create": true, "createIndexes": true,
}

type serveIndexer struct {
	dataDir string

	mu   sync.Mutex
	cond *sync.Cond
	// indexing: a file is open; drops: dropDatabases passed on and not
	// answered; off: a drop could not be followed, indexing has stopped.
	indexing bool
	drops    int
	off      bool
	// gen changes with every drop of a collection or database (all: of
	// any); known holds the collections seen indexed, by database, valid
	// while gen and all are what they were when they were seen.
	gen   map[string]int64
	all   int64
	known map[string]map[string]bool
	// dirty: databases to look at (their names as sent, by the guard's
	// lowercased name); wake tells the worker there are some.
	dirty map[string]string
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}

	// hold is testIndexHold as the indexer started.
	hold func(db string)
}

// testIndexHold, when a test sets it, is called by a serve's indexer with
// a database file open.
var testIndexHold func(db string)

func newServeIndexer(dataDir string) *serveIndexer {
	ix := &serveIndexer{
		dataDir: dataDir,
		gen:     map[string]int64{},
		known:   map[string]map[string]bool{},
		dirty:   map[string]string{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		hold:    testIndexHold,
	}
	ix.cond = sync.NewCond(&ix.mu)
	return ix
}

// run indexes the databases it is told of until close.
func (ix *serveIndexer) run() {
	defer close(ix.done)
	for {
		select {
		case <-ix.stop:
			return
		case <-ix.wake:
		}
		ix.mu.Lock()
		dirty := ix.dirty
		ix.dirty = map[string]string{}
		ix.mu.Unlock()
		for db, file := range dirty {
			ix.index(db, file)
		}
	}
}

// close stops the worker and waits for it; after close no file is open.
func (ix *serveIndexer) close() {
	ix.mu.Lock()
	ix.off = true
	ix.cond.Broadcast()
	ix.mu.Unlock()
	close(ix.stop)
	<-ix.done
}

// index adds the missing indexes of database db (file: its name as
// sent), unless a dropDatabase is in flight (it waits for it) or indexing
// has stopped.
func (ix *serveIndexer) index(db, file string) {
	ix.mu.Lock()
	for ix.drops > 0 && !ix.off {
		ix.cond.Wait()
	}
	if ix.off {
		ix.mu.Unlock()
		return
	}
	ix.indexing = true
	gen, all := ix.gen[db], ix.all
	ix.mu.Unlock()

	var hold func()
	if ix.hold != nil {
		hold = func() { ix.hold(db) }
	}
	colls, _ := idIndexes(filepath.Join(ix.dataDir, file+".sqlite"), false, hold)

	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.indexing = false
	ix.cond.Broadcast()
	if ix.gen[db] != gen || ix.all != all {
		return // dropped something meanwhile: what was read may be stale
	}
	if ix.known[db] == nil {
		ix.known[db] = map[string]bool{}
	}
	for _, c := range colls {
		ix.known[db][c] = true
	}
}

// dropping is called before a dropDatabase is passed on to the engine:
// it waits while a file is open, and keeps files closed until dropped.
func (ix *serveIndexer) dropping(db string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for ix.indexing {
		ix.cond.Wait()
	}
	ix.drops++
	ix.forget(db)
}

// dropped is called with the engine's answer to a dropDatabase.
func (ix *serveIndexer) dropped(db string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.drops--
	ix.forget(db)
	ix.cond.Broadcast()
}

// lost is called for a dropDatabase the guard cannot follow to its
// answer: the engine may still be dropping, now or later.
func (ix *serveIndexer) lost() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.off = true
	ix.cond.Broadcast()
}

// forget drops what is known of database db ("" for every database).
// ix.mu is held.
func (ix *serveIndexer) forget(db string) {
	if db == "" {
		ix.all++
		clear(ix.known)
		return
	}
	ix.gen[db]++
	delete(ix.known, db)
}

// passed is called as request cmd on collection coll of database db is
// passed on to the engine: a drop, or a write the guard cannot place,
// makes what is known stale.
func (ix *serveIndexer) passed(cmd, db, coll string) {
	if cmd != "drop" && db != "" {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if db == "" {
		ix.forget("")
		return
	}
	ix.gen[db]++
	delete(ix.known[db], coll)
}

// answered is called with the engine's answer to write cmd on collection
// coll of database db (file: its name as sent).
func (ix *serveIndexer) answered(cmd, db, file, coll string) {
	switch {
	case cmd == "dropDatabase":
		ix.dropped(db)
		return
	case cmd == "drop" || db == "":
		ix.passed(cmd, db, coll) // stale again: the drop is done now
		return
	case cmd == "aggregate": // $out or $merge: coll is the source
		coll = ""
	case !createsCollection[cmd]:
		return
	}
	ix.mu.Lock()
	if ix.off || (coll != "" && ix.known[db][coll]) {
		ix.mu.Unlock()
		return
	}
	ix.dirty[db] = file
	ix.mu.Unlock()
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// commandTarget is the collection request msg names with its first key's
// value ("" when that is not a string) and the database its $db names,
// as sent.
func commandTarget(msg []byte) (coll, db string) {
	body, ok := sectionZero(msg)
	if !ok {
		return "", ""
	}
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 {
		return "", ""
	}
	coll, _ = elems[0].Value().StringValueOK()
	if v, err := body.LookupErr("$db"); err == nil {
		db, _ = v.StringValueOK()
	}
	return coll, db
}

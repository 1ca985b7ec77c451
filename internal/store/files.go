package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// DBFiles reads the files the embedded engine keeps a database in, to tell
// cheaply whether a database changed: FerretDB's SQLite handler keeps
// database db in db.sqlite and, while it is open, the write-ahead log
// db.sqlite-wal, and every change an application or argon makes is in
// their bytes once acknowledged (written, if not yet synced).
//
// A fingerprint is a 64-bit xxHash of both files' contents, with their
// lengths: equal fingerprints mean byte-identical files, so the same
// documents, but for a chance of one in 2^64 (a change that matched by
// that chance would look like none, as any hash allows; the files are
// not an adversary's). It was a SHA-256 until the eighteenth session: the
// hash took 60-70% of a fingerprint, read from the page cache, and a
// fingerprint is taken on every status and twice per write (BENCHMARKS).
// Its text starts "xxh64:", so that no record of the older fingerprints
// matches one: such a record costs one scan. The clean record maps a
// database to the fingerprint of files a full scan found equal to the
// committed state; since it names contents, not a time, it stays true
// however old it is, and a stale one only costs a scan.
//
// A fingerprint of the files is recorded only by a process that runs the
// engine itself under the workspace lock (Store.Exclusive): no one else
// can write then. With argon serve, an application's commit can be in the
// write-ahead log's bytes a moment (SQLite's fsync) before readers see it,
// and a scan in that moment would record new bytes as clean for old
// contents. A client of argon serve uses the serve's write token instead
// of the files (see writeLog): it names every write the guard passed on,
// so it can be recorded. Reading the record is safe either way: bytes or
// tokens equal to recorded ones mean no write has happened since, and a
// token never equals a files' fingerprint.
type DBFiles struct {
	dir    string // the engine's data directory
	clean  string // the clean record
	record bool   // this process may write the record
	// token, set for a client of argon serve, gives the serve's write
	// token of a database, which stands for its files' fingerprint; own
	// counts this process's writes, and first holds, by database, the
	// first token this process saw (or the last it recorded) and its own
	// counts then (see ownWrites).
	token func(db string) (string, error)
	holds *serveHolds
	own   *ownWrites
	first map[string]tokenCounts
	// building holds, by database, the token and own counts as this
	// process started building it (Building).
	building map[string]tokenCounts
	mu       sync.Mutex
	// indexed holds, by database, the size and time of its files when
	// IndexIDs last left every collection indexed: unchanged files need
	// no second look in the same command.
	indexed map[string]string
}

// DBFiles returns the reader of the embedded engine's files, or nil when
// the store is a server (argon cannot see its files).
func (s *Store) DBFiles() *DBFiles {
	if s.dataDir == "" {
		return nil
	}
	f := &DBFiles{dir: s.dataDir, clean: filepath.Join(s.dataDir, "..", "clean.json"), record: s.Exclusive}
	if s.Served {
		client := s.Client
		f.record = true
		f.token = func(db string) (string, error) { return WriteToken(context.Background(), client, db) }
		f.own, f.first, f.holds = s.own, map[string]tokenCounts{}, s.holds
	}
	return f
}

// FilesAt returns the reader of the files of an embedded engine that this
// process runs alone in dataDir, as a command does under the workspace
// lock (Store.Exclusive): for tests that drive working databases as the
// CLI does on the embedded engine.
func FilesAt(dataDir string) *DBFiles {
	return &DBFiles{dir: dataDir, clean: filepath.Join(dataDir, "..", "clean.json"), record: true}
}

// HoldWrites holds db's writes at argon serve for this process (see
// writeHolds); without a serve, this process runs the engine alone and
// there is nothing to hold.
func (f *DBFiles) HoldWrites(ctx context.Context, db string, ttl time.Duration) (func(), error) {
	if f.holds == nil {
		return func() {}, nil
	}
	return f.holds.Hold(ctx, db, ttl)
}

// HoldOn returns the field that carries a hold of db's writes on a command
// this process sends to argon serve anyway, and the function to give that
// command's answer to (see Carrier.Done); ok is false when the hold cannot
// ride (no serve, one that does not take carried holds, or db held
// already), and the caller holds with HoldWrites.
func (f *DBFiles) HoldOn(db string, ttl time.Duration) (bson.E, func(bson.Raw, error) func(), bool) {
	if f.holds == nil {
		return bson.E{}, nil, false
	}
	return carrierParts(f.holds.holdOn(db, ttl))
}

// ReleaseOn is HoldOn for the release of this process's hold of db.
func (f *DBFiles) ReleaseOn(db string) (bson.E, func(bson.Raw, error) func(), bool) {
	if f.holds == nil {
		return bson.E{}, nil, false
	}
	return carrierParts(f.holds.releaseOn(db))
}

// Then returns the field that carries body, a write command to db, as a
// follow-up of another command to argon serve (see Carrier), and the
// function to give that command's answer or error to: it returns the
// follow-up's answer, or nil when the serve did not pass it on. ok is
// false when the serve takes no follow-ups.
func (f *DBFiles) Then(db string, body bson.D) (bson.E, func(bson.Raw, error) bson.Raw, bool) {
	if f.holds == nil || !f.holds.followUps {
		return bson.E{}, nil, false
	}
	return bson.E{Key: carryThen, Value: body}, func(ans bson.Raw, err error) bson.Raw {
		if err != nil {
			return nil
		}
		then, ok := ans.Lookup(answerThen).DocumentOK()
		if !ok {
			return nil
		}
		// The guard counts it against db as this process's write.
		if f.own != nil {
			f.own.followed(db)
		}
		return then
	}, true
}

func carrierParts(c *Carrier) (bson.E, func(bson.Raw, error) func(), bool) {
	if c == nil {
		return bson.E{}, nil, false
	}
	return c.Field(), c.Done, true
}

// Fingerprint returns the fingerprint of database db's files. It fails
// (the caller then scans) when they are not plain files where the engine
// keeps them: SQLite puts the log of a symlinked database beside the
// link's target, and a rollback journal means a mode or a crash whose
// changes the two files do not hold.
func (f *DBFiles) Fingerprint(db string) (string, error) {
	if f.token != nil {
		if f.own == nil {
			return f.token(db)
		}
		tc, err := f.tokenAt(db)
		if err != nil {
			return "", err
		}
		if tc.token == "" { // this process wrote meanwhile
			return f.token(db)
		}
		f.mu.Lock()
		if _, ok := f.first[db]; !ok {
			f.first[db] = tc
		}
		f.mu.Unlock()
		return tc.token, nil
	}
	// Missing _id indexes are added first, so that adding them later
	// never changes bytes a clean record names (a database argon has just
	// built has none yet).
	if err := f.IndexIDs(db); err != nil {
		return "", err
	}
	for _, suffix := range []string{".sqlite", ".sqlite-wal", ".sqlite-journal"} {
		fi, err := os.Lstat(filepath.Join(f.dir, db+suffix))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", err
		case suffix == ".sqlite-journal":
			return "", fmt.Errorf("%s%s exists", db, suffix)
		case !fi.Mode().IsRegular():
			return "", fmt.Errorf("%s%s is not a regular file", db, suffix)
		}
	}
	h := xxhash.New()
	for _, suffix := range []string{".sqlite", ".sqlite-wal"} {
		fh, err := os.Open(filepath.Join(f.dir, db+suffix))
		if errors.Is(err, fs.ErrNotExist) {
			h.Write([]byte{0})
			continue
		}
		if err != nil {
			return "", err
		}
		if fi, err := fh.Stat(); err == nil && fi.Size() == 0 {
			// An empty log, as a database just opened has: the same
			// contents as none.
			fh.Close()
			h.Write([]byte{0})
			continue
		}
		n, err := io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
		h.Write(binary.BigEndian.AppendUint64([]byte{1}, uint64(n)))
	}
	return "xxh64:" + hex.EncodeToString(h.Sum(nil)), nil
}

// IndexIDs gives every collection of database db the index the engine's
// lookups by _id use (see idIndexes).
func (f *DBFiles) IndexIDs(db string) error {
	if f.token != nil || !f.record {
		return nil // not the engine's only user: see idIndexes
	}
	f.mu.Lock()
	seen := f.indexed[db]
	f.mu.Unlock()
	if seen != "" && seen == f.stamp(db) {
		return nil
	}
	if _, err := idIndexes(filepath.Join(f.dir, db+".sqlite"), true, nil); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.indexed == nil {
		f.indexed = map[string]string{}
	}
	f.indexed[db] = f.stamp(db)
	return nil
}

// stamp is the size and modification time of database db's files, or ""
// when they cannot be read.
func (f *DBFiles) stamp(db string) string {
	var b strings.Builder
	for _, suffix := range []string{".sqlite", ".sqlite-wal"} {
		fi, err := os.Lstat(filepath.Join(f.dir, db+suffix))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			b.WriteString("-;")
		case err != nil:
			return ""
		default:
			fmt.Fprintf(&b, "%d,%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

func (f *DBFiles) read() map[string]string {
	m := map[string]string{}
	if b, err := os.ReadFile(f.clean); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// Clean returns the fingerprint a full scan last found database db clean
// at ("" when none).
func (f *DBFiles) Clean(db string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read()[db]
}

// KeepClean records db as clean after a write that started clean (see
// workdb.DBFiles.KeepClean): its files, in a process that runs the engine
// itself under the workspace lock; the serve's token, in a client of argon
// serve, when the token moved by this process's own writes alone.
func (f *DBFiles) KeepClean(db string) error {
	if f.token != nil {
		return f.keepCleanServed(db)
	}
	return f.recordFiles(db)
}

// recordFiles records db's files as they are now as clean, in a process
// that runs the engine itself. The write left pages in the write-ahead
// log, which the engine moves into the database file when it closes it:
// recorded before that, the fingerprint named bytes the next command
// never saw, so every write dropped the record and the next status read
// the whole branch (1.5 s on 20,000 documents). Moved now, the close finds
// nothing to move. The files are this process's alone (Store.Exclusive).
func (f *DBFiles) recordFiles(db string) error {
	if !f.record {
		return nil
	}
	checkpoint(filepath.Join(f.dir, db+".sqlite"))
	fp, err := f.Fingerprint(db)
	if err != nil {
		return err
	}
	return f.SetClean(db, fp)
}

// recordToken records db's write token as clean when it moved from base
// (a token this process saw, with its own counts then) by this process's
// writes alone (see ownWrites), and chains later writes from it.
func (f *DBFiles) recordToken(db string, base tokenCounts) error {
	now, ok := tokenCounts{}, false
	if f.holds != nil {
		// After a write: the token at its release, when this process
		// has not written since (no other client wrote while it held).
		now, ok = f.holds.releasedToken(db)
	}
	var err error
	if !ok {
		now, err = f.tokenAt(db)
	}
	if err != nil || now.token == "" || !onlyOwnWrites(base, now) {
		return err
	}
	f.mu.Lock()
	f.first[db] = now
	f.mu.Unlock()
	return f.SetClean(db, now.token)
}

// keepCleanServed is KeepClean for a client of argon serve: the new token
// is recorded when it followed the clean one by this process's writes
// alone (see ownWrites).
func (f *DBFiles) keepCleanServed(db string) error {
	f.mu.Lock()
	base, ok := f.first[db]
	f.mu.Unlock()
	if !ok || f.own == nil || f.Clean(db) != base.token {
		return nil
	}
	return f.recordToken(db, base)
}

// Building is called before this process builds database db whole from
// the log (see Built).
func (f *DBFiles) Building(db string) {
	if f.token == nil || f.own == nil {
		return
	}
	tc, err := f.tokenAt(db)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.building == nil {
		f.building = map[string]tokenCounts{}
	}
	if err != nil || tc.token == "" {
		delete(f.building, db)
		return
	}
	f.building[db] = tc
}

// Built records database db clean after this process built it whole from
// the log: a process that runs the engine itself records its files (after
// moving the write-ahead log into them, as KeepClean); a client of argon
// serve the serve's token, when it moved from the one Building saw by this
// process's own writes alone (see ownWrites).
func (f *DBFiles) Built(db string) error {
	if f.token == nil {
		return f.recordFiles(db)
	}
	f.mu.Lock()
	base, ok := f.building[db]
	delete(f.building, db)
	f.mu.Unlock()
	if !ok {
		return nil
	}
	return f.recordToken(db, base)
}

// SetClean records that database db was clean when its files had
// fingerprint fp, when this process may record (see DBFiles). Concurrent
// writers each replace the record whole; any of them leaves true facts.
func (f *DBFiles) SetClean(db, fp string) error {
	if !f.record {
		return nil
	}
	// The workspace lock keeps other argon processes out, not an engine
	// someone started on these files by hand: one holds a lock on the
	// database's shared-memory file. (With argon serve its own engine
	// holds one; its token counts what it was sent.)
	if f.token == nil {
		if held, err := othersLock(filepath.Join(f.dir, db+".sqlite-shm")); err != nil || held {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.read()
	m[db] = fp
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(f.clean, b)
}

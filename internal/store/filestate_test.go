//go:build !windows

package store

import (
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bigDatabase creates an SQLite database w in a new data directory, with
// more than StateMinSize bytes, and returns the reader of its files as a
// command under the workspace lock has it.
func bigDatabase(t *testing.T) (*DBFiles, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "w.sqlite")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 1<<20)
	for range int(StateMinSize)/len(blob) + 1 {
		_, _ = rand.Read(blob)
		if _, err := db.Exec("INSERT INTO t VALUES (?)", blob); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	return FilesAt(dir), path
}

// overwrite changes one byte of the file at path in place: its size stays.
func overwrite(t *testing.T, path string, at int64) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	if _, err := fh.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0]++
	if _, err := fh.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// A large database's fingerprint comes from the state of its files
// (inode, size, times) once their contents were read in that state, and
// the contents are read again as soon as anything wrote to them.
func TestFingerprintTrustsAKnownState(t *testing.T) {
	f, path := bigDatabase(t)
	fp, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := f.hashFiles("w"); fp != want {
		t.Fatalf("fingerprint %s, want the files' hash %s", fp, want)
	}
	state, _, _, _ := f.filesState("w")
	if got := f.read()[stateKey("w")]; got != state+"="+fp {
		t.Fatalf("recorded state %q, want %q", got, state+"="+fp)
	}
	// Proof that the contents are not read in a known state: a record
	// that says otherwise is believed.
	f.rememberState("w", state+"=forged")
	if got, _ := f.Fingerprint("w"); got != "forged" {
		t.Fatalf("fingerprint in a known state %q, want the recorded one", got)
	}
	overwrite(t, path, 4096*3)
	got, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := f.hashFiles("w"); got != want || got == fp {
		t.Fatalf("fingerprint after a write %s, want the new hash %s (before: %s)", got, want, fp)
	}
}

// A write right after a fingerprint, in the same tick of the file
// system's clock, is never hidden by the state recorded: each fingerprint
// here follows a write of one byte in place, at once.
func TestFingerprintSeesWritesInTheSameTick(t *testing.T) {
	f, path := bigDatabase(t)
	for i := range 50 {
		overwrite(t, path, int64(4096*(2+i)))
		got, err := f.Fingerprint("w")
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := f.hashFiles("w"); got != want {
			t.Fatalf("write %d: fingerprint %s, want the files' hash %s", i, got, want)
		}
	}
}

// A process that has just made a large database hold the committed state
// records it clean by its files' state, without reading them; the next
// fingerprint matches the record, and a write after it does not.
func TestRecordFilesNamesLargeFilesByState(t *testing.T) {
	f, path := bigDatabase(t)
	if err := f.recordFiles("w"); err != nil {
		t.Fatal(err)
	}
	clean := f.Clean("w")
	if !strings.HasPrefix(clean, "state:") {
		t.Fatalf("recorded %q, want a state", clean)
	}
	if fp, err := f.Fingerprint("w"); err != nil || fp != clean {
		t.Fatalf("fingerprint %q (%v), want the record %q", fp, err, clean)
	}
	overwrite(t, path, 4096*5)
	if fp, err := f.Fingerprint("w"); err != nil || fp == clean {
		t.Fatalf("fingerprint after a write %q (%v), want other than the record", fp, err)
	}
}

// Below StateMinSize every fingerprint reads the files: the state is
// neither used nor recorded.
func TestSmallDatabasesAreRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "s.sqlite"), []byte("small"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &DBFiles{dir: dir, clean: filepath.Join(dir, "..", "clean.json"), record: true, indexed: map[string]string{}}
	f.indexed["s"] = f.stamp("s") // a plain file: no indexes to add
	fp, err := f.Fingerprint("s")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := f.hashFiles("s"); fp != want {
		t.Fatalf("fingerprint %s, want the hash %s", fp, want)
	}
	if _, ok := f.read()[stateKey("s")]; ok {
		t.Fatal("a small database's state was recorded")
	}
	if fp, ok := f.stateFingerprint("s"); ok {
		t.Fatalf("a small database was named by its state: %s", fp)
	}
}

// A state is recorded only once the file system's clock has passed every
// time in it: files stamped later than now (here by hand, as a write in
// the current tick of a coarse clock is) are read, never named by their
// state.
func TestUnsettledStatesAreNotRecorded(t *testing.T) {
	f, path := bigDatabase(t)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	fp, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := f.hashFiles("w"); fp != want {
		t.Fatalf("fingerprint %s, want the hash %s", fp, want)
	}
	if got, ok := f.read()[stateKey("w")]; ok {
		t.Fatalf("recorded the state %q of files stamped after now", got)
	}
	if fp, ok := f.stateFingerprint("w"); ok {
		t.Fatalf("named files stamped after now by their state: %s", fp)
	}
}

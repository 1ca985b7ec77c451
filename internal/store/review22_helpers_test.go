//go:build linux

package store

import (
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// bigDatabase creates an SQLite database w of about 9 MiB in a new data
// directory (a write of it in place takes long enough to be caught under
// way), and returns the reader of its files as a command under the
// workspace lock has it.
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
	for range 9 {
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

// contents returns a SHA-256 of the file at path, read here, apart from
// Fingerprint: the tests tell with it whether the bytes changed.
func contents(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// changeSeen fails t unless the file at path changed since its contents
// hashed to before and database w's fingerprint now differs from its
// clean record: status would otherwise say "changes none" over the
// change, which what describes.
func changeSeen(t *testing.T, f *DBFiles, path, before, what string) {
	t.Helper()
	got, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	want := contents(t, path)
	if want == before {
		t.Fatal("the contents did not change: the test is broken")
	}
	if got == f.Clean("w") {
		t.Fatalf("after %s, the fingerprint is still the clean record %s (the file's contents hash to %s): status would say \"changes none\"", what, got, want)
	}
}

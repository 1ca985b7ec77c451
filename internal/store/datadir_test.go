package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A database file left without the engine's metadata table (a process
// killed while the engine created it) is removed before the engine starts;
// one with the table is kept; one with other tables is moved aside.
func TestSweepDataDir(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, tables ...string) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("PRAGMA user_version = 1"); err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			if _, err := db.Exec("CREATE TABLE " + tb + " (x)"); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("good.sqlite", metadataTable, "c")
	mk("interrupted.sqlite")
	mk("odd.sqlite", "c")
	done, err := sweepDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 2 {
		t.Fatalf("handled %q, want two files", done)
	}
	if _, err := os.Stat(filepath.Join(dir, "good.sqlite")); err != nil {
		t.Errorf("good database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "interrupted.sqlite")); !os.IsNotExist(err) {
		t.Errorf("interrupted database still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "damaged", "odd.sqlite")); err != nil {
		t.Errorf("odd database not moved aside: %v", err)
	}
}

// The engine starts over files it would refuse (the sweep runs when it
// does, and only then), and says what it set aside.
func TestEngineStartsOverInterruptedDatabases(t *testing.T) {
	dir := t.TempDir()
	clean, err := StartEngine(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clean.Stop()
	if len(clean.Notices) != 0 {
		t.Fatalf("a clean start said %q", clean.Notices)
	}
	for _, name := range []string{"interrupted.sqlite", "odd.sqlite"} {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Exec("PRAGMA user_version = 1")
		if err == nil && name == "odd.sqlite" {
			_, err = db.Exec("CREATE TABLE c (x)")
		}
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	e, err := StartEngine(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	if len(e.Notices) != 2 || !strings.Contains(strings.Join(e.Notices, "\n"), "removed database interrupted") {
		t.Fatalf("notices %q, want the two files named", e.Notices)
	}
}

// A data folder argon cannot write to is reported as such before the
// engine starts (and fails with SQLite's words). Running as root, the
// folder is made unwritable by being a file, which no permission bypasses.
func TestReadOnlyDataFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "ws"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ws", "data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Options{Dir: filepath.Join(dir, "ws"), LockTimeout: time.Second})
	var ro *ReadOnlyError
	if !errors.As(err, &ro) {
		t.Fatalf("open: %v, want a ReadOnlyError", err)
	}
	if !strings.Contains(err.Error(), "is not writable (not a directory)") {
		t.Errorf("message: %v", err)
	}
	// A writable one is not refused.
	if err := checkWritable(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

package store

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
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

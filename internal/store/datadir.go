package store

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the SQLite driver the embedded engine itself uses
)

// metadataTable is the table the embedded engine keeps in every database
// file, listing its collections.
const metadataTable = "_ferretdb_collections"

// sweepDataDir removes database files that the embedded engine would
// refuse to start with. Measured: FerretDB's SQLite handler creates a
// database's file and then, in a separate step, its metadata table; a
// process killed in between (argon creates working databases and views as
// it goes) leaves a file without that table, and every later start of the
// engine fails with "no such table: _ferretdb_collections". A file in that
// state holds no collection the engine ever acknowledged, so removing it
// loses nothing; a file that holds other tables is moved aside instead.
// It returns a description of each file it handled.
func sweepDataDir(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		return nil, err
	}
	var done []string
	for _, f := range files {
		tables, err := sqliteTables(f)
		if err != nil {
			return done, fmt.Errorf("check %s: %w", f, err)
		}
		if tables[metadataTable] {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".sqlite")
		if len(tables) == 0 {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				if err := os.Remove(f + suffix); err != nil && !os.IsNotExist(err) {
					return done, err
				}
			}
			done = append(done, "removed database "+name+", whose creation was interrupted")
			continue
		}
		aside := filepath.Join(dir, "damaged")
		if err := os.MkdirAll(aside, 0o700); err != nil {
			return done, err
		}
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Rename(f+suffix, filepath.Join(aside, filepath.Base(f)+suffix)); err != nil && !os.IsNotExist(err) {
				return done, err
			}
		}
		done = append(done, "moved database "+name+", which the engine cannot open, to "+aside)
	}
	return done, nil
}

func sqliteTables(path string) (map[string]bool, error) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

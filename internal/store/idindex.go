package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The embedded engine's lookups by _id.
//
// FerretDB v1.24.2's SQLite handler answers a filter {_id: string or
// ObjectId} with SQL "WHERE _ferretdb_sjson->'$._id' = ?", but the unique
// index it creates for _id is on the expression _ferretdb_sjson->"_id".
// Both name the same value, yet SQLite matches an index to a query by the
// text of its expression, so the lookup reads the table from its first
// row until it finds the document, or to its end when there is none
// (measured on a workspace of 2,000 commits: a point read of a slot that
// does not exist yet, the last one a head search makes, took 120-240 ms;
// one of a root slot near the start of the table under 1 ms). Every head
// search, lease probe and read of a slot then cost time linear in the
// length of the history.
//
// idIndexes gives the tables an index on exactly the handler's
// expression, which SQLite then uses for those lookups. It is an index the
// engine does not know about: SQLite keeps it up to date on every write
// and drops it with its table, so the engine's view of its collections
// and indexes is unchanged. Its name is idIndexPrefix and the table's
// name. The engine names its indexes after their table, and a table after
// its collection's name lowercased (Go's strings.ToLower), so no name of
// the engine's starts with a non-ASCII capital letter; SQLite compares
// those case-sensitively.
//
// Only a process that runs the engine and knows no other process uses
// its files adds them: a command that runs the engine itself under the
// workspace lock (Store.Exclusive), and argon serve as it starts, before
// it lets clients in. A second connection open on a file while the
// engine drops that database and creates it again made the new database
// lose an acknowledged write (the engine deletes the file while the
// connection keeps its log; an adversarial review reproduced it through
// argon serve), and a checkpoint that waits for an application's open
// cursor held the database's writers for the busy timeout.

// idIndexPrefix starts the name of the index idIndexes creates on a table.
const idIndexPrefix = "Ä_argon_id_"

// IndexIDs gives every collection of database db, on the embedded engine,
// an index the engine's lookups by _id use (see idIndexes). It does
// nothing on other engines, in a client of argon serve (the serve added
// them as it started), or when the database has no file yet.
func (s *Store) IndexIDs(db string) error {
	if s.dataDir == "" || !s.Exclusive {
		return nil
	}
	return IndexIDsIn(s.dataDir, db)
}

// IndexIDsIn is IndexIDs for database db of the embedded engine whose
// data folder is dataDir.
func IndexIDsIn(dataDir, db string) error {
	_, err := idIndexes(filepath.Join(dataDir, db+".sqlite"), true, nil)
	return err
}

// idIndexes creates the missing _id indexes of the database file at path:
// one read of its schema, and nothing more when none is missing. It
// returns the names of the collections that have the index now. With
// checkpoint, it then moves what it wrote into the database file (see
// below). hold, when not nil, is called before the file is closed.
func idIndexes(path string, checkpoint bool, hold func()) ([]string, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	// mode=rw: never create the file. A short busy timeout: the index
	// only makes lookups faster, and the next command tries again.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(1000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if hold != nil {
		defer hold()
	}
	rows, err := db.Query(fmt.Sprintf(`SELECT name, table_name, EXISTS
		(SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = table_name AND name = ? || table_name)
		FROM %q`, metadataTable), idIndexPrefix)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil // a file the engine has not finished creating
		}
		return nil, fmt.Errorf("read the tables of %s: %w", filepath.Base(path), err)
	}
	var indexed, missing, missingColls []string
	for rows.Next() {
		var name, table string
		var has bool
		if err := rows.Scan(&name, &table, &has); err != nil {
			rows.Close()
			return nil, err
		}
		if has {
			indexed = append(indexed, name)
		} else {
			missing, missingColls = append(missing, table), append(missingColls, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, t := range missing {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, idIndexPrefix+t, t)
		if _, err := db.Exec(q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue // dropped since the read above
			}
			return indexed, fmt.Errorf("index the _id of %s in %s: %w", t, filepath.Base(path), err)
		}
		indexed = append(indexed, missingColls[i])
	}
	if checkpoint && len(missing) > 0 {
		// Move the new index's pages from the write-ahead log into the
		// database file now, as the engine does when it closes the file:
		// a fingerprint of the files (DBFiles) taken next is then the one
		// the next command sees, not one that changes at the close.
		// The files are this process's alone (see above), so no
		// application's cursor can hold the checkpoint; one of argon's
		// own could, for at most the connection's 1 s busy timeout, and
		// then the next command only scans once more. (PASSIVE, which
		// never waits, leaves the log's bytes in place: a fingerprint
		// taken next would change when the engine closes the file.)
		_, _ = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return indexed, nil
}

// checkpoint moves the write-ahead log of the database file at path into
// the file (see idIndexes), waiting at most 1 s for a reader. Errors are
// left: a log left in place only costs the next command a check.
func checkpoint(path string) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(1000)")
	if err != nil {
		return
	}
	defer db.Close()
	_, _ = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
}

// indexAll adds the missing _id indexes of every database file in
// dataDir, as argon serve starts (see idIndexes). Errors are left: the
// indexes only make lookups faster.
func indexAll(dataDir string) {
	files, _ := filepath.Glob(filepath.Join(dataDir, "*.sqlite"))
	for _, f := range files {
		_, _ = idIndexes(f, true, nil)
	}
}

package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // to read the embedded engine's files
)

// indexedCollections returns the collections of database db of the
// workspace in dir whose table has argon's _id index.
func indexedCollections(t *testing.T, dir, db string) []string {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+filepath.Join(dir, ".argon", "data", db+".sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT c.name FROM _ferretdb_collections c JOIN sqlite_master m
		ON m.type = 'index' AND m.tbl_name = c.table_name AND m.name = 'Ä_argon_id_' || c.table_name
		AND m.sql LIKE '%_ferretdb_sjson->''$._id''%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// On the embedded engine, argon gives the collections of the log and of
// the working database it opens the index the engine's lookups by _id
// use (store.IndexIDs).
func TestCommandsIndexIDs(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a server's files are not argon's")
	}
	dir, run := statusWorkspace(t, "ix")
	run("status")
	meta := indexedCollections(t, dir, "argon_wal")
	for _, c := range []string{"branches", "leases", "slots", "timelines"} {
		if !slices.Contains(meta, c) {
			t.Errorf("the log's indexed collections: %v, want %s among them", meta, c)
		}
	}
	if got := strings.Join(indexedCollections(t, dir, "ar_ix__main"), " "); got != "_argon c d" {
		t.Errorf("main's working database's indexed collections: %q, want \"_argon c d\"", got)
	}
}

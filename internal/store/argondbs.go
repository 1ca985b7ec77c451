package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// argonDBs are the databases argon serve keeps applications from writing:
// argon's metadata databases, which hold the log (its slots, entries and
// leases). A write an application sends there through the serve (an
// insert, a delete of a slot, a dropDatabase a test harness sends to every
// database it lists) would lose or corrupt committed history, which no
// fsck can give back (found by a new-user run: a deleted slot left the
// project unreadable). argon's own clients name themselves when they
// connect (isArgonClient) and write there as before. The name is no
// credential: this keeps mistakes out, not an application that poses as
// argon.
//
// A metadata database is known by the unique indexes wal.EnsureSchema
// creates when its first project is made, tl_1_n_1 on slots and
// project_1_name_1 on branches (logIndexes): a database in the data
// folder that has both when the serve starts, or one where argon's own
// client creates both afterwards; never a database holding _argon, a
// working database's marker. Until review39 any database where argon's
// client wrote a collection named slots or leases counted, and a branch
// whose data held such a collection (a booking application's slots, a
// property application's leases) refused every write of its
// applications; with the slots index alone, an export of data whose
// slots had a unique {tl: 1, n: 1} index did the same (review41).
type argonDBs struct {
	mu  sync.Mutex
	dbs map[string]bool
	// indexed holds, by database, the log's indexes argon's client has
	// created there while the serve runs.
	indexed map[string]map[string]bool
	// dataDir is the engine's data folder ("" when unknown).
	dataDir string
	// gone holds the databases argon's own client dropped and has not
	// written to since (by lower-case name): a branch's working database
	// its delete dropped, until argon builds one of that name again.
	gone map[string]bool
}

// metadataDBsIn finds the metadata databases among the embedded engine's
// database files in dataDir (the engine names a file after its database).
func metadataDBsIn(dataDir string) *argonDBs {
	a := &argonDBs{dbs: map[string]bool{}, gone: map[string]bool{}, indexed: map[string]map[string]bool{}, dataDir: dataDir}
	files, _ := filepath.Glob(filepath.Join(dataDir, "*.sqlite"))
	for _, f := range files {
		if isMetadataFile(f) {
			a.dbs[strings.ToLower(strings.TrimSuffix(filepath.Base(f), ".sqlite"))] = true
		}
	}
	return a
}

// logIndexes are the unique indexes wal.EnsureSchema puts on a metadata
// database, by collection: {tl: 1, n: 1} on slots, {project: 1, name: 1}
// on branches.
var logIndexes = map[string]string{"slots": "tl_1_n_1", "branches": "project_1_name_1"}

// isMetadataFile reports whether the engine's database file at path is a
// metadata database's: it has the log's unique indexes, and it holds no
// working database's marker.
func isMetadataFile(path string) bool {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(1000)")
	if err != nil {
		return false
	}
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf(`SELECT name, settings FROM %q WHERE name IN ('slots', 'branches', '_argon')`, metadataTable))
	if err != nil {
		return false
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var name, settings string
		if rows.Scan(&name, &settings) != nil || name == "_argon" {
			return false
		}
		var st struct {
			Indexes []struct {
				Name   string `json:"name"`
				Unique bool   `json:"unique"`
			} `json:"indexes"`
		}
		if json.Unmarshal([]byte(settings), &st) != nil {
			return false
		}
		for _, ix := range st.Indexes {
			if ix.Name == logIndexes[name] && ix.Unique {
				found++
				break
			}
		}
	}
	return rows.Err() == nil && found == len(logIndexes)
}

// holdsMarker reports whether database db's file holds a working
// database's marker collection (_argon).
func (a *argonDBs) holdsMarker(db string) bool {
	if a.dataDir == "" {
		return false
	}
	h, err := sql.Open("sqlite", "file:"+filepath.Join(a.dataDir, db+".sqlite")+"?mode=ro&_pragma=busy_timeout(1000)")
	if err != nil {
		return false
	}
	defer h.Close()
	var n int
	err = h.QueryRow(fmt.Sprintf(`SELECT COUNT(*) FROM %q WHERE name = '_argon'`, metadataTable)).Scan(&n)
	return err == nil && n > 0
}

// wrote records a write command cmd (msg) of argon's own client to
// collection coll of db: a metadata database is one where it creates the
// log's unique indexes, unless db holds a working database's marker
// (indexes of those names a user made on collections of theirs).
func (a *argonDBs) wrote(db, coll, cmd string, msg []byte) {
	name, ok := logIndexes[coll]
	if a == nil || db == "" || cmd != "createIndexes" || !ok || !createsIndex(msg, name) {
		return
	}
	a.mu.Lock()
	seen := a.indexed[db]
	if seen == nil {
		seen = map[string]bool{}
		a.indexed[db] = seen
	}
	seen[coll] = true
	all := len(seen) == len(logIndexes)
	a.mu.Unlock()
	if !all || a.holdsMarker(db) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dbs[db] = true
}

// createsIndex reports whether createIndexes command msg creates an index
// named name.
func createsIndex(msg []byte, name string) bool {
	body, ok := sectionZero(msg)
	if !ok {
		return false
	}
	found := false
	check := func(doc bson.Raw) {
		if n, ok := doc.Lookup("name").StringValueOK(); ok && n == name {
			found = true
		}
	}
	if ixs, ok := body.Lookup("indexes").ArrayOK(); ok {
		vals, _ := ixs.Values()
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok {
				check(d)
			}
		}
	}
	eachDocument(msg, func(seq bool, _ int, doc bson.Raw) bool {
		if seq {
			check(doc)
		}
		return true
	})
	return found
}

// ownWrite records a write command cmd of argon's own client to db: a
// dropDatabase marks db dropped by argon, any other write (a rebuild
// filling it again) ends that.
func (a *argonDBs) ownWrite(db, cmd string) {
	if a == nil || db == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cmd == "dropDatabase" {
		// Not argon's views and scratch databases (the prefix, then
		// '-'): no application writes there, and their names are new
		// each time.
		if i := strings.IndexByte(db, '_'); i < 0 || !strings.HasPrefix(db[i+1:], "-") {
			a.gone[strings.ToLower(db)] = true
		}
	} else {
		delete(a.gone, strings.ToLower(db))
	}
}

// reserved records an insert by argon's own client into the workdbs
// collection of a metadata database (msg): each document's _id names a
// working database reserved for a new branch, which applications may
// write to from now on, even before argon builds it (review36: a branch
// created again under a deleted one's name got the same database, and
// applications' writes to it were refused).
func (a *argonDBs) reserved(cmd, coll string, msg []byte) {
	if a == nil || cmd != "insert" || coll != "workdbs" {
		return
	}
	ids := insertedIDs(msg)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		delete(a.gone, strings.ToLower(id))
	}
}

// insertedIDs returns the string _ids of the documents insert command msg
// carries, in its body's documents array or a document sequence.
func insertedIDs(msg []byte) []string {
	var out []string
	add := func(doc bson.Raw) {
		if id, ok := doc.Lookup("_id").StringValueOK(); ok {
			out = append(out, id)
		}
	}
	eachDocument(msg, func(seq bool, _ int, doc bson.Raw) bool {
		if seq {
			add(doc)
			return true
		}
		if docs, ok := doc.Lookup("documents").ArrayOK(); ok {
			vals, _ := docs.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					add(d)
				}
			}
		}
		return true
	})
	return out
}

// droppedRefusal says why an application's write to db is refused once
// it may pass (after any hold of db): argon dropped db (a branch delete)
// and has not built it again. Passed on, the write would create the
// database again, holding a document no branch shows, and be acknowledged
// (review35: an application's insert held during a branch delete). An
// application that drops a working database itself may fill it again.
func (a *argonDBs) droppedRefusal(db string) string {
	if a == nil || db == "" {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gone[strings.ToLower(db)] {
		return fmt.Sprintf("argon serve: database %s was dropped by argon (its branch was deleted); writes to it are refused until a branch takes the name again", db)
	}
	return ""
}

// refusal says why an application's write to coll of db is refused, or ""
// when it is not: a write to a metadata database, or to the collection
// holding a working database's marker (_argon).
func (a *argonDBs) refusal(db, coll string) string {
	if coll == "_argon" {
		return fmt.Sprintf("argon serve: %s._argon is argon's record of what this working database holds; applications must not write it", db)
	}
	if a == nil || db == "" {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dbs[db] {
		return fmt.Sprintf("argon serve: database %s holds argon's log; applications must not write it (argon's commands do)", db)
	}
	return ""
}

// renameRefusal says why an application's renameCollection (msg) is
// refused, or "": one that moves a collection out of or into a place
// refusal protects (a working database's _argon, a metadata database).
// The command names its namespaces as "db.collection" in its arguments
// (review31: an application renamed _argon away, and argon then took its
// own marker for an application's data).
func (a *argonDBs) renameRefusal(cmd string, msg []byte) string {
	if cmd != "renameCollection" {
		return ""
	}
	body, ok := sectionZero(msg)
	if !ok {
		return ""
	}
	for _, key := range []string{"renameCollection", "to"} {
		ns, _ := body.Lookup(key).StringValueOK()
		db, coll, ok := strings.Cut(ns, ".")
		if !ok {
			continue
		}
		if why := a.refusal(strings.ToLower(db), coll); why != "" {
			return why
		}
	}
	return ""
}

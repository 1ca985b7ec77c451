package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/ui"
)

// wireCount runs one argon command line in-process against the server of
// the environment and returns the commands it sent, by name.
func wireCount(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	var mu sync.Mutex
	var names []string
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		names = append(names, e.CommandName)
		mu.Unlock()
	}}
	runMonitored(t, dir, mon, args)
	mu.Lock()
	defer mu.Unlock()
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return len(names), strings.Join(sorted, " ")
}

// runMonitored runs one argon command line in-process in the workspace
// dir, with the driver command monitor mon, and fails the test when it
// fails.
func runMonitored(t *testing.T, dir string, mon *event.CommandMonitor, args []string) {
	t.Helper()
	io, _, _, errOut := ui.Test()
	f := &cmd.Factory{IO: io, Dir: dir, Monitor: mon}
	if code := cmd.Run(context.Background(), f, args); code != 0 {
		t.Fatalf("argon %v: exit %d: %s", args, code, errOut.String())
	}
}

// count returns how many of the command names (as wireCount returns
// them) are name.
func count(names, name string) int {
	n := 0
	for _, s := range strings.Fields(names) {
		if s == name {
			n++
		}
	}
	return n
}

// wireProject starts a fresh server with a project "wire" on it, for
// counting commands, and returns the workspace folder.
func wireProject(t *testing.T) string {
	t.Helper()
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("counts are for a fresh server")
	}
	srv := enginetest.Start(t)
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": srv.URI, "ARGON_DB": srv.DB, "ARGON_PROJECT": "wire",
		"ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir} {
		t.Setenv(k, v)
	}
	wireCount(t, dir, "init", "wire")
	return dir
}

// An update or delete by a filter other than {_id: value} learns its keys
// only once the filter ran: it announces them in its lease before it
// changes anything, one update of the lease more than the same change by
// _id sends.
func TestWireAnnouncesFilterMatches(t *testing.T) {
	dir := wireProject(t)
	for i := 0; i < 3; i++ {
		wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": "d%d", "v": %d}`, i, i))
	}
	var leases []string
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "update" && e.Command.Lookup("update").StringValue() == "leases" {
			leases = append(leases, e.Command.Lookup("updates").String())
			// A lease is updated by _id alone: FerretDB looks up by its
			// _id index only a filter of _id alone, and every write
			// leaves a lease record behind (wal.Lease.filter).
			ups, _ := e.Command.Lookup("updates").Array().Values()
			for _, u := range ups {
				q := u.Document().Lookup("q").Document()
				if elems, _ := q.Elements(); len(elems) != 1 || elems[0].Key() != "_id" {
					t.Errorf("a lease update's filter is %s, want {_id: ...} alone", q)
				}
			}
		}
	}}
	runMonitored(t, dir, mon, []string{"update", "c", `{"_id": "d1"}`, `{"$set": {"w": 1}}`})
	if len(leases) != 0 {
		t.Fatalf("an update by _id updated its lease %d times: %v", len(leases), leases)
	}
	runMonitored(t, dir, mon, []string{"update", "c", `{"v": 2}`, `{"$set": {"w": 1}}`})
	if len(leases) != 1 || !strings.Contains(leases[0], `"known": true`) {
		t.Fatalf("an update by filter updated its lease %d times, want once, announcing its key: %v", len(leases), leases)
	}
	n, names := wireCount(t, dir, "delete", "c", `{"v": 0}`)
	if want := 14; n != want {
		t.Errorf("argon delete by filter sent %d commands, want %d: %s", n, want, names)
	}
}

// On the embedded engine a count is the engine's count command, never the
// driver's CountDocuments: FerretDB answers that aggregation by loading every
// matched document first (workdb.countDocs: 281 MB against 45 MB for
// 100,000 documents). A read that found nothing in a collection that does
// not exist looks for a close name without counting any collection: it
// asks each for one document at most.
func TestWireCountsWithTheCountCommand(t *testing.T) {
	// The embedded engine: over PostgreSQL FerretDB's count command is
	// wrong on dotted paths through arrays (count_paths.txtar), and argon
	// sends CountDocuments there.
	dir, _ := statusWorkspace(t, "cn")
	for i := 0; i < 3; i++ {
		wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": "d%d", "v": %d}`, i, i))
	}
	type sent struct{ name, body string }
	var mu sync.Mutex
	var cmds []sent
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		cmds = append(cmds, sent{e.CommandName, e.Command.String()})
		mu.Unlock()
	}}
	run := func(args ...string) []sent {
		mu.Lock()
		cmds = nil
		mu.Unlock()
		runMonitored(t, dir, mon, args)
		mu.Lock()
		defer mu.Unlock()
		return cmds
	}
	for _, args := range [][]string{{"count", "c"}, {"count", "c", `{"v": {"$gt": 0}}`}, {"collections"}, {"find", "cc"}} {
		counts := 0
		for _, c := range run(args...) {
			switch c.name {
			case "count":
				counts++
			case "aggregate":
				// CountDocuments with a limit of one (does the collection
				// hold a document?) is the only aggregation allowed.
				if !strings.Contains(c.body, `{"$limit": {"$numberLong":"1"}}`) {
					t.Errorf("argon %v sent an aggregation that is not a check for one document: %s", args, c.body)
				}
			}
		}
		want := map[string]int{"count": 1, "collections": 2, "find": 0}[args[0]] // c and d
		if counts != want {
			t.Errorf("argon %v sent %d count commands, want %d", args, counts, want)
		}
	}
}

// The round trips of the main commands are counted with a driver command
// monitor, so that an added query (a per-item loop, an extra read on the
// write path) shows up as a failure here. The figures are exact: change
// them only with a reason in the commit message and docs/BENCHMARKS.md.
func TestWireMessages(t *testing.T) {
	dir := wireProject(t)
	for i := 0; i < 20; i++ { // not on a slot that advances the hint
		wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": "warm%d", "v": %d}`, i, i))
	}
	wireCount(t, dir, "find", "c", `{"_id": "warm1"}`)

	cases := []struct {
		args []string
		want int
	}{
		// buildInfo (argon's ping), branch (and its project, for the
		// log's format, read at the same time: review37), marker, query,
		// lease probe, endSessions
		{[]string{"find", "c", `{"_id": "warm1"}`}, 7},
		// buildInfo, branch and project, marker, lease, the check that the log
		// holds no document of that _id (timeline, slots holding the
		// key, spilled entries of the key: one an application deleted
		// and did not commit; a server's files cannot say the database
		// is clean; no spilled commit here, so no read of their key
		// records or chunks), the check that the collection's indexes
		// are the committed ones (listIndexes, against the marker's
		// fingerprint: review31), insert, slot, marker, endSessions:
		// FerretDB stores the document as sent, so there is no read-back
		// (on MongoDB there is one, see storedAsSent)
		{[]string{"insert", "c", `{"_id": "new1", "v": 1}`}, 12},
		// buildInfo, branch and project, marker, lease, the indexes' check, match,
		// the check that the matched documents are committed (timeline,
		// slots holding their keys; no spilled commit: a server's files
		// cannot say the database is clean), update, read back, slot,
		// marker, endSessions
		{[]string{"update", "c", `{"_id": "warm2"}`, `{"$set": {"v": 0}}`}, 14},
		// buildInfo, branch and project, marker, lease, the indexes' check, match,
		// the same check, delete, slot, marker, endSessions
		{[]string{"delete", "c", `{"_id": "warm3"}`}, 13},
	}
	for _, tc := range cases {
		n, names := wireCount(t, dir, tc.args...)
		t.Logf("%s: %d commands: %s", tc.args[0], n, names)
		if n != tc.want {
			t.Errorf("argon %s sent %d commands, want %d: %s", tc.args[0], n, tc.want, names)
		}
	}

	// Listing branches: one scan each of the branches and the timelines,
	// then the heads. With few branches, point reads of each head (the
	// slot its hint names and the one after it); from wal's headScanMin
	// on, one scan of their slots: never one query per branch over a
	// scanned collection.
	one, names := wireCount(t, dir, "branch")
	t.Logf("branch with 1 branch: %d commands: %s", one, names)
	// buildInfo, project, branches, timelines, main's slot 20 (its hint)
	// and 21 to 24 after it, endSessions
	if one != 10 {
		t.Errorf("argon branch sent %d commands with 1 branch, want 10: %s", one, names)
	}
	for i := 0; i < 9; i++ {
		wireCount(t, dir, "branch", "create", fmt.Sprintf("b%d", i))
	}
	ten, names := wireCount(t, dir, "branch")
	t.Logf("branch with 10 branches: %d commands: %s", ten, names)
	for i := 9; i < 30; i++ {
		wireCount(t, dir, "branch", "create", fmt.Sprintf("b%d", i))
	}
	thirty, names := wireCount(t, dir, "branch")
	// buildInfo, project, branches, slots, endSessions: the timelines
	// come from the branches' copies of their fork points.
	if ten != 5 || thirty != ten {
		t.Errorf("argon branch sent %d commands with 10 branches and %d with 30, want 5 for both: %s", ten, thirty, names)
	}

	// The entries of the log: one read per commit (the slot, with its
	// entries inline), plus at most a few to find the head from its hint.
	before, _ := wireCount(t, dir, "log", "--entries")
	for i := 0; i < 10; i++ {
		wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": "more%d"}`, i))
	}
	after, names := wireCount(t, dir, "log", "--entries")
	// (The head is found from a hint advanced every 4 commits: up to 4
	// reads more or fewer. Two reads per commit would add 16 or more.)
	if d := after - before; d < 10-4 || d > 10+4 {
		t.Errorf("argon log --entries sent %d commands, then %d after 10 more commits: want about one more per commit: %s", before, after, names)
	}
}

// Metadata commands read each thing once: a timeline once per command
// (the Repo keeps those it read), the head once (branch create forks from
// the head it resolved; status takes it from the working database's
// marker, which its read checks against the log), the marker once.
func TestWireMetadataCommands(t *testing.T) {
	dir := wireProject(t)
	for i := 0; i < 20; i++ { // head slot 20, which the timeline's hint names
		wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": "warm%d", "v": %d}`, i, i))
	}
	cases := []struct {
		args []string
		want int
	}{
		// buildInfo, branch and project (its log format), timeline,
		// marker, the scan for applications' changes (listCollections, c,
		// its indexes: a server's files cannot say the database is clean),
		// lease probe, endSessions
		{[]string{"status"}, 10},
		// buildInfo, project, branch, timeline, slots 20 and 21 (the head
		// from the hint), slots 19 and 18 (20 was read), branches,
		// endSessions
		{[]string{"log", "-n", "3"}, 10},
		// buildInfo, project, branch main, timeline, slots 20 and 21 (its
		// head), tag and branch of the new name, then the inserts of the
		// timeline, its root slot, the database reservation (and the look
		// that no such database exists), the branch, the reflog record;
		// endSessions
		{[]string{"branch", "create", "b1"}, 15},
	}
	for _, tc := range cases {
		n, names := wireCount(t, dir, tc.args...)
		t.Logf("%s: %d commands: %s", tc.args[0], n, names)
		if n != tc.want {
			t.Errorf("argon %v sent %d commands, want %d: %s", tc.args, n, tc.want, names)
		}
	}
}

// On a branch of a branch, the check of a write on a server (that the log
// holds no document of the new _id an application deleted) reads the
// slots once for the whole ancestry, not once per timeline of it (on
// FerretDB each such query reads its collection whole), and for the
// spilled commits among them, their chunks' key records once: never the
// chunks themselves, when none holds the key.
func TestWireBranchWriteScansOnce(t *testing.T) {
	dir := wireProject(t)
	var docs strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&docs, "{\"_id\": \"d%d\"}\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "docs.ndjson"), []byte(docs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	wireCount(t, dir, "insert", "c", "--file", filepath.Join(dir, "docs.ndjson"))
	wireCount(t, dir, "checkout", "-b", "f1")
	wireCount(t, dir, "insert", "c", `{"_id": "f"}`)
	wireCount(t, dir, "checkout", "-b", "f2")
	var mu sync.Mutex
	scans := map[string]int{}
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "find" {
			return
		}
		coll, _ := e.Command.Lookup("find").StringValueOK()
		mu.Lock()
		defer mu.Unlock()
		if _, err := e.Command.Lookup("filter").Document().LookupErr("_id"); err != nil {
			scans[coll]++
		} else if coll == "entries" {
			scans["entries by _id"]++
		}
	}}
	runMonitored(t, dir, mon, []string{"insert", "c", `{"_id": "x"}`})
	if scans["slots"] != 1 || scans["chunk_keys"] != 1 || scans["entries"] != 0 || scans["entries by _id"] != 0 {
		t.Errorf("an insert on a branch of a branch read slots %d times, chunk_keys %d, entries %d, entries by _id %d: want 1, 1, 0, 0",
			scans["slots"], scans["chunk_keys"], scans["entries"], scans["entries by _id"])
	}
}

// An import reads, deletes and inserts a batch at a time: its commands
// grow with the number of batches, never with the number of documents.
func TestImportCommands(t *testing.T) {
	dir := wireProject(t)
	// No image snapshot taken after a commit crosses 10,000 LSNs: its
	// reads are not the import's.
	t.Setenv("ARGON_SNAPSHOT_EVERY", "0")
	write := func(name string, n int, field string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `{"_id": %d, "%s": %d}`+"\n", i, field, i)
		}
		path := dir + "/" + name + ".json"
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Into a new collection: no reads of existing documents, and one
	// lookup in the log of the keys (an application may have dropped the
	// collection without committing), whatever the size.
	wireCount(t, dir, "import", write("small", 100, "a"), "--collection", "imp")
	_, fresh := wireCount(t, dir, "import", write("small1", 100, "a"), "--collection", "imp1")
	_, names := wireCount(t, dir, "import", write("imp", 2500, "a"), "--collection", "imp2")
	if count(names, "find") != count(fresh, "find") {
		t.Errorf("importing 2500 new documents sent %d finds, 100 sent %d: want the same", count(names, "find"), count(fresh, "find"))
	}
	// Over existing documents (2 and 4 batches of up to 1000): one read
	// of pre-images, one delete and one insert of documents per batch,
	// and, once per import, the check that the documents it replaces
	// are committed (over 256 of them: the collection folded once, its
	// log chunks of up to 1,000 entries read by _id: 2 and 4).
	wireCount(t, dir, "import", write("imp4", 1500, "a"), "--collection", "imp4")
	wireCount(t, dir, "import", write("imp5", 3500, "a"), "--collection", "imp5")
	_, small := wireCount(t, dir, "import", write("imp4b", 1500, "b"), "--collection", "imp4", "--mode", "upsert")
	_, big := wireCount(t, dir, "import", write("imp5b", 3500, "b"), "--collection", "imp5", "--mode", "upsert")
	t.Logf("upsert of 1500: %s", small)
	t.Logf("upsert of 3500: %s", big)
	if d := count(big, "delete") - count(small, "delete"); d != 2 {
		t.Errorf("upsert of 3500 documents sent %d deletes, of 1500 sent %d: want 2 more (one per extra batch)", count(big, "delete"), count(small, "delete"))
	}
	if d := count(big, "find") - count(small, "find"); d != 2+2 {
		t.Errorf("upsert of 3500 documents sent %d finds, of 1500 sent %d: want 4 more (one per extra batch, one per extra log chunk)", count(big, "find"), count(small, "find"))
	}
}

// An update of many documents on FerretDB is evaluated a scratch batch of
// 100 at a time (insert, update, find, delete in the scratch database) and
// written back with one delete and one insert per 1,000: 200 more
// documents are two more batches, never a command per document. A delete
// of many is one delete whatever the size.
func TestModifyManyCommands(t *testing.T) {
	dir := wireProject(t)
	for _, n := range []int{300, 500} {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `{"_id": %d, "a": %d}`+"\n", i, i)
		}
		path := fmt.Sprintf("%s/m%d.json", dir, n)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		wireCount(t, dir, "import", path, "--collection", fmt.Sprintf("m%d", n))
	}
	small, smallNames := wireCount(t, dir, "update", "m300", "{}", `{"$inc": {"a": 1}}`, "--many")
	big, bigNames := wireCount(t, dir, "update", "m500", "{}", `{"$inc": {"a": 1}}`, "--many")
	t.Logf("update --many of 300: %d commands: %s", small, smallNames)
	t.Logf("update --many of 500: %d commands: %s", big, bigNames)
	for _, c := range []string{"insert", "find", "delete"} {
		if d := count(bigNames, c) - count(smallNames, c); d != 2 {
			t.Errorf("update --many of 500 documents sent %d %s commands, of 300 sent %d: want 2 more (one per scratch batch of 100)", count(bigNames, c), c, count(smallNames, c))
		}
	}
	// (One more update when the commit advances the timeline's head hint,
	// every 4 commits.)
	if d := count(bigNames, "update") - count(smallNames, "update"); d < 2 || d > 3 {
		t.Errorf("update --many of 500 documents sent %d update commands, of 300 sent %d: want 2 more (one per scratch batch of 100)", count(bigNames, "update"), count(smallNames, "update"))
	}
	_, smallNames = wireCount(t, dir, "delete", "m300", `{"a": {"$gte": 0}}`, "--many")
	_, bigNames = wireCount(t, dir, "delete", "m500", `{"a": {"$gte": 0}}`, "--many")
	for _, c := range []string{"find", "delete"} {
		if count(smallNames, c) != count(bigNames, c) {
			t.Errorf("delete --many of 300 documents sent %d %s commands, of 500 sent %d: want the same: %s", count(smallNames, c), c, count(bigNames, c), bigNames)
		}
	}
	if n := count(bigNames, "delete"); n != 1 {
		t.Errorf("delete --many of 500 documents sent %d deletes, want 1: %s", n, bigNames)
	}
}

// statusWorkspace makes a workspace of the embedded engine with project
// p and two collections of one document on main, and returns it with a
// runner of argon command lines in-process there, which returns their
// standard output and how many finds they sent to main's working
// database.
func statusWorkspace(t *testing.T, p string) (string, func(args ...string) (int, string)) {
	dir := t.TempDir()
	for k, v := range map[string]string{"ARGON_URI": "", "ARGON_PROJECT": "", "ARGON_AUTHOR": "tester", "HOME": dir, "XDG_CONFIG_HOME": dir} {
		t.Setenv(k, v)
	}
	db := "ar_" + p + "__main"
	run := func(args ...string) (finds int, out string) {
		t.Helper()
		var mu sync.Mutex
		mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if e.CommandName == "find" && e.DatabaseName == db {
				mu.Lock()
				finds++
				mu.Unlock()
			}
		}}
		io, _, stdout, errOut := ui.Test()
		if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: mon}, args); code != 0 {
			t.Fatalf("argon %v: exit %d: %s", args, code, errOut.String())
		}
		return finds, stdout.String()
	}
	run("init", p)
	run("insert", "c", `{"_id": 1, "n": 1}`)
	run("insert", "d", `{"_id": 1}`)
	return dir, run
}

// On the embedded engine, argon status does not read a working database
// whose files are byte for byte what an earlier scan found clean, and
// still sees any change an application makes there, also one that keeps
// every document's size, reading each collection once.
func TestStatusSkipsTheScanOfUnchangedFiles(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a server's files are not argon's to read: status scans there")
	}
	dir, run := statusWorkspace(t, "st")
	// Forget what the commands so far recorded: the first status scans.
	if err := os.Remove(dir + "/.argon/clean.json"); err != nil {
		t.Fatal(err)
	}
	first, out := run("status", "-s")
	if out != "## main (head 2)\n" {
		t.Fatalf("status -s of a clean branch printed %q", out)
	}
	second, out := run("status", "-s")
	// The first read the marker and scanned both collections; the second
	// reads the marker only.
	if out != "## main (head 2)\n" || first != second+2 {
		t.Fatalf("status read the working database %d times, then %d times (want 2 fewer), and printed %q", first, second, out)
	}
	// An application changes a document in place, the same size.
	eng, err := store.StartEngine(dir+"/.argon/data", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(eng.URI))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("ar_st__main").Collection("c").UpdateOne(context.Background(), bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 2}}}}); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(context.Background())
	eng.Stop()
	// The scan finds the change; the comparison with the log takes the
	// documents the scan read (workdb.scanSums) instead of reading both
	// collections again.
	if n, out := run("status", "-s"); out != "## main (head 2)\nM c 1\n" || n != first {
		t.Fatalf("status -s after an application's change read the working database %d times (want %d, as the first scan) and printed %q", n, first, out)
	}
}

// With argon serve, status skips its scan when the serve's write token of
// the working database is the one a scan found it clean at: no write
// reached it since. An application's write moves the token, and status
// scans and finds the change.
func TestStatusSkipsTheScanUnderServe(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("argon serve runs the embedded engine")
	}
	dir, run := statusWorkspace(t, "sv")

	ctx, cancel := context.WithCancel(context.Background())
	uri, errc := make(chan string, 1), make(chan error, 1)
	go func() {
		errc <- store.Serve(ctx, dir+"/.argon", "127.0.0.1:0", 10*time.Second, func(u string) { uri <- u })
	}()
	defer func() { cancel(); <-errc }()
	var u string
	select {
	case u = <-uri:
	case err := <-errc:
		t.Fatal(err)
	}

	const clean = "## main (head 2)\n"
	first, out := run("status", "-s")
	second, out2 := run("status", "-s")
	// The first read the marker and scanned both collections; the second
	// reads the marker only.
	if out != clean || out2 != clean || first != second+2 {
		t.Fatalf("status read the working database %d times, then %d times (want 2 fewer), and printed %q, %q", first, second, out, out2)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(u))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	if _, err := c.Database("ar_sv__main").Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 2}}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, out := run("status", "-s"); out != clean+"M c 1\n" {
			t.Fatalf("status -s after an application's change printed %q", out)
		}
	}
	run("commit", "-m", "app")
	const committed = "## main (head 3)\n"
	first, out = run("status", "-s")
	second, out2 = run("status", "-s")
	if out != committed || out2 != committed || first != second+2 {
		t.Fatalf("after the commit, status read the working database %d times, then %d times (want 2 fewer), and printed %q, %q", first, second, out, out2)
	}
}

// serveWorkspace starts argon serve on the workspace at dir until the
// test ends, and returns a client of it (an application).
func serveWorkspace(t *testing.T, dir string) *mongo.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	uc, errc := make(chan string, 1), make(chan error, 1)
	go func() {
		errc <- store.Serve(ctx, dir+"/.argon", "127.0.0.1:0", 10*time.Second, func(u string) { uc <- u })
	}()
	var uri string
	select {
	case uri = <-uc:
	case err := <-errc:
		cancel()
		t.Fatal(err)
	}
	app, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = app.Disconnect(context.Background())
		cancel()
		<-errc
	})
	return app
}

// wireDocs runs one argon command line in-process, like wireCount, and
// returns how many documents the server returned to it from collection
// coll (finds and their getMores).
func wireDocs(t *testing.T, dir, coll string, args ...string) int {
	t.Helper()
	var mu sync.Mutex
	ofColl := map[int64]bool{}
	docs := 0
	mon := &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			c, _ := e.Command.Lookup(e.CommandName).StringValueOK()
			if e.CommandName == "getMore" {
				c, _ = e.Command.Lookup("collection").StringValueOK()
			}
			mu.Lock()
			ofColl[e.RequestID] = c == coll
			mu.Unlock()
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			mu.Lock()
			defer mu.Unlock()
			if !ofColl[e.RequestID] {
				return
			}
			for _, batch := range []string{"firstBatch", "nextBatch"} {
				if a, ok := e.Reply.Lookup("cursor", batch).ArrayOK(); ok {
					vals, _ := a.Values()
					docs += len(vals)
				}
			}
		},
	}
	runMonitored(t, dir, mon, args)
	mu.Lock()
	defer mu.Unlock()
	return docs
}

// Listing branches reads the heads from one scan of the slots only while
// there are few of them (wal's headScanSlots a branch): with a longer
// history it reads each head from its hint, and the slots it reads do not
// grow with the history.
func TestBranchListReadsNoHistory(t *testing.T) {
	dir := wireProject(t)
	for i := 0; i < 9; i++ {
		wireCount(t, dir, "branch", "create", fmt.Sprintf("b%d", i))
	}
	commits := func(from, to int) {
		for i := from; i < to; i++ {
			wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": %d}`, i))
		}
	}
	short := wireDocs(t, dir, "slots", "branch")
	// main's root and 9 roots: 10 slots, all read by one scan.
	if short != 10 {
		t.Errorf("argon branch read %d slots with 10 slots in all, want 10", short)
	}
	commits(0, 100)
	long := wireDocs(t, dir, "slots", "branch")
	commits(100, 200)
	longer := wireDocs(t, dir, "slots", "branch")
	t.Logf("slots read: %d, %d, %d", short, long, longer)
	// The scan stops after 8 a branch (and 1), then each head is read
	// from its hint: two slots a branch, up to 4 more on main.
	if long > 81+2*10+4 || longer != long {
		t.Errorf("argon branch read %d slots with 110 slots in all and %d with 210: want at most %d, the same for both", long, longer, 81+2*10+4)
	}
	io, _, out, errOut := ui.Test()
	if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"branch", "--json"}); code != 0 {
		t.Fatalf("argon branch: exit %d: %s", code, errOut.String())
	}
	var heads []struct {
		Name string `json:"branch"`
		Head int64  `json:"head"`
	}
	if err := json.Unmarshal(out.Bytes(), &heads); err != nil {
		t.Fatal(err)
	}
	if len(heads) != 10 || heads[0].Name != "b0" || heads[0].Head != 0 || heads[9].Name != "main" || heads[9].Head != 200 {
		t.Errorf("argon branch --json: %s", out)
	}
}

// On the embedded engine an update of many documents is evaluated in the
// process's own scratch engine (store.Scratch), whose files are never
// synced: the working database gets no update command and no scratch
// database, only the write-back (one delete by the filter, one insert of
// the 301 documents), and the log holds the documents as the engine
// changed them.
func TestUpdateManyEvaluatesInTheScratchEngine(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a process that runs the embedded engine itself")
	}
	dir, run := statusWorkspace(t, "um")
	var b strings.Builder
	for i := 2; i <= 400; i++ {
		fmt.Fprintf(&b, `{"_id": %d, "n": %d}`+"\n", i, i)
	}
	if err := os.WriteFile(dir+"/docs.json", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("insert", "c", "--file", dir+"/docs.json")
	var mu sync.Mutex
	onC := map[string]int{}
	var drops int
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		if c, _ := e.Command.Lookup(e.CommandName).StringValueOK(); c == "c" && e.DatabaseName == "ar_um__main" {
			onC[e.CommandName]++
		}
		if e.CommandName == "dropDatabase" {
			drops++
		}
	}}
	runMonitored(t, dir, mon, []string{"update", "c", `{"n": {"$gte": 100}}`, `{"$inc": {"n": 1000}}`, "--many"})
	if onC["update"] != 0 || onC["delete"] != 1 || onC["insert"] != 1 || drops != 0 {
		t.Errorf("update --many sent %v to c and %d dropDatabase, want 0 updates, 1 delete, 1 insert and no drop", onC, drops)
	}
	if _, out := run("count", "c", `{"n": {"$gte": 1100}}`); out != "301\n" {
		t.Errorf("documents changed: %q, want 301", out)
	}
	if _, out := run("find", "c", `{"_id": 400}`); out != "{\"_id\":400,\"n\":1400}\n" {
		t.Errorf("find 400: %q", out)
	}
	if _, out := run("status", "-s"); out != "## main (head 702)\n" {
		t.Errorf("status after the update: %q", out)
	}
	if _, out := run("find", "c", `{"_id": 400}`, "--at", "401"); out != "{\"_id\":400,\"n\":400}\n" {
		t.Errorf("find 400 at 401: %q", out)
	}
	if _, out := run("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck: %q", out)
	}
}

// A write of one document named by a string _id reaches its collection
// only with {_id: value} filters: the embedded engine answers those from
// argon's _id index, and {_id: {$in: [value]}} (what the update, the
// delete and the read-back sent before) by reading every document. On a
// 20,000-document branch a one-document update took 0.8 s, two scans.
func TestPointWritesFilterByID(t *testing.T) {
	dir := wireProject(t)
	for i := 0; i < 5; i++ {
		wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": "d%d", "v": %d}`, i, i))
	}
	for _, args := range [][]string{
		{"update", "c", `{"_id": "d1"}`, `{"$set": {"v": 10}}`},
		{"update", "c", `{"_id": "d2"}`, `{"$inc": {"v": 1}}`, "--many"},
		{"replace", "c", `{"_id": "d3"}`, `{"v": 30}`},
		{"delete", "c", `{"_id": "d4"}`},
		{"update", "c", `{"_id": "d9"}`, `{"$set": {"v": 9}}`, "--upsert"},
	} {
		var mu sync.Mutex
		var filters []string
		mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if !strings.HasPrefix(e.DatabaseName, "ar") || e.DatabaseName == "argon_wal" {
				return
			}
			first := e.Command.Index(0)
			if coll, ok := first.Value().StringValueOK(); !ok || coll != "c" {
				return
			}
			var fs []bson.Raw
			switch e.CommandName {
			case "find":
				fs = append(fs, e.Command.Lookup("filter").Document())
			case "update", "delete":
				key := e.CommandName + "s"
				vals, _ := e.Command.Lookup(key).Array().Values()
				for _, v := range vals {
					fs = append(fs, v.Document().Lookup("q").Document())
				}
			default:
				return
			}
			mu.Lock()
			for _, f := range fs {
				filters = append(filters, e.CommandName+" "+f.String())
			}
			mu.Unlock()
		}}
		runMonitored(t, dir, mon, args)
		if len(filters) == 0 {
			t.Errorf("argon %v: no command on c", args)
		}
		for _, f := range filters {
			if !regexp.MustCompile(`^\w+ \{"_id": "d\d"\}$`).MatchString(f) {
				t.Errorf("argon %v sent %s, want only {_id: value} filters", args, f)
			}
		}
	}
}

// A write to a branch whose working database was known clean leaves it
// known clean: the next status reads the marker only, on the embedded
// engine (the files are recorded as the engine leaves them at its close)
// and through argon serve (the serve's token is recorded when it moved by
// the command's own writes alone). An application's write between two
// commands is still found.
func TestWritesKeepTheCleanRecord(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a server's files are not argon's to read: status scans there")
	}
	for _, served := range []bool{false, true} {
		t.Run(fmt.Sprintf("served=%v", served), func(t *testing.T) {
			p := "kc"
			if served {
				p = "ks"
			}
			dir, run := statusWorkspace(t, p)
			var app *mongo.Client
			if served {
				app = serveWorkspace(t, dir)
			}
			// Forget what the commands so far recorded: the first status
			// scans.
			if err := os.Remove(dir + "/.argon/clean.json"); err != nil {
				t.Fatal(err)
			}
			scanned, _ := run("status", "-s")
			markerOnly, _ := run("status", "-s")
			if scanned != markerOnly+2 {
				t.Fatalf("status read the working database %d times, then %d", scanned, markerOnly)
			}
			head := 2
			batch := filepath.Join(t.TempDir(), "dup.ndjson")
			if err := os.WriteFile(batch, []byte("{\"_id\": 5}\n{\"_id\": 6}\n{\"_id\": 1}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, w := range []struct {
				args  []string
				lsns  int
				fails bool
			}{
				{[]string{"update", "c", `{"_id": 1}`, `{"$set": {"m": 1}}`}, 1, false},
				{[]string{"insert", "c", `{"_id": 2}`}, 1, false},
				{[]string{"replace", "c", `{"_id": 2}`, `{"r": 1}`}, 1, false},
				{[]string{"delete", "d", `{"_id": 1}`}, 1, false},
				{[]string{"update", "c", `{}`, `{"$inc": {"k": 1}}`, "--many"}, 2, false},
				// Writes that change nothing, and failed writes (taken
				// out of the database again) leave it known clean too.
				{[]string{"update", "c", `{"_id": 99}`, `{"$set": {"m": 1}}`}, 0, false},
				{[]string{"delete", "c", `{"k": 99}`, "--many"}, 0, false},
				{[]string{"insert", "c", `{"_id": 1}`}, 0, true},
				{[]string{"insert", "c", "--file", batch}, 0, true},
			} {
				args := w.args
				if w.fails {
					io, _, _, _ := ui.Test()
					if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args); code == 0 {
						t.Fatalf("argon %v succeeded", args)
					}
				} else {
					run(args...)
				}
				head += w.lsns
				n, out := run("status", "-s")
				if want := fmt.Sprintf("## main (head %d)\n", head); n != markerOnly || out != want {
					t.Errorf("status after argon %v read the working database %d times (want %d) and printed %q (want %q)", args, n, markerOnly, out, want)
				}
			}
			// The record was right: a full scan finds the database clean,
			// and nothing of the failed batch is in it.
			if err := os.Remove(dir + "/.argon/clean.json"); err != nil {
				t.Fatal(err)
			}
			if n, out := run("status", "-s"); n != scanned || out != fmt.Sprintf("## main (head %d)\n", head) {
				t.Errorf("a full status read the working database %d times (want %d) and printed %q", n, scanned, out)
			}
			if _, out := run("find", "c", `{"_id": {"$in": [5, 6]}}`); out != "" {
				t.Errorf("the failed batch left %q", out)
			}
			if !served {
				return
			}
			// An application's write, then a CLI write: the record is not
			// carried over, and status finds the application's change.
			if _, err := app.Database("ar_ks__main").Collection("d").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 9}}); err != nil {
				t.Fatal(err)
			}
			run("insert", "c", `{"_id": 3}`)
			head++
			if _, out := run("status", "-s"); out != fmt.Sprintf("## main (head %d)\nA d 9\n", head) {
				t.Errorf("status after an application's insert and a CLI insert printed %q", out)
			}
		})
	}
}

// argon log reads each slot it shows once: the walk starts from the head
// the command found, not from a second search of it.
func TestLogReadsEachSlotOnce(t *testing.T) {
	dir := wireProject(t)
	for i := 0; i < 10; i++ {
		wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": %d}`, i))
	}
	for _, args := range [][]string{{"log", "-n", "5"}, {"log"}, {"log", "--oneline", "-n", "3"}} {
		var mu sync.Mutex
		reads := map[string]int{}
		mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if e.CommandName != "find" {
				return
			}
			coll, _ := e.Command.Lookup("find").StringValueOK()
			id, ok := e.Command.Lookup("filter", "_id").StringValueOK()
			if !ok || (coll != "slots" && coll != "timelines") {
				return
			}
			mu.Lock()
			reads[coll+" "+id]++
			mu.Unlock()
		}}
		runMonitored(t, dir, mon, args)
		for k, n := range reads {
			limit := 1
			if strings.HasPrefix(k, "timelines ") {
				limit = 2 // the head search, then the ancestry
			}
			if n > limit {
				t.Errorf("argon %v read %s %d times", args, k, n)
			}
		}
	}
}

// A working database argon builds whole from the log (a new branch's, on
// checkout) is recorded clean as built: the first status on it reads the
// marker only, on the embedded engine and through argon serve.
func TestBuiltDatabasesAreKnownClean(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a server's files are not argon's to read: status scans there")
	}
	for _, served := range []bool{false, true} {
		t.Run(fmt.Sprintf("served=%v", served), func(t *testing.T) {
			p := "bc"
			if served {
				p = "bs"
			}
			dir, _ := statusWorkspace(t, p)
			if served {
				serveWorkspace(t, dir)
			}
			runMonitored(t, dir, nil, []string{"checkout", "-b", "feat"})
			db := "ar_" + p + "__feat"
			var mu sync.Mutex
			var reads []string
			mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
				if e.CommandName == "find" && e.DatabaseName == db {
					coll, _ := e.Command.Lookup("find").StringValueOK()
					mu.Lock()
					reads = append(reads, coll)
					mu.Unlock()
				}
			}}
			runMonitored(t, dir, mon, []string{"status", "-s"})
			for _, coll := range reads {
				if coll != "_argon" {
					t.Errorf("the first status on the new branch read %v of its working database, want its marker only", reads)
					break
				}
			}
		})
	}
}

// Through argon serve, a one-document insert sends one command more than
// a find by _id (issue 6): the hold of the working database's writes
// rides on the lease's insert, and the marker's update, with the hold's
// release, on the slot's insert, as a follow-up the serve passes on once
// the slot is in (store.Carrier). They carry the write tokens the clean
// record needs, so it asks for none, and the next status still needs no
// scan.
func TestWireServedInsert(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("argon serve runs the embedded engine")
	}
	dir, run := statusWorkspace(t, "wsi")
	serveWorkspace(t, dir)
	run("status", "-s") // a clean record
	unscanned, _ := run("status", "-s")
	sent := func(args ...string) (names []string, carried []string) {
		var mu sync.Mutex
		mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			mu.Lock()
			defer mu.Unlock()
			names = append(names, e.CommandName)
			if v, err := e.Command.LookupErr("argonHoldOn"); err == nil {
				db, _ := v.Document().Lookup("db").StringValueOK()
				carried = append(carried, e.CommandName+" holds "+db)
			}
			if v, err := e.Command.LookupErr("argonThen"); err == nil {
				then := v.Document()
				first, _ := then.Index(0).KeyErr()
				db, _ := then.Lookup("$db").StringValueOK()
				_, rerr := then.LookupErr("argonReleaseWrites")
				carried = append(carried, fmt.Sprintf("%s then %s %s releasing %v", e.CommandName, first, db, rerr == nil))
			}
		}}
		runMonitored(t, dir, mon, args)
		return names, carried
	}
	finds, _ := sent("find", "c", `{"_id": 1}`)
	names, carried := sent("insert", "c", `{"_id": 50}`)
	// branch and project (its log format), marker, lease (and hold),
	// insert, slot (and the marker's update, and the release),
	// endSessions
	want := "find find find insert insert insert endSessions"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("a served insert sent %s, want %s", got, want)
	}
	if got, want := strings.Join(carried, "; "), "insert holds ar_wsi__main; insert then update ar_wsi__main releasing true"; got != want {
		t.Errorf("a served insert carried %q, want %q", got, want)
	}
	// A find by _id sends branch and project, marker, find, lease
	// probe, endSessions.
	if len(finds) != 6 || len(names) > len(finds)+1 {
		t.Errorf("a served insert sent %d commands, a served find by _id %d (%v): want 7 and 6", len(names), len(finds), finds)
	}
	if finds, _ := run("status", "-s"); finds != unscanned {
		t.Errorf("status after a served insert read the working database %d times, want %d (no scan)", finds, unscanned)
	}
	if _, out := run("find", "c", `{"_id": 50}`); out != "{\"_id\":50}\n" {
		t.Errorf("find after the served insert: %q", out)
	}
}

// A reset and a revert send about as many commands after a long history as
// after a short one: a reset forks a timeline at REF and writes the
// documents that differ, a revert diffs one commit; neither walks the
// history. (Finding a head from its hint, advanced every 4 slots, may
// take up to 4 reads more or fewer.)
func TestWireResetAndRevertAreFlatInHistory(t *testing.T) {
	dir := wireProject(t)
	commits := 0
	grow := func(n int) {
		for i := 0; i < n; i++ {
			wireCount(t, dir, "insert", "c", fmt.Sprintf(`{"_id": "d%d", "v": %d}`, commits, commits))
			commits++
		}
	}
	measure := func() (reset, back, revert int) {
		reset, names := wireCount(t, dir, "reset", "HEAD~1")
		t.Logf("reset after %d commits: %d commands: %s", commits, reset, names)
		back, _ = wireCount(t, dir, "reset", "main@{1}")
		revert, names = wireCount(t, dir, "revert", "HEAD")
		t.Logf("revert after %d commits: %d commands: %s", commits, revert, names)
		wireCount(t, dir, "reset", "HEAD~1") // the revert taken back
		return reset, back, revert
	}
	grow(5)
	r1, b1, v1 := measure()
	grow(40)
	r2, b2, v2 := measure()
	for _, c := range []struct {
		what        string
		short, long int
	}{{"reset HEAD~1", r1, r2}, {"reset main@{1}", b1, b2}, {"revert HEAD", v1, v2}} {
		if d := c.long - c.short; d < -4 || d > 4 {
			t.Errorf("argon %s sent %d commands after 5 commits and %d after 45: it should not depend on the history", c.what, c.short, c.long)
		}
	}
}

// Reads of the log's stored entries and of images ask the server for small
// batches: the embedded engine builds each reply whole in memory, and a
// default first batch of a large commit's chunks or of an image was tens
// of megabytes at once (a 100,000-document checkout peaked at 342 MB;
// BENCHMARKS, seventeenth session). Every find and getMore of those
// collections names a batch size, at most 16 documents.
func TestWireLogReadsAskForSmallBatches(t *testing.T) {
	dir, run := statusWorkspace(t, "bt")
	var lines strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&lines, "{\"_id\": %d, \"v\": %d}\n", 100+i, i)
	}
	batch := filepath.Join(t.TempDir(), "docs.ndjson")
	if err := os.WriteFile(batch, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("insert", "c", "--file", batch)                      // spilled: more than 64 entries
	run("update", "c", "{}", `{"$inc": {"v": 1}}`, "--many") // spilled too
	run("snapshot")
	var mu sync.Mutex
	var checked []string
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "find" && e.CommandName != "getMore" {
			return
		}
		coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
		if e.CommandName == "getMore" {
			coll, _ = e.Command.Lookup("collection").StringValueOK()
		}
		if coll != "entries" && !strings.HasPrefix(coll, "image_") {
			return
		}
		if _, single := e.Command.Lookup("filter", "_id").StringValueOK(); single {
			return // a point read
		}
		n, ok := e.Command.Lookup("batchSize").AsInt64OK()
		mu.Lock()
		defer mu.Unlock()
		checked = append(checked, e.CommandName+" "+coll)
		if !ok || n < 1 || n > 16 {
			t.Errorf("%s of %s asked for batch size %v: want 1 to 16", e.CommandName, coll, e.Command.Lookup("batchSize"))
		}
	}}
	runMonitored(t, dir, mon, []string{"checkout", "-b", "whole"}) // from the image
	// The entries: a log of the second spilled commit reads the rest of
	// the timeline's with one query; fsck reads them all.
	runMonitored(t, dir, mon, []string{"log", "--entries"})
	runMonitored(t, dir, mon, []string{"fsck"})
	// The image whole: a snapshot again at the same head loads the one
	// there to see that it is whole (fsck streams the state since the
	// twenty-third session, and no longer reads it this way).
	runMonitored(t, dir, mon, []string{"snapshot"})
	var sawEntries, sawImage bool
	for _, c := range checked {
		sawEntries = sawEntries || strings.HasSuffix(c, " entries")
		sawImage = sawImage || strings.Contains(c, " image_")
	}
	if !sawEntries || !sawImage {
		t.Fatalf("checked %v: want reads of both the entries and an image", checked)
	}
}

// On the embedded engine a merge's write (and a reset's, a revert's)
// reads and deletes documents with string or ObjectId _ids by _id, the
// one lookup that engine answers from an index: never with {_id: {$in:
// [...]}}, which reads the whole collection and compares every document
// with every id (a fast-forward of 1,112 changed documents into 100,000
// took 15.8 s, 8.6 s by _id; BENCHMARKS, seventeenth session).
func TestWireApplyWritesByID(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("on MongoDB a $in of _ids uses the _id index")
	}
	dir, run := statusWorkspace(t, "ab")
	for i := 0; i < 5; i++ {
		run("insert", "s", fmt.Sprintf(`{"_id": "k%d", "v": 0}`, i))
	}
	run("branch", "create", "f")
	run("checkout", "f")
	run("update", "s", "{}", `{"$inc": {"v": 1}}`, "--many")
	run("delete", "s", `{"_id": "k4"}`)
	run("checkout", "main")
	var mu sync.Mutex
	var seen []string
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.DatabaseName != "ar_ab__main" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch e.CommandName {
		case "find", "delete":
			seen = append(seen, e.CommandName+" "+e.Command.Lookup(e.CommandName).StringValue())
			if strings.Contains(e.Command.String(), `"$in"`) {
				t.Errorf("the merge sent %s", e.Command)
			}
		}
	}}
	runMonitored(t, dir, mon, []string{"merge", "f"}) // a fast-forward
	// The pre-images of the 5 documents, by _id; then the 5 old
	// versions out with one delete command.
	finds, deletes := 0, 0
	for _, c := range seen {
		switch c {
		case "find s":
			finds++
		case "delete s":
			deletes++
		}
	}
	if finds < 5 || deletes != 1 {
		t.Errorf("the merge sent %v to the working database: want at least 5 finds of s by _id and 1 delete", seen)
	}
	if _, out := run("find", "s", "{}"); out != "{\"_id\":\"k0\",\"v\":1}\n{\"_id\":\"k1\",\"v\":1}\n{\"_id\":\"k2\",\"v\":1}\n{\"_id\":\"k3\",\"v\":1}\n" {
		t.Errorf("after the merge main holds %q", out)
	}
}

// An update of many documents with string _ids on the embedded engine
// deletes the old versions by _id, not by its filter: a delete by filter
// reads the whole collection again there (3.2 s of a 7.2 s update of
// 1,112 documents among 100,000; BENCHMARKS, seventeenth session).
func TestWireUpdateManyDeletesByID(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine's writes")
	}
	dir, run := statusWorkspace(t, "um")
	var lines strings.Builder
	for i := 0; i < 300; i++ { // more than workdb's fewIDs
		fmt.Fprintf(&lines, "{\"_id\": \"k%03d\", \"v\": %d}\n", i, i)
	}
	batch := filepath.Join(t.TempDir(), "docs.ndjson")
	if err := os.WriteFile(batch, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("insert", "s", "--file", batch)
	var mu sync.Mutex
	deletes, statements := 0, 0
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.DatabaseName != "ar_um__main" || e.CommandName != "delete" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		deletes++
		vals, _ := e.Command.Lookup("deletes").Array().Values()
		for _, v := range vals {
			statements++
			q := v.Document().Lookup("q").Document()
			if elems, _ := q.Elements(); len(elems) != 1 || elems[0].Key() != "_id" || elems[0].Value().Type != bson.TypeString {
				t.Errorf("the update deleted by %s: want {_id: string}", q)
			}
		}
	}}
	runMonitored(t, dir, mon, []string{"update", "s", `{"v": {"$gte": 0}}`, `{"$inc": {"n": 1}}`, "--many"})
	if deletes != 1 || statements != 300 {
		t.Errorf("the update sent %d delete commands with %d statements: want 1 with 300", deletes, statements)
	}
	if _, out := run("count", "s", `{"n": 1}`); strings.TrimSpace(out) != "300" {
		t.Errorf("after the update %q documents have n 1, want 300", out)
	}
}

// Through argon serve an application cannot write argon's log or a working
// database's marker: a new-user run deleted a slot through the serve and
// left the project unreadable, and a test harness that drops every
// database it lists would drop the history. argon's own commands through
// the same serve still write both, and the application's own collections
// take its writes as before.
func TestServeKeepsApplicationsOutOfArgonsDatabases(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("argon serve runs the embedded engine")
	}
	dir, run := statusWorkspace(t, "ka")
	app := serveWorkspace(t, dir)
	ctx := context.Background()
	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "applications must not write") {
			t.Errorf("%s: %v, want argon serve's refusal", what, err)
		}
	}
	meta := app.Database("argon_wal")
	_, err := meta.Collection("slots").DeleteMany(ctx, bson.D{})
	refused("delete of the log's slots", err)
	_, err = meta.Collection("x").InsertOne(ctx, bson.D{{Key: "a", Value: 1}})
	refused("insert into the metadata database", err)
	refused("drop of the metadata database", meta.Drop(ctx))
	_, err = app.Database("ar_ka__main").Collection("_argon").DeleteMany(ctx, bson.D{})
	refused("delete of the working database's marker", err)
	// A rename moves a collection by its namespaces, named in the
	// command's arguments: neither the marker out, nor another collection
	// in its place, nor anything into or out of the log (review31).
	rename := func(from, to string) error {
		return app.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: from}, {Key: "to", Value: to}}).Err()
	}
	refused("rename of the marker's collection", rename("ar_ka__main._argon", "ar_ka__main.zz"))
	refused("rename of a collection into the marker's place", rename("ar_ka__main.d", "ar_ka__main._argon"))
	refused("rename of the log's slots", rename("argon_wal.slots", "ar_ka__main.slots"))
	refused("rename into the metadata database", rename("ar_ka__main.d", "argon_wal.d"))
	// Reads are the application's to make; its own collections its to
	// write.
	if n, err := meta.Collection("slots").CountDocuments(ctx, bson.D{}); err != nil || n == 0 {
		t.Errorf("reading the log's slots: %d, %v", n, err)
	}
	if _, err := app.Database("ar_ka__main").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 7}}); err != nil {
		t.Fatalf("the application's insert into its branch: %v", err)
	}
	// argon's commands through the serve write the log and the marker.
	run("commit", "-m", "the app's document")
	run("insert", "c", `{"_id": 8}`)
	if _, out := run("status", "-s"); out != "## main (head 4)\n" {
		t.Errorf("status -s after the commit and the insert printed %q", out)
	}
	if _, out := run("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck printed %q", out)
	}
	// A metadata database is known by the log's own index, made by the
	// init of its first project (review39: any database argon wrote a
	// collection named slots or leases in counted, and a branch holding
	// such collections refused its applications' writes). Here a
	// project of another metadata database, made through the serve while
	// it runs, from another folder.
	run("insert", "slots", `{"_id": "mon-9am"}`)
	run("insert", "leases", `{"_id": "flat-3"}`)
	for _, coll := range []string{"slots", "leases", "c"} {
		if _, err := app.Database("ar_ka__main").Collection(coll).InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
			t.Errorf("the application's insert into its branch's %s: %v", coll, err)
		}
	}
	si := store.ReadServeInfo(filepath.Join(dir, ".argon"))
	if si == nil {
		t.Fatal("no serve.json")
	}
	io, _, _, errOut := ui.Test()
	if code := cmd.Run(ctx, &cmd.Factory{IO: io, Dir: t.TempDir()}, []string{"init", "q", "--uri", si.URI, "--db", "other_wal"}); code != 0 {
		t.Fatalf("argon init q --db other_wal through the serve: exit %d: %s", code, errOut.String())
	}
	_, err = app.Database("other_wal").Collection("slots").DeleteMany(ctx, bson.D{})
	refused("delete of the slots of a metadata database made through the serve", err)
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// review10Fail runs one argon command line in-process in dir and fails
// the test when it succeeds; it returns its error output.
func review10Fail(t *testing.T, dir string, args ...string) string {
	t.Helper()
	io, _, _, errOut := ui.Test()
	if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args); code == 0 {
		t.Fatalf("argon %v succeeded", args)
	}
	return errOut.String()
}

// review10Truthful checks that the clean record tells the truth: status
// as it runs (trusting the record) prints what a full scan prints once
// the record is gone. It returns whether the record was trusted (status
// read the working database no more than the marker-only count).
func review10Truthful(t *testing.T, dir string, run func(args ...string) (int, string), markerOnly int, after string) bool {
	t.Helper()
	n, trusted := run("status", "-s")
	if err := os.Remove(filepath.Join(dir, ".argon", "clean.json")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	_, full := run("status", "-s")
	if trusted != full {
		t.Errorf("after %s: status with the clean record printed %q, a full scan %q", after, trusted, full)
	}
	// Leave the database known clean for the next step (the full scan
	// just recorded it, when it found it clean).
	if _, again := run("status", "-s"); again != full {
		t.Errorf("after %s: status printed %q, then %q", after, full, again)
	}
	return n <= markerOnly
}

// Failed writes of every kind the CLI can make, each on a database known
// clean, leave a clean record only when the database holds exactly the
// committed state: the status that trusts the record prints what a full
// scan prints (embedded engine and through argon serve).
func TestReview10FailedWritesRecordOnlyTheTruth(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a server's files are not argon's to read")
	}
	for _, served := range []bool{false, true} {
		t.Run(fmt.Sprintf("served=%v", served), func(t *testing.T) {
			p := "rta"
			if served {
				p = "rtb"
			}
			dir, run := statusWorkspace(t, p)
			run("insert", "c", `{"_id": 2, "u": 1, "n": 2}`)
			run("insert", "c", `{"_id": 3, "u": 2, "n": "str"}`)
			run("insert", "c", `{"_id": 4, "n": 4, "a": 1}`)
			run("index", "create", "c", `{"u": 1}`, "--unique")
			run("insert", "c", `[{"_id": "q1", "q": 1}, {"_id": "q2", "q": 1}]`)
			if served {
				serveWorkspace(t, dir)
			}
			write := func(name, body string) string {
				f := filepath.Join(t.TempDir(), name)
				if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				return f
			}
			many := func(from, to int, dup int) string {
				var b strings.Builder
				for i := from; i < to; i++ {
					if i == dup {
						b.WriteString(`{"_id": 1}` + "\n")
						continue
					}
					fmt.Fprintf(&b, `{"_id": %d, "k": %d}`+"\n", i, i)
				}
				return b.String()
			}
			// Known clean to begin with.
			if err := os.Remove(filepath.Join(dir, ".argon", "clean.json")); err != nil {
				t.Fatal(err)
			}
			scanned, _ := run("status", "-s")
			markerOnly, _ := run("status", "-s")
			if scanned <= markerOnly {
				t.Fatalf("status read the working database %d times, then %d", scanned, markerOnly)
			}
			kept := 0
			for _, args := range [][]string{
				{"insert", "c", `{"_id": 1}`},
				{"insert", "c", "--file", write("a.ndjson", "{\"_id\": 5}\n{\"_id\": 6}\n{\"_id\": 1}\n{\"_id\": 7}\n")},
				// Past the engine's own insert batch (100): it goes on
				// inserting after the failing document.
				{"insert", "c", "--file", write("b.ndjson", many(100, 350, 160))},
				// Past argon's batch (1,000): the first batch is in.
				{"insert", "c", "--file", write("c.ndjson", many(1000, 2600, 2300))},
				// A unique index other than _id's.
				{"insert", "c", "--file", write("d.ndjson", "{\"_id\": 8, \"u\": 50}\n{\"_id\": 9, \"u\": 1}\n{\"_id\": 10, \"u\": 51}\n")},
				// A document the engine refuses (nested arrays).
				{"insert", "c", "--file", write("e.ndjson", "{\"_id\": 11}\n{\"_id\": 12, \"x\": [[1]]}\n{\"_id\": 13}\n")},
				{"update", "c", `{}`, `{"$inc": {"n": 1}}`, "--many"},
				{"update", "c", `{"_id": {"$in": [2, 3]}}`, `{"$set": {"u": 7}}`, "--many"},
				{"update", "c", `{"_id": 2}`, `{"$set": {"u": 2}}`},
				{"update", "c", `{"_id": 4}`, `{"$set": {"a.b": 1}}`},
				{"replace", "c", `{"_id": 2}`, `{"u": 2}`},
				{"replace", "c", `{"_id": 2}`, `{"_id": 99}`},
				{"update", "c", `{"_id": 50}`, `{"$set": {"u": 1}}`, "--upsert"},
				{"update", "c", `{"zz": 1}`, `{"$set": {"u": 1}}`, "--upsert"},
				{"import", write("f.ndjson", "{\"_id\": 20}\n{\"_id\": 1}\n"), "--collection", "c"},
				{"import", write("g.ndjson", many(3000, 4600, 4500)), "--collection", "c"},
				{"index", "create", "c", `{"q": 1}`, "--unique"},
				{"index", "create", "c", `{"u": -1}`, "--name", "u_1"},
			} {
				out := review10Fail(t, dir, args...)
				t.Logf("argon %v: %s", args[:min(len(args), 4)], strings.TrimSpace(out))
				if review10Truthful(t, dir, run, markerOnly, fmt.Sprint(args[:min(len(args), 4)])) {
					kept++
				}
			}
			t.Logf("the record was trusted after %d failed writes", kept)
			if _, out := run("find", "c", `{"_id": {"$gte": 5}}`); out != "" {
				t.Errorf("the failed writes left %q", out)
			}
		})
	}
}

// Through argon serve, an application writes to the working database the
// moment a failed CLI write lets go of its hold of the database's writes:
// after the failed write's release (nothing to repair), or between the
// failed write's release and its settle, or after the settle's release.
// Each time the clean record must not hide the application's document:
// status finds it.
func TestReview10ServedFailedWriteRecordsNoApplicationWrite(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only: the CLI and the application are clients of argon serve")
	}
	dir, run := statusWorkspace(t, "rsw")
	app := serveWorkspace(t, dir)
	batch := filepath.Join(t.TempDir(), "dup.ndjson")
	if err := os.WriteFile(batch, []byte("{\"_id\": 5}\n{\"_id\": 6}\n{\"_id\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	appDocs := app.Database("ar_rsw__main").Collection("d")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"nothing changed", []string{"insert", "c", `{"_id": 1}`}},
		{"settled", []string{"insert", "c", "--file", batch}},
		{"settled update", []string{"update", "c", `{}`, `{"$set": {"n": {"$x": 1}}}`, "--many"}},
	} {
		for release := 1; release <= 3; release++ {
			t.Run(fmt.Sprintf("%s/after release %d", tc.name, release), func(t *testing.T) {
				// Known clean to begin with.
				_ = os.Remove(filepath.Join(dir, ".argon", "clean.json"))
				if _, out := run("status", "-s"); strings.Contains(out, "\n") && strings.Count(out, "\n") > 1 {
					t.Fatalf("status before: %q", out)
				}
				id := fmt.Sprintf("app-%s-%d", strings.ReplaceAll(tc.name, " ", "-"), release)
				var mu sync.Mutex
				releases := map[int64]bool{}
				seen, wrote := 0, false
				mon := &event.CommandMonitor{
					Started: func(_ context.Context, e *event.CommandStartedEvent) {
						if e.CommandName == "argonHoldWrites" && e.DatabaseName == "ar_rsw__main" {
							if r, ok := e.Command.Lookup("release").BooleanOK(); ok && r {
								mu.Lock()
								releases[e.RequestID] = true
								mu.Unlock()
							}
						}
					},
					Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
						mu.Lock()
						hit := releases[e.RequestID]
						if hit {
							seen++
							hit = seen == release
						}
						mu.Unlock()
						if !hit {
							return
						}
						// The hold is let go: the application's write
						// passes now, before the CLI goes on.
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						defer cancel()
						if _, err := appDocs.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
							t.Errorf("the application's insert: %v", err)
							return
						}
						mu.Lock()
						wrote = true
						mu.Unlock()
					},
				}
				io, _, _, errOut := ui.Test()
				if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: mon}, tc.args); code == 0 {
					t.Fatalf("argon %v succeeded", tc.args)
				}
				t.Logf("argon %v: %s (%d releases)", tc.args, strings.TrimSpace(errOut.String()), seen)
				mu.Lock()
				w := wrote
				mu.Unlock()
				if !w {
					// Fewer releases than asked: write now, after the
					// command, for a like check.
					if _, err := appDocs.InsertOne(context.Background(), bson.D{{Key: "_id", Value: id}}); err != nil {
						t.Fatal(err)
					}
				}
				_, out := run("status", "-s")
				if !strings.Contains(out, "A d "+`"`+id+`"`) && !strings.Contains(out, "A d "+id) {
					t.Errorf("status after the application's insert of %s printed %q", id, out)
				}
				if _, err := appDocs.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: id}}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// Through argon serve, CLI write A fails after changing the working
// database (a batch whose third document is a duplicate) on a database
// known clean; CLI write B, started the moment A's dirty void is in,
// takes the branch before A's settle, repairs A's documents and commits.
// A's settle then finds the database at B's commit: its writes and B's
// moved the serve's token, so A must not record it clean unless it is;
// and whatever is recorded must be true.
func TestReview10ServedSettleAfterAnotherWriterRecordsTheTruth(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("embedded engine only: both commands are clients of argon serve")
	}
	t.Setenv("ARGON_BUSY_TIMEOUT", "20s")
	dir, run := statusWorkspace(t, "rsb")
	app := serveWorkspace(t, dir)
	batch := filepath.Join(t.TempDir(), "dup.ndjson")
	if err := os.WriteFile(batch, []byte("{\"_id\": 5}\n{\"_id\": 6}\n{\"_id\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, ".argon", "clean.json"))
	scanned, _ := run("status", "-s")
	markerOnly, _ := run("status", "-s")
	if scanned <= markerOnly {
		t.Fatalf("status read the working database %d times, then %d", scanned, markerOnly)
	}
	bHolding := make(chan struct{})
	var bOnce sync.Once
	monB := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "argonHoldWrites" {
			bOnce.Do(func() { close(bHolding) })
		}
	}}
	bDone := make(chan int, 1)
	var mu sync.Mutex
	voidReq := int64(-1)
	var voidOnce sync.Once
	monA := &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if e.CommandName == "insert" && e.Command.Lookup("insert").StringValue() == "slots" &&
				strings.Contains(e.Command.String(), `"dirty": true`) {
				mu.Lock()
				voidReq = e.RequestID
				mu.Unlock()
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			mu.Lock()
			hit := e.RequestID == voidReq
			mu.Unlock()
			if !hit {
				return
			}
			voidOnce.Do(func() {
				go func() {
					io, _, _, _ := ui.Test()
					bDone <- cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: monB},
						[]string{"insert", "d", `{"_id": 9}`})
				}()
				select {
				case <-bHolding:
				case <-time.After(30 * time.Second):
					t.Error("B never asked for the hold")
				}
			})
		},
	}
	io, _, _, errOut := ui.Test()
	if code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir, Monitor: monA}, []string{"insert", "c", "--file", batch}); code == 0 {
		t.Fatal("A's insert succeeded")
	}
	t.Logf("A: %s", strings.TrimSpace(errOut.String()))
	select {
	case code := <-bDone:
		if code != 0 {
			t.Fatalf("B's insert: exit %d", code)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("B never ended")
	}
	// An application's write after both: the record, whatever it is, must
	// not hide it, and must not have hidden anything before it.
	review10Truthful(t, dir, run, markerOnly, "A's failed write and B's insert")
	if _, out := run("find", "c", `{"_id": {"$in": [5, 6]}}`); out != "" {
		t.Errorf("A's failed batch left %q", out)
	}
	if _, err := app.Database("ar_rsb__main").Collection("d").InsertOne(context.Background(), bson.D{{Key: "_id", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	if _, out := run("status", "-s"); !strings.Contains(out, `A d "app"`) && !strings.Contains(out, "A d app") {
		t.Errorf("status after the application's insert printed %q", out)
	}
}

// Failed writes too large to repair key by key: an update --many of more
// documents than a repair puts back one by one (the collection is rebuilt
// from the log), and an insert of more documents than a void names (the
// settle rebuilds the working database). The record they leave is true.
func TestReview10LargeFailedWritesRecordOnlyTheTruth(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a server's files are not argon's to read")
	}
	if testing.Short() {
		t.Skip("tens of thousands of documents")
	}
	dir, run := statusWorkspace(t, "rlg")
	var b strings.Builder
	for i := 100; i < 5200; i++ {
		fmt.Fprintf(&b, `{"_id": %d, "k": %d}`+"\n", i, i)
	}
	b.WriteString(`{"_id": "s", "k": "str"}` + "\n")
	docs := filepath.Join(t.TempDir(), "docs.ndjson")
	if err := os.WriteFile(docs, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("insert", "c", "--file", docs, "-q")
	b.Reset()
	for i := 10000; i < 30500; i++ {
		fmt.Fprintf(&b, `{"_id": %d}`+"\n", i)
	}
	b.WriteString(`{"_id": 1}` + "\n")
	big := filepath.Join(t.TempDir(), "big.ndjson")
	if err := os.WriteFile(big, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, ".argon", "clean.json"))
	scanned, _ := run("status", "-s")
	markerOnly, _ := run("status", "-s")
	if scanned <= markerOnly {
		t.Fatalf("status read the working database %d times, then %d", scanned, markerOnly)
	}
	for _, args := range [][]string{
		{"update", "c", `{"k": {"$exists": true}}`, `{"$inc": {"k": 1}}`, "--many"},
		{"insert", "c", "--file", big, "-q"},
	} {
		out := review10Fail(t, dir, args...)
		t.Logf("argon %v: %s", args[:3], strings.TrimSpace(out))
		trusted := review10Truthful(t, dir, run, markerOnly, fmt.Sprint(args[:3]))
		t.Logf("record trusted: %v", trusted)
	}
	if _, out := run("count", "c", `{"_id": {"$gte": 10000}}`); strings.TrimSpace(out) != "0" {
		t.Errorf("the failed insert left %s documents", strings.TrimSpace(out))
	}
}

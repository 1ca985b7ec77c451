package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// review4Writes are the commands that change a database.
var review4Writes = map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true,
	"createIndexes": true, "dropIndexes": true, "drop": true, "dropDatabase": true, "create": true}

// TestReview4KillHelper is not a test: review4Kill runs this test binary
// as an argon process that SIGKILLs itself right after the server
// answered its REVIEW4_KILL_N-th write to database REVIEW4_DB.
func TestReview4KillHelper(t *testing.T) {
	if os.Getenv("REVIEW4_HELPER") == "" {
		return // run only as review4Kill's helper process (the os/exec idiom)
	}
	n, _ := strconv.Atoi(os.Getenv("REVIEW4_KILL_N"))
	db := os.Getenv("REVIEW4_DB")
	args := strings.Split(os.Getenv("REVIEW4_ARGS"), "\x1f")
	writes := 0
	mon := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		if e.DatabaseName != db || !review4Writes[e.CommandName] {
			return
		}
		writes++
		if writes == n {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}}
	io, _, out, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: os.Getenv("REVIEW4_DIR"), Monitor: mon}, args)
	fmt.Printf("REVIEW4 writes=%d code=%d\n%s%s\n", writes, code, out.String(), errOut.String())
	os.Exit(0)
}

// review4Kill runs argon args in dir, killed right after its n-th write
// to db (0: never). It returns how many writes it made when not killed.
func review4Kill(t *testing.T, dir string, env []string, db string, n int, args ...string) (writes int, killed bool, out string) {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^TestReview4KillHelper$", "-test.count=1")
	c.Env = append(append([]string(nil), env...), "REVIEW4_HELPER=1", "REVIEW4_KILL_N="+strconv.Itoa(n),
		"REVIEW4_DB="+db, "REVIEW4_DIR="+dir, "REVIEW4_ARGS="+strings.Join(args, "\x1f"))
	c.Dir = dir
	var o bytes.Buffer
	c.Stdout, c.Stderr = &o, &o
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signaled() {
		return 0, true, o.String()
	}
	s := o.String()
	i := strings.Index(s, "REVIEW4 writes=")
	if i < 0 {
		t.Fatalf("helper: %v: %s", err, s)
	}
	fmt.Sscanf(s[i:], "REVIEW4 writes=%d", &writes)
	return writes, false, s[i:]
}

// review4Sweep kills the write args after each of its writes to the
// working database in turn, on a fresh workspace set up by setup each
// time, and checks that whoever takes the branch over brings the working
// database back to the committed state: `argon status -s` lists no
// change (beyond those in keep, an application's, which must survive
// when the takeover repairs rather than rebuilds).
func review4Sweep(t *testing.T, setup func(t *testing.T) (dir string, env []string, db string, keep []string), args ...string) {
	t.Helper()
	dir, env, db, _ := setup(t)
	total, _, out := review4Kill(t, dir, env, db, 0, args...)
	t.Logf("argon %v unkilled: %d writes to %s: %s", args, total, db, strings.TrimSpace(out))
	for n := 1; n <= total; n++ {
		t.Run(fmt.Sprint("kill", n), func(t *testing.T) {
			dir, env, db, keep := setup(t)
			_, killed, out := review4Kill(t, dir, env, db, n, args...)
			if !killed {
				t.Fatalf("kill at write %d: not killed: %s", n, out)
			}
			status, notices := review4Run2(t, dir, env, "status", "-s")
			var changes []string
			for _, l := range strings.Split(strings.TrimSpace(status), "\n")[1:] {
				changes = append(changes, l)
			}
			rebuilt := strings.Contains(notices, "rebuilt")
			want := keep
			if rebuilt {
				want = nil
			}
			if strings.Join(changes, "|") != strings.Join(want, "|") {
				t.Errorf("killed after write %d of %d: status after the takeover lists %q, want %q\n%s%s", n, total, changes, want, status, notices)
			} else {
				t.Logf("killed after write %d of %d: ok (rebuilt: %v)", n, total, rebuilt)
			}
		})
	}
}

// review4Run runs argon in dir and returns its stdout and stderr.
func review4Run(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, errOut := review4Run2(t, dir, env, args...)
	return out + errOut
}

func review4Run2(t *testing.T, dir string, env []string, args ...string) (string, string) {
	t.Helper()
	c := exec.Command("argon", args...)
	c.Dir, c.Env = dir, env
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		t.Fatalf("argon %v: %v: %s%s", args, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

func review4Embedded(p string, prep ...[]string) func(t *testing.T) (string, []string, string, []string) {
	return func(t *testing.T) (string, []string, string, []string) {
		if os.Getenv("ARGON_TEST_URI") != "" {
			t.Skip("embedded engine only")
		}
		dir := t.TempDir()
		env := append(os.Environ(), "ARGON_AUTHOR=tester", "HOME="+dir, "XDG_CONFIG_HOME="+dir,
			"ARGON_URI=", "ARGON_PROJECT=", "NO_COLOR=1")
		review4Run(t, dir, env, "init", p)
		for _, a := range prep {
			if a[0] == "!kill" {
				// A writer killed before its commit, left for the
				// next holder to fence and repair.
				c := exec.Command("argon", a[1:]...)
				c.Dir, c.Env = dir, append(append([]string(nil), env...), "ARGON_TEST_KILL_AT=before-commit")
				if err := c.Run(); err == nil {
					t.Fatalf("argon %v was not killed", a[1:])
				}
				continue
			}
			if a[0] == "!mkdir" {
				if err := os.MkdirAll(dir+"/"+a[1], 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if a[0] == "!file" {
				if err := os.WriteFile(dir+"/"+a[1], []byte(a[2]), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			review4Run(t, dir, env, a...)
		}
		return dir, env, "ar_" + p + "__main", nil
	}
}

// review4Served is review4Embedded with argon serve running once prep is
// done, and an application's document {_id: "draft"} in collection notes
// of the working database, uncommitted.
func review4Served(p string, prep ...[]string) func(t *testing.T) (string, []string, string, []string) {
	return func(t *testing.T) (string, []string, string, []string) {
		dir, env, db, _ := review4Embedded(p, prep...)(t)
		env = append(env, "ARGON_LEASE_TTL=300ms", "ARGON_BUSY_TIMEOUT=60s")
		startServe(t, dir, env)
		b, err := os.ReadFile(dir + "/.argon/serve.json")
		if err != nil {
			t.Fatal(err)
		}
		uri := string(b)[strings.Index(string(b), `"uri":"`)+7:]
		uri = uri[:strings.IndexByte(uri, '"')]
		app, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			t.Fatal(err)
		}
		defer app.Disconnect(context.Background())
		if _, err := app.Database(db).Collection("notes").InsertOne(context.Background(), bson.D{{Key: "_id", Value: "draft"}}); err != nil {
			t.Fatal(err)
		}
		return dir, env, db, []string{`A notes "draft"`}
	}
}

func TestReview4KillSweepEmbedded(t *testing.T) {
	t.Parallel()
	three := []string{"insert", "c", `[{"_id": 1, "n": 1}, {"_id": 2, "n": 1}, {"_id": 3, "n": 2}]`}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (string, []string, string, []string)
		args  []string
	}{
		{"update many", review4Embedded("k1", three), []string{"update", "c", `{"n": 1}`, `{"$set": {"n": 9}}`, "--many"}},
		{"delete many", review4Embedded("k2", three), []string{"delete", "c", `{"n": 1}`, "--many"}},
		{"replace upsert", review4Embedded("k3", three), []string{"replace", "c", `{"n": 5}`, `{"n": 5}`, "--upsert"}},
		{"update upsert", review4Embedded("k4", three), []string{"update", "c", `{"n": 5}`, `{"$set": {"m": 1}}`, "--upsert"}},
		// The next holder repairs a dead writer's keys in prepare, then
		// writes (and announces) its own.
		{"insert after a dead update", review4Embedded("k6", three, []string{"!kill", "update", "c", `{"n": 1}`, `{"$set": {"n": 8}}`, "--many"}),
			[]string{"insert", "c", `{"_id": 50}`}},
		{"update after a dead update", review4Embedded("k7", three, []string{"!kill", "update", "c", `{"n": 1}`, `{"$set": {"n": 8}}`, "--many"}),
			[]string{"update", "c", `{"n": 2}`, `{"$set": {"n": 9}}`, "--many"}},
		{"delete after a dead delete", review4Embedded("k8", three, []string{"!kill", "delete", "c", `{"n": 1}`, "--many"}),
			[]string{"delete", "c", `{"n": 2}`}},
		// ... rebuilds it (the dead writer could not say), then announces.
		{"update after a dead index create", review4Embedded("k9", three, []string{"!kill", "index", "create", "c", `{"n": 1}`}),
			[]string{"update", "c", `{"n": 1}`, `{"$set": {"n": 9}}`, "--many"}},
		{"import upsert with indexes", review4Embedded("k5", three, []string{"!file", "in.json", "{\"_id\": 1, \"n\": 7}\n{\"_id\": 4}\n"}),
			[]string{"import", "in.json", "-c", "c", "--mode", "upsert"}},
	} {
		t.Run(tc.name, func(t *testing.T) { review4Sweep(t, tc.setup, tc.args...) })
	}
}

func TestReview4KillSweepServed(t *testing.T) {
	t.Parallel()
	three := []string{"insert", "c", `[{"_id": 1, "n": 1}, {"_id": 2, "n": 1}, {"_id": 3, "n": 2}]`}
	var batch strings.Builder
	for i := 0; i < 2100; i++ {
		fmt.Fprintf(&batch, "{\"_id\": %d}\n", 100+i)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (string, []string, string, []string)
		args  []string
	}{
		{"update many", review4Served("s1", three), []string{"update", "c", `{"n": 1}`, `{"$set": {"n": 9}}`, "--many"}},
		{"delete many", review4Served("s2", three), []string{"delete", "c", `{"n": 1}`, "--many"}},
		{"update upsert", review4Served("s3", three), []string{"update", "c", `{"n": 5}`, `{"$set": {"m": 1}}`, "--upsert"}},
		{"insert batches", review4Served("s4", three, []string{"!file", "b.json", batch.String()}), []string{"insert", "c", "--file", "b.json"}},
		{"import dir with indexes", review4Served("s5", three, []string{"!mkdir", "in"},
			[]string{"!file", "in/c.json", "{\"_id\": 1, \"n\": 7}\n{\"_id\": 4, \"e\": 1}\n"},
			[]string{"!file", "in/c.metadata.json", `{"indexes":[{"key":{"e":{"$numberInt":"1"}},"name":"e_1","unique":true}]}`}),
			[]string{"import", "--dir", "in", "--mode", "upsert"}},
	} {
		t.Run(tc.name, func(t *testing.T) { review4Sweep(t, tc.setup, tc.args...) })
	}
}

// `argon commit` records an application's changes; it changes nothing in
// the working database, yet it takes the branch with a lease that names
// no keys (intent nil: known false). Killed before its commit, it leaves
// a dirty void with unknown keys, and whoever takes the branch over
// rebuilds the working database from the log: the very changes the user
// asked to commit are gone, neither committed nor in the database. (Not
// a breach of the lease rule, which allows a rebuild when the keys are
// unknown, but the loss crash_keeps_app_changes.txtar guards against for
// every other write; a lease with no keys, []wal.KeyRef{}, would say
// truthfully that it changes nothing.) (Found by review; fixed: commit
// takes the branch with that lease.)
func TestReview4KilledCommitOfChangesKeepsThem(t *testing.T) {
	dir, env, _, keep := review4Served("cm4", []string{"insert", "c", `{"_id": 1}`})(t)
	c := exec.Command("argon", "commit", "-m", "the app's draft")
	c.Dir, c.Env = dir, append(append([]string(nil), env...), "ARGON_TEST_KILL_AT=before-commit")
	if err := c.Run(); err == nil {
		t.Fatal("argon commit was not killed")
	}
	status, notices := review4Run2(t, dir, env, "status", "-s")
	notes, _ := review4Run2(t, dir, env, "find", "notes")
	t.Logf("after the killed commit: status %q, notices %q, notes %q", status, notices, notes)
	if !strings.Contains(status, keep[0]) || strings.TrimSpace(notes) != `{"_id":"draft"}` {
		t.Fatalf("the application's uncommitted document after a killed `argon commit` and a takeover: status %q, notes %q (%s); want it still there, uncommitted", status, notes, strings.TrimSpace(notices))
	}
}

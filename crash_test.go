package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
)

// crashKills sizes TestCrashSuite by the writers it kills (a writer left
// to finish, or killed at a random instant after it finished, is not
// counted): 40 on the embedded engine, 40 on a server and 20 through argon
// serve in the README's suite; 120, 120 and 60 at the nightly size, which
// .ci/run runs too, so that CI kills at least 300 writers (issue 6).
var crashKills = flag.Int("crash-kills", testsize.Pick(40, 120), "writers TestCrashSuite kills on the embedded engine and on a server (half as many through argon serve)")

// killPoints are the steps of the commit protocol a writer can be killed
// at (see commit.Hook), plus "" for a kill at a random instant and "none"
// for a writer left to finish (so that the final checks have acknowledged
// writes to look for).
var killPoints = []string{"leased", "applied", "before-commit", "after-commit", "", "", "", "none", "none"}

// TestCrashSuite kills writer processes (inserts, $inc updates, deletes,
// branch creations) with SIGKILL at every step of the commit protocol and
// at random instants, on the embedded engine and as clients of a shared
// server. After each kill `argon fsck` must be clean (or made clean by
// --repair); the next write must succeed without manual steps; and at the
// end every acknowledged write is present with its exact content, no
// failed write is visible, and the $inc counter lies between the number
// of acknowledged increments and that plus the increments whose outcome
// the kill left unknown.
func TestCrashSuite(t *testing.T) {
	t.Parallel()
	kills := *crashKills
	if testing.Short() {
		kills = 25
	}
	t.Run("server", func(t *testing.T) {
		srv := enginetest.Start(t)
		crashSuite(t, kills, []string{"ARGON_URI=" + srv.URI, "ARGON_DB=" + srv.DB, "ARGON_PROJECT=crash"})
	})
	t.Run("embedded", func(t *testing.T) {
		if os.Getenv("ARGON_TEST_URI") != "" {
			t.Skip("the embedded engine is not in use")
		}
		crashSuite(t, kills, nil)
	})
	t.Run("serve", func(t *testing.T) {
		if os.Getenv("ARGON_TEST_URI") != "" {
			t.Skip("the embedded engine is not in use")
		}
		crashSuite(t, kills/2, []string{"serve"})
	})
}

// startServe runs `argon serve` for the workspace in dir and waits until
// it accepts clients; the returned function kills it with SIGKILL.
func startServe(t *testing.T, dir string, env []string) func() {
	t.Helper()
	_ = os.Remove(dir + "/.argon/serve.json")
	c := exec.Command("argon", "serve")
	c.Dir, c.Env = dir, env
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(dir + "/.argon/serve.json"); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("argon serve did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once bool
	stop := func() {
		if !once {
			once = true
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

func crashSuite(t *testing.T, wantKills int, extra []string) {
	dir := t.TempDir()
	env := append(os.Environ(), "ARGON_AUTHOR=tester", "HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"ARGON_LEASE_TTL=300ms", "ARGON_BUSY_TIMEOUT=60s", "NO_COLOR=1")
	serve := len(extra) == 1 && extra[0] == "serve"
	if !serve {
		env = append(env, extra...)
	}
	// On a server with two frontends, the processes alternate between
	// them: the one killed on one, the next (and fsck) on the other. The
	// second starts once the collections argon uses exist (see Frontends).
	var frontends []string
	calls := 0
	envFor := func() []string {
		calls++
		e := slices.Clip(env)
		if len(frontends) > 1 {
			e = append(e, "ARGON_URI="+frontends[calls%len(frontends)])
		}
		return e
	}
	run := func(wantOK bool, args ...string) (string, int) {
		t.Helper()
		c := exec.Command("argon", args...)
		c.Dir, c.Env = dir, envFor()
		var out, stderr bytes.Buffer
		c.Stdout, c.Stderr = &out, &stderr
		err := c.Run()
		code := c.ProcessState.ExitCode()
		if wantOK && err != nil {
			t.Fatalf("argon %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), stderr.String())
		}
		if !wantOK && code != 0 {
			return out.String() + stderr.String(), code
		}
		return out.String(), code
	}
	run(true, "init", "crash")
	run(true, "insert", "c", `{"_id": "counter", "n": 0}`)
	if !serve && extra != nil {
		frontends = enginetest.Frontends(t, ownDatabases(true, env))
	}
	stopServe := func() {}
	serveKills := 0
	if serve {
		stopServe = startServe(t, dir, env)
	}

	rng := rand.New(rand.NewPCG(uint64(len(extra)), 99))
	// State each document must have: present with value, or absent. An
	// id whose last write's outcome is unknown may be either.
	type want struct {
		present, unknown bool
		v                int
	}
	docs := map[string]*want{}
	ackedIncs, unknownIncs, kills := 0, 0, 0
	branches := 0
	// Rounds until wantKills writers were killed: about two in three
	// rounds kill one (see killPoints).
	round := 0
	for ; kills < wantKills; round++ {
		if round == 4*wantKills {
			t.Fatalf("%d rounds killed only %d writers of the %d wanted", round, kills, wantKills)
		}
		var args []string
		id := fmt.Sprintf("r%04d", round)
		kind := rng.IntN(10)
		var victim string
		switch {
		case kind < 4:
			args = []string{"insert", "c", fmt.Sprintf(`{"_id": %q, "v": %d}`, id, round)}
		case kind < 7:
			args = []string{"update", "c", `{"_id": "counter"}`, `{"$inc": {"n": 1}}`}
		case kind < 9:
			for k, w := range docs {
				if w.present && !w.unknown {
					victim = k
					break
				}
			}
			if victim == "" {
				args = []string{"insert", "c", fmt.Sprintf(`{"_id": %q, "v": %d}`, id, round)}
				kind = 0
			} else {
				args = []string{"delete", "c", fmt.Sprintf(`{"_id": %q}`, victim)}
			}
		default:
			branches++
			args = []string{"branch", "create", fmt.Sprintf("b%04d", round)}
		}
		if serve && round%15 == 14 {
			// Kill the server itself (SIGKILL), then start it again.
			stopServe()
			serveKills++
			stopServe = startServe(t, dir, env)
		}
		point := killPoints[rng.IntN(len(killPoints))]
		c := exec.Command("argon", args...)
		c.Dir = dir
		c.Env = append(envFor(), "ARGON_TEST_KILL_AT="+point)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		switch point {
		case "": // a kill at a random instant
			time.AfterFunc(time.Duration(rng.IntN(60))*time.Millisecond, func() { _ = c.Process.Kill() })
		case "none": // no kill: acknowledged writes for the final checks
		}
		err := c.Wait()
		acked := err == nil
		killed := !acked && c.ProcessState.ExitCode() == -1
		if !acked && !killed {
			t.Fatalf("round %d: argon %s failed without a kill: %v\n%s", round, strings.Join(args, " "), err, stderr.String())
		}
		if killed {
			kills++
		}
		switch {
		case kind < 4:
			docs[id] = &want{present: true, unknown: killed, v: round}
		case kind < 7:
			if acked {
				ackedIncs++
			} else {
				unknownIncs++
			}
		case kind < 9:
			docs[victim] = &want{present: false, unknown: killed, v: docs[victim].v}
		}
		if killed {
			if first, code := run(false, "fsck"); code != 0 {
				out, _ := run(false, "fsck", "--repair")
				if again, code := run(false, "fsck"); code != 0 {
					t.Fatalf("round %d (argon %s killed at %q): fsck:\n%s\nfsck --repair:\n%s\nfsck again:\n%s", round, strings.Join(args, " "), point, first, out, again)
				}
			}
		}
	}
	t.Logf("%d rounds, %d writer kills, %d server kills, %d acknowledged and %d unknown increments", round, kills, serveKills, ackedIncs, unknownIncs)

	out, _ := run(true, "find", "c", "--json", "--relaxed")
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range got {
		id := d["_id"].(string)
		seen[id] = true
		if id == "counter" {
			n := int(d["n"].(float64))
			if n < ackedIncs || n > ackedIncs+unknownIncs {
				t.Errorf("counter is %d: %d increments acknowledged, %d unknown", n, ackedIncs, unknownIncs)
			}
			continue
		}
		w := docs[id]
		switch {
		case w == nil:
			t.Errorf("document %s was never written", id)
		case !w.present && !w.unknown:
			t.Errorf("document %s was deleted (acknowledged) but is present", id)
		case int(d["v"].(float64)) != w.v:
			t.Errorf("document %s has v %v, want %d", id, d["v"], w.v)
		}
	}
	for id, w := range docs {
		if w.present && !w.unknown && !seen[id] {
			t.Errorf("acknowledged document %s is missing", id)
		}
	}
	if _, code := run(false, "fsck"); code != 0 {
		out, _ := run(false, "fsck")
		t.Fatalf("final fsck:\n%s", out)
	}
	// A write after all of it succeeds without manual steps.
	run(true, "insert", "c", `{"_id": "last"}`)
	_ = context.Background()
}

// ownDatabases selects the databases of the metadata database that env's
// ARGON_DB names: it and the working databases and views made for it.
func ownDatabases(remote bool, env []string) func(string) bool {
	meta := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ARGON_DB="); ok {
			meta = v
		}
	}
	prefix := wal.DatabasePrefix(meta)
	return func(db string) bool {
		return remote && meta != "" && (db == meta || strings.HasPrefix(db, prefix))
	}
}

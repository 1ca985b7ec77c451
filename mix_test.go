package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/ui"
)

// ack is one acknowledged write a mixWorker reports.
type ack struct {
	Op     string `json:"op"`
	Branch string `json:"branch"`
	ID     string `json:"id,omitempty"`
}

// mixWorker is one OS process of TestConcurrencySuite: until
// ARGON_SECONDS have passed it mixes $inc updates, inserts, reads and
// branch creations on the branches b0..b3, one argon command each, and
// prints every acknowledged write as a JSON line.
func mixWorker() {
	worker, _ := strconv.Atoi(os.Getenv("ARGON_WORKER"))
	secs, _ := strconv.Atoi(os.Getenv("ARGON_SECONDS"))
	dir, _ := os.Getwd()
	rng := rand.New(rand.NewPCG(uint64(worker), 5))
	end := time.Now().Add(time.Duration(secs) * time.Second)
	enc := json.NewEncoder(os.Stdout)
	branches, _ := strconv.Atoi(os.Getenv("ARGON_MIX_BRANCHES"))
	for i := 0; time.Now().Before(end); i++ {
		branch := fmt.Sprintf("b%d", rng.IntN(branches))
		io, _, _, errOut := ui.Test()
		f := &cmd.Factory{IO: io, Dir: dir}
		var args []string
		var a ack
		switch k := rng.IntN(10); {
		case k < 4:
			args = []string{"update", "c", `{"_id": "counter"}`, `{"$inc": {"n": 1}}`, "--branch", branch}
			a = ack{Op: "inc", Branch: branch}
		case k < 7:
			id := fmt.Sprintf("w%02d-%04d", worker, i)
			args = []string{"insert", "c", `{"_id": "` + id + `", "w": ` + strconv.Itoa(worker) + `}`, "--branch", branch}
			a = ack{Op: "insert", Branch: branch, ID: id}
		case k < 9:
			args = []string{"find", "c", "--branch", branch}
		default:
			args = []string{"branch", "create", fmt.Sprintf("x%02d-%04d", worker, i), "--from", branch}
		}
		if code := cmd.Run(context.Background(), f, args); code != 0 {
			fmt.Fprintf(os.Stderr, "%v: exit %d: %s", args, code, errOut.String())
			continue
		}
		if a.Op != "" {
			_ = enc.Encode(a)
		}
	}
	os.Exit(0)
}

// TestConcurrencySuite runs 16 processes on 4 branches, then on one,
// through one `argon serve` (or the server at ARGON_TEST_URI, split over
// two frontends when ARGON_TEST_POSTGRESQL_URL allows a second, see
// enginetest.Frontends) for a fixed
// time, mixing writes, reads and branch creations. Afterwards every
// acknowledged insert is present exactly once on its branch, each
// branch's $inc counter equals its number of acknowledged increments, and
// fsck finds the log and every working database consistent.
func TestConcurrencySuite(t *testing.T) {
	t.Parallel()
	t.Run("4 branches", func(t *testing.T) { concurrencySuite(t, 4) })
	t.Run("1 branch", func(t *testing.T) { concurrencySuite(t, 1) })
}

// mixSeconds is how long each part of TestConcurrencySuite runs: 8 s in
// the README's suite (under 5 minutes on an idle 2-core machine), 60 s at
// the nightly size.
var mixSeconds = flag.Int("mix-seconds", testsize.Pick(8, 60), "seconds each part of TestConcurrencySuite runs")

func concurrencySuite(t *testing.T, nbranches int) {
	secs := *mixSeconds
	if testing.Short() {
		secs = min(secs, 5)
	}
	const workers = 16
	dir := t.TempDir()
	env := append(os.Environ(), "ARGON_AUTHOR=tester", "ARGON_BUSY_TIMEOUT=5m", "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	remote := os.Getenv("ARGON_TEST_URI") != ""
	if remote {
		srv := enginetest.Start(t)
		env = append(env, "ARGON_URI="+srv.URI, "ARGON_DB="+srv.DB, "ARGON_PROJECT=mix")
	}
	run := argonRunner(t, dir, env)
	run("init", "mix")
	if !remote {
		startServe(t, dir, env)
	}
	run("insert", "c", `{"_id": "counter", "n": 0}`)
	for b := 0; b < nbranches; b++ {
		run("branch", "create", fmt.Sprintf("b%d", b))
		run("find", "c", "--branch", fmt.Sprintf("b%d", b)) // its working database
	}
	frontends := enginetest.Frontends(t, ownDatabases(os.Getenv("ARGON_TEST_URI") != "", env))

	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := exec.Command("argonmix")
			c.Dir = dir
			c.Env = append(slices.Clip(env), "ARGON_WORKER="+strconv.Itoa(w), "ARGON_SECONDS="+strconv.Itoa(secs),
				"ARGON_MIX_BRANCHES="+strconv.Itoa(nbranches))
			if len(frontends) > 0 {
				c.Env = append(c.Env, "ARGON_URI="+frontends[w%len(frontends)])
			}
			var stderr bytes.Buffer
			c.Stderr = &stderr
			out, err := c.Output()
			if err != nil {
				t.Errorf("worker %d: %v\n%s", w, err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("worker %d had failures:\n%s", w, stderr.String())
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			mu.Lock()
			defer mu.Unlock()
			for sc.Scan() {
				var a ack
				if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
					t.Errorf("worker %d printed %q", w, sc.Text())
					continue
				}
				acks = append(acks, a)
			}
		}(w)
	}
	wg.Wait()

	incs := map[string]int{}
	inserted := map[string]map[string]bool{}
	for _, a := range acks {
		switch a.Op {
		case "inc":
			incs[a.Branch]++
		case "insert":
			if inserted[a.Branch] == nil {
				inserted[a.Branch] = map[string]bool{}
			}
			inserted[a.Branch][a.ID] = true
		}
	}
	total := 0
	for b := 0; b < nbranches; b++ {
		branch := fmt.Sprintf("b%d", b)
		var docs []map[string]any
		if err := json.Unmarshal(run("find", "c", "--branch", branch, "--json", "--relaxed"), &docs); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range docs {
			id := d["_id"].(string)
			if seen[id] {
				t.Errorf("branch %s: document %s twice", branch, id)
			}
			seen[id] = true
			if id == "counter" {
				if n := int(d["n"].(float64)); n != incs[branch] {
					t.Errorf("branch %s: counter %d, %d increments acknowledged", branch, n, incs[branch])
				}
			} else if !inserted[branch][id] {
				t.Errorf("branch %s: document %s was never acknowledged", branch, id)
			}
		}
		for id := range inserted[branch] {
			if !seen[id] {
				t.Errorf("branch %s: acknowledged document %s is missing", branch, id)
			}
		}
		total += incs[branch] + len(inserted[branch])
	}
	out := run("fsck")
	if bytes.Contains(out, []byte("error:")) || bytes.Contains(out, []byte("differ from the log")) {
		t.Errorf("fsck:\n%s", out)
	}
	t.Logf("%d processes on %d branches, %d frontends, %d s: %d acknowledged writes", workers, nbranches, max(len(frontends), 1), secs, total)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/ui"
)

const raceNames = 12

// namesWorker is one OS process of TestNameRaces: it tries to rename each
// of the branches r0..r11 to a name of its own, and prints the renames
// that succeeded.
func namesWorker() {
	worker := os.Getenv("ARGON_WORKER")
	dir, _ := os.Getwd()
	for k := 0; k < raceNames; k++ {
		io, _, _, errOut := ui.Test()
		from, to := fmt.Sprintf("r%d", k), fmt.Sprintf("r%d-w%s", k, worker)
		switch code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"branch", "rename", from, to}); code {
		case 0:
			fmt.Println(to)
		case 4: // lost the race: renamed at the same time, or already gone
		default:
			fmt.Fprintf(os.Stderr, "rename %s: exit %d: %s", from, code, errOut.String())
		}
	}
	os.Exit(0)
}

// TestNameRaces: 16 processes race to rename the same 12 branches through
// one `argon serve` (or split over the server's frontends). Each branch is renamed exactly once, every timeline
// ends with exactly one name, and the reflog records one rename per branch.
func TestNameRaces(t *testing.T) {
	const workers = 16
	dir := t.TempDir()
	env := append(os.Environ(), "ARGON_AUTHOR=tester", "ARGON_BUSY_TIMEOUT=5m", "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	remote := os.Getenv("ARGON_TEST_URI") != ""
	if remote {
		srv := enginetest.Start(t)
		env = append(env, "ARGON_URI="+srv.URI, "ARGON_DB="+srv.DB, "ARGON_PROJECT=names")
	}
	run := argonRunner(t, dir, env)
	run("init", "names")
	if !remote {
		startServe(t, dir, env)
	}
	for k := 0; k < raceNames; k++ {
		run("branch", "create", fmt.Sprintf("r%d", k))
	}
	// Every collection a rename writes exists before a second frontend
	// starts (see enginetest.Frontends).
	run("branch", "create", "warm")
	run("branch", "rename", "warm", "warm2")
	run("branch", "delete", "warm2", "--yes")
	frontends := enginetest.Frontends(t, ownDatabases(os.Getenv("ARGON_TEST_URI") != "", env))
	var mu sync.Mutex
	won := map[string][]string{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := exec.Command("argonnames")
			c.Dir = dir
			c.Env = append(slices.Clip(env), "ARGON_WORKER="+strconv.Itoa(w))
			if len(frontends) > 0 { // split over the server's frontends
				c.Env = append(c.Env, "ARGON_URI="+frontends[w%len(frontends)])
			}
			var stderr bytes.Buffer
			c.Stderr = &stderr
			out, err := c.Output()
			if err != nil || stderr.Len() > 0 {
				t.Errorf("worker %d: %v\n%s", w, err, stderr.String())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, to := range strings.Fields(string(out)) {
				from, _, _ := strings.Cut(to, "-")
				won[from] = append(won[from], to)
			}
		}(w)
	}
	wg.Wait()
	for k := 0; k < raceNames; k++ {
		from := fmt.Sprintf("r%d", k)
		if len(won[from]) != 1 {
			t.Errorf("branch %s was renamed %d times: %v", from, len(won[from]), won[from])
		}
	}
	var branches []struct {
		Name string `json:"branch"`
	}
	if err := json.Unmarshal(run("branch", "--json"), &branches); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, b := range branches {
		names[b.Name] = true
	}
	for from, tos := range won {
		if names[from] {
			t.Errorf("branch %s still exists after its rename", from)
		}
		for _, to := range tos {
			if !names[to] {
				t.Errorf("renamed branch %s is missing", to)
			}
		}
	}
	if len(branches) != raceNames+1 {
		t.Errorf("%d branches, want %d: %v", len(branches), raceNames+1, branches)
	}
	// Every timeline has one name, and the reflog one rename per branch.
	out := run("fsck")
	if bytes.Contains(out, []byte("error:")) {
		t.Errorf("fsck:\n%s", out)
	}
	var reflog []struct {
		Branch string `json:"branch"`
		Action string `json:"action"`
	}
	if err := json.Unmarshal(run("reflog", "--json"), &reflog); err != nil {
		t.Fatal(err)
	}
	renames := map[string]int{}
	for _, r := range reflog {
		if strings.HasPrefix(r.Action, "rename to ") {
			renames[r.Branch]++
		}
	}
	for k := 0; k < raceNames; k++ {
		if n := renames[fmt.Sprintf("r%d", k)]; n != 1 {
			t.Errorf("reflog has %d renames of r%d", n, k)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/ui"
	"github.com/argon-db/argon/internal/wal"
)

// concurrencyWorker is one OS process of TestConcurrentProcesses: it runs
// `argon insert` ARGON_COUNT times in-process, each a commit of its own,
// and prints the _id of every acknowledged insert.
func concurrencyWorker() {
	n, _ := strconv.Atoi(os.Getenv("ARGON_COUNT"))
	worker := os.Getenv("ARGON_WORKER")
	dir, _ := os.Getwd()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("w%s-%03d", worker, i)
		f := &cmd.Factory{IO: ui.System(), Dir: dir}
		code := cmd.Run(context.Background(), f, []string{"insert", "c", `{"_id": "` + id + `", "w": ` + worker + `, "i": ` + strconv.Itoa(i) + `}`})
		if code != 0 {
			fmt.Fprintf(os.Stderr, "insert %s: exit %d\n", id, code)
		}
	}
	os.Exit(0)
}

// procInserts sizes TestConcurrentProcesses: 30 in the README's suite, 200
// at the nightly size.
var procInserts = flag.Int("proc-inserts", testsize.Pick(30, 200), "inserts each process of TestConcurrentProcesses commits")

// Eight OS processes commit 30 inserts each to one branch through one
// shared server: every acknowledged commit is in the log, LSNs are dense
// with no duplicate, and no document is lost.
func TestConcurrentProcesses(t *testing.T) {
	t.Parallel()
	workers, each := 8, *procInserts
	if testing.Short() {
		each = min(each, 10)
	}
	srv := enginetest.Start(t)
	dir := t.TempDir()
	env := append(os.Environ(), "ARGON_URI="+srv.URI, "ARGON_DB="+srv.DB, "ARGON_PROJECT=conc",
		"ARGON_AUTHOR=tester", "ARGON_BUSY_TIMEOUT=5m", "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	run := argonRunner(t, dir, env)
	run("init", "conc")

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := exec.Command("argonworker")
			c.Dir = dir
			c.Env = append(slices.Clip(env), "ARGON_WORKER="+strconv.Itoa(w), "ARGON_COUNT="+strconv.Itoa(each))
			var stderr bytes.Buffer
			c.Stderr = &stderr
			out, err := c.Output()
			if err != nil {
				t.Errorf("worker %d: %v\n%s", w, err, stderr.String())
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			mu.Lock()
			defer mu.Unlock()
			for sc.Scan() {
				var id string
				if json.Unmarshal(sc.Bytes(), &id) == nil {
					acked[id] = true
				}
			}
			if stderr.Len() > 0 {
				t.Logf("worker %d stderr:\n%s", w, stderr.String())
			}
		}(w)
	}
	wg.Wait()
	if len(acked) != workers*each {
		t.Errorf("%d inserts acknowledged, want %d", len(acked), workers*each)
	}

	var log []struct {
		From int64 `json:"lsn_from"`
		To   int64 `json:"lsn_to"`
	}
	if err := json.Unmarshal(run("log", "--json"), &log); err != nil {
		t.Fatal(err)
	}
	if len(log) != len(acked) {
		t.Fatalf("%d commits in the log, %d acknowledged", len(log), len(acked))
	}
	sort.Slice(log, func(i, j int) bool { return log[i].From < log[j].From })
	for i, c := range log {
		if c.From != int64(i+1) || c.To != c.From {
			t.Fatalf("commit %d has LSNs %d..%d: not dense", i, c.From, c.To)
		}
	}

	var docs []struct {
		ID string `json:"_id"`
	}
	if err := json.Unmarshal(run("find", "c", "--json", "--relaxed"), &docs); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, d := range docs {
		if found[d.ID] {
			t.Fatalf("document %s twice", d.ID)
		}
		found[d.ID] = true
	}
	for id := range acked {
		if !found[id] {
			t.Errorf("acknowledged document %s lost", id)
		}
	}

	// The working database the writers kept equals a fresh fold of the log.
	r := wal.Open(srv.Client, srv.DB)
	b, err := r.Branch(context.Background(), "conc", "main")
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Fold(context.Background(), b.Timeline, int64(len(log)), "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Len("c") != len(docs) {
		t.Fatalf("fold has %d documents, working database %d", st.Len("c"), len(docs))
	}
}

// argonRunner returns a function that runs the argon command (the test
// binary) in dir with env, fails the test on a non-zero exit, and returns
// its standard output.
func argonRunner(t *testing.T, dir string, env []string) func(args ...string) []byte {
	return func(args ...string) []byte {
		t.Helper()
		c := exec.Command("argon", args...)
		c.Dir, c.Env = dir, env
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("argon %v: %v\n%s%s", args, err, out, stderr.String())
		}
		return out
	}
}

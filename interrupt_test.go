package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A write interrupted by SIGINT gives its lease back before it exits
// (130): under argon serve, where a lease left behind is waited for by
// the next command on the branch until it times out (here 60 s), every
// lease has its slot filled, the interrupted insert's spilled entries are
// gone, and the next commands go ahead at once, with nothing of the insert
// in the log or the working database. Killed outright, as before, the
// next command waited (a new-user run: 30 s).
func TestInterruptedWriteGivesItsLeaseBack(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("argon serve of the embedded engine")
	}
	dir := t.TempDir()
	env := append(os.Environ(), "ARGON_AUTHOR=tester", "HOME="+dir, "XDG_CONFIG_HOME="+dir, "ARGON_URI=", "ARGON_PROJECT=",
		"ARGON_LEASE_TTL=60s", "ARGON_BUSY_TIMEOUT=2s", "NO_COLOR=1")
	run := func(args ...string) string {
		t.Helper()
		c := exec.Command("argon", args...)
		c.Dir, c.Env = dir, env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("argon %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	run("init", "sig")
	run("insert", "c", `{"_id": 1}`)
	startServe(t, dir, env)
	var served struct {
		URI string `json:"uri"`
	}
	b, err := os.ReadFile(dir + "/.argon/serve.json")
	if err != nil || json.Unmarshal(b, &served) != nil || served.URI == "" {
		t.Fatalf("serve.json: %s (%v)", b, err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(served.URI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	meta := client.Database("argon_wal")
	ctx := context.Background()

	// 2,500 documents, then the input stays open: the insert has spilled
	// its first batches (so it holds the lease) and waits for more.
	c := exec.Command("argon", "insert", "c")
	c.Dir, c.Env = dir, env
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = io.Discard, &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Process.Kill() }()
	for i := 0; i < 2500; i++ {
		fmt.Fprintf(stdin, "{\"_id\": \"v%d\"}\n", i)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := meta.Collection("entries").CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the insert spilled nothing in 60 s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted insert: %v, want exit 130: %s", err, stderr.String())
	}
	if s := stderr.String(); s != "" {
		t.Errorf("interrupted insert printed %q, want nothing (the shell shows the interruption)", s)
	}
	stdin.Close()

	// Every lease has its slot: none is left to be waited for.
	cur, err := meta.Collection("leases").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var leases []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &leases); err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if n, err := meta.Collection("slots").CountDocuments(ctx, bson.D{{Key: "_id", Value: l.ID}}); err != nil || n != 1 {
			t.Errorf("lease %s has no slot (%v): the interrupted writer did not give it back", l.ID, err)
		}
	}
	if n, err := meta.Collection("entries").CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("%d spilled entries left by the interrupted insert (%v), want its own cleanup to remove them", n, err)
	}
	// The next commands go ahead (a lease left behind would make them
	// wait past ARGON_BUSY_TIMEOUT and fail), and see nothing of it.
	if out := run("find", "c"); out != "{\"_id\":1}\n" {
		t.Errorf("find after the interrupted insert: %q", out)
	}
	run("insert", "c", `{"_id": 2}`)
	if out := run("log", "--oneline"); strings.Count(out, "\n") != 2 {
		t.Errorf("log after the interrupted insert:\n%s", out)
	}
	if out := run("status", "-s"); strings.Count(out, "\n") != 1 {
		t.Errorf("status -s after the interrupted insert: %q, want clean", out)
	}
}

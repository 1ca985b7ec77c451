package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A serve with --idle-exit waits for its first client, stays while a
// client is connected, however long, and ends once it has had none for the
// idle time, withdrawing its serve.json and releasing the workspace.
func TestServeIdleExit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	uri, errc := make(chan string, 1), make(chan error, 1)
	go func() {
		errc <- ServeIdle(context.Background(), dir, "127.0.0.1:0", 10*time.Second, 200*time.Millisecond, func(u string) { uri <- u })
	}()
	var u string
	select {
	case u = <-uri:
	case err := <-errc:
		t.Fatal(err)
	}
	// Its first client may come later than the idle time (the starting
	// command polls for serve.json): still serving.
	time.Sleep(500 * time.Millisecond)
	if ReadServeInfo(dir) == nil {
		t.Fatal("ended before its first client")
	}
	c, err := mongo.Connect(options.Client().ApplyURI(u))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		t.Fatal(err)
	}
	// Three idle times with a client connected (the driver keeps its
	// connections open): still serving.
	time.Sleep(600 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("ended with a client connected: %v", err)
	default:
	}
	if ReadServeInfo(dir) == nil {
		t.Fatal("serve.json withdrawn with a client connected")
	}
	_ = c.Disconnect(context.Background())
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still serving 30 s after its last client left")
	}
	if _, err := os.Stat(filepath.Join(dir, "serve.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("serve.json after the end: %v", err)
	}
	// The workspace is free again.
	fl, si, err := acquire(context.Background(), dir, time.Second)
	if err != nil || si != nil {
		t.Fatalf("workspace after the end: %v, %v", err, si)
	}
	_ = fl.Unlock()
}

// A serve.json names the workspace it serves: one copied into another
// workspace is not taken for that workspace's engine.
func TestServeInfoNamesItsWorkspace(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	uri, errc := make(chan string, 1), make(chan error, 1)
	go func() { errc <- Serve(ctx, a, "127.0.0.1:0", 10*time.Second, func(u string) { uri <- u }) }()
	select {
	case <-uri:
	case err := <-errc:
		t.Fatal(err)
	}
	defer func() { cancel(); <-errc }()
	if ReadServeInfo(a) == nil {
		t.Fatal("no serve.json in the served workspace")
	}
	raw, err := os.ReadFile(filepath.Join(a, "serve.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "serve.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if si := ReadServeInfo(b); si != nil {
		t.Fatalf("a copied serve.json was taken for the workspace's engine: %+v", si)
	}
}

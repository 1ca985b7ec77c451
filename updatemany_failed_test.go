package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/ui"
)

// An update --many the engine refuses part way (here $inc of a string in
// one matched document) keeps an application's uncommitted document the
// filter did not match, below and above 5,000 keys. Found by an
// adversarial review of the engine's own updateMany on the working
// database: its failure repaired the touched keys, and past 5,000 that
// rebuilt the collection from the log (workdb.Repair did so until
// review31).
func TestFailedUpdateManyKeepsUncommitted(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine")
	}
	for _, n := range []int{100, 5001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			uncommittedAfterFailedMany(t, n)
		})
	}
}

func uncommittedAfterFailedMany(t *testing.T, n int) {
	dir, run := statusWorkspace(t, "rv")
	var b strings.Builder
	for i := 2; i <= n+1; i++ {
		fmt.Fprintf(&b, `{"_id": %d, "n": %d}`+"\n", i, i)
	}
	b.WriteString(`{"_id": "s", "n": "str"}` + "\n")
	if err := os.WriteFile(dir+"/docs.json", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("insert", "c", "--file", dir+"/docs.json", "-q")

	// An application's uncommitted insert, through argon serve.
	ctx, cancel := context.WithCancel(context.Background())
	uri, errc := make(chan string, 1), make(chan error, 1)
	go func() {
		errc <- store.Serve(ctx, dir+"/.argon", "127.0.0.1:0", 10*time.Second, func(u string) { uri <- u })
	}()
	var u string
	select {
	case u = <-uri:
	case err := <-errc:
		t.Fatal(err)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(u))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("ar_rv__main").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}, {Key: "m", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(context.Background())
	cancel()
	<-errc

	io, _, _, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"update", "c", `{"n": {"$exists": true}}`, `{"$inc": {"n": 1}}`, "--many"})
	t.Logf("update --many: exit %d: %s", code, errOut.String())
	if code == 0 {
		t.Fatal("the update succeeded")
	}
	if _, out := run("find", "c", `{"_id": "app"}`); out != "{\"_id\":\"app\",\"m\":1}\n" {
		t.Errorf("the application's uncommitted document after the refused update: %q, want it kept", out)
	}
	if _, out := run("status", "-s"); !strings.Contains(out, "A c \"app\"") {
		t.Errorf("status -s: %q, want the uncommitted insert", out)
	}
	if _, out := run("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck: %q", out)
	}
}

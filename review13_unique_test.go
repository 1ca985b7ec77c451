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

// r13Run runs one argon command line in-process and returns its exit
// code, stdout and stderr (without failing the test on a non-zero exit).
func r13Run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	io, _, stdout, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, args)
	return code, stdout.String(), errOut.String()
}

// r13App runs fn as an application of the workspace at dir, through an
// argon serve that stops before r13App returns: the next command runs
// the engine itself again (Repo.Exclusive).
func r13App(t *testing.T, dir, db string, fn func(ctx context.Context, c *mongo.Collection) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	uc, errc := make(chan string, 1), make(chan error, 1)
	go func() {
		errc <- store.Serve(ctx, dir+"/.argon", "127.0.0.1:0", 10*time.Second, func(u string) { uc <- u })
	}()
	var u string
	select {
	case u = <-uc:
	case err := <-errc:
		t.Fatal(err)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(u))
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(ctx, c.Database(db).Collection("c")); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(context.Background())
	cancel()
	<-errc
}

// An update --many whose write-back breaks a unique index (the scratch
// engine has no user index, so only the write-back's inserts meet it) is
// refused with the index named, exit 1; the working database is put back
// to the committed state for the matched documents, and an application's
// uncommitted changes outside the filter (a new document, an edited one)
// are kept; nothing is committed; status and fsck agree. Sizes: a
// write-back by _id (<= 200 changed), by the user's filter (> 200), and
// past 5,000 touched keys, where until review31 the repair of the failed
// write-back rebuilt the whole collection from the log.
func TestReview13UniqueIndexWriteBack(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine's scratch evaluation")
	}
	for _, n := range []int{10, 300, 5001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { r13UniqueWriteBack(t, n) })
	}
}

func r13UniqueWriteBack(t *testing.T, n int) {
	dir, run := statusWorkspace(t, "uq")
	var b strings.Builder
	for i := 2; i <= n+1; i++ {
		fmt.Fprintf(&b, `{"_id": %d, "u": %d}`+"\n", i, i)
	}
	if err := os.WriteFile(dir+"/docs.json", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("insert", "c", "--file", dir+"/docs.json", "-q")
	run("index", "create", "c", `{"u": 1}`, "--unique")
	_, headBefore := run("log", "--oneline", "-n", "1")

	r13App(t, dir, "ar_uq__main", func(ctx context.Context, c *mongo.Collection) error {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}, {Key: "m", Value: 1}}); err != nil {
			return err
		}
		_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 99}}}})
		return err
	})

	// Every matched document gets u 0: the second one inserted back
	// collides with the first.
	code, out, errOut := r13Run(t, dir, "update", "c", `{"_id": {"$gte": 2}}`, `{"$set": {"u": 0}}`, "--many")
	t.Logf("update --many: exit %d: %s%s", code, out, errOut)
	if code != 1 || !strings.Contains(errOut, "unique index u_1") {
		t.Errorf("update --many breaking u_1: exit %d, %q; want exit 1 naming the index", code, errOut)
	}
	if _, out := run("log", "--oneline", "-n", "1"); out != headBefore {
		t.Errorf("log after the refused update: %q, want %q", out, headBefore)
	}
	if _, out := run("count", "c", `{"u": {"$gte": 2}}`); out != fmt.Sprintf("%d\n", n) {
		t.Errorf("documents with their committed u: %q, want %d", out, n)
	}
	if _, out := run("find", "c", `{"_id": "app"}`); out != "{\"_id\":\"app\",\"m\":1}\n" {
		t.Errorf("the application's uncommitted insert after the refused update: %q, want it kept", out)
	}
	if _, out := run("find", "c", `{"_id": 1}`); out != "{\"_id\":1,\"n\":99}\n" {
		t.Errorf("the application's uncommitted edit of _id 1 after the refused update: %q, want it kept", out)
	}
	if _, out := run("status", "-s"); !strings.Contains(out, "A c \"app\"") || !strings.Contains(out, "M c 1") {
		t.Errorf("status -s: %q, want the application's two changes", out)
	}
	if _, out := run("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck: %q", out)
	}
}

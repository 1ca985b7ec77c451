package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofrs/flock"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The scratch engine starts on first use; each collection it hands out
// is empty, in a database of its own, and indexed on _id (its updates by
// _id use the index); a dropped one is gone; Close stops the engine and
// removes its folder. Only a store of the embedded engine has one.
func TestScratch(t *testing.T) {
	ctx := context.Background()
	var s Scratch
	s.Close() // before any use: nothing to do
	a, dropA, err := s.Collection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := s.dir
	if !strings.HasPrefix(filepath.Base(dir), "argon-scratch-") {
		t.Fatalf("scratch folder %q", dir)
	}
	if _, err := a.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}}, bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 2}}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, a.Database().Name()+".sqlite")
	table := tableOf(t, file, "c")
	if p, want := plan(t, file, table), "USING INDEX "+idIndexPrefix+table; !strings.Contains(p, want) {
		t.Errorf("plan of a scratch collection's lookup by _id: %q, want %q", p, want)
	}
	b, dropB, err := s.Collection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.Database().Name() == b.Database().Name() {
		t.Fatalf("two scratch collections in one database %s", a.Database().Name())
	}
	if n, err := b.CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("a second scratch collection holds %d documents (%v), want 0", n, err)
	}
	if _, err := a.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 10}}}}); err != nil {
		t.Fatal(err)
	}
	var got bson.M
	if err := a.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&got); err != nil || got["n"] != int32(12) {
		t.Errorf("after the update: %v (%v), want n 12", got, err)
	}
	dropA()
	names, err := s.client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != b.Database().Name() {
		t.Errorf("databases after the first drop: %v, want only %s", names, b.Database().Name())
	}
	dropB()
	s.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("scratch folder after Close: %v, want it removed", err)
	}
	s.Close() // twice: nothing to do

	// The folder of a process that ended (its lock free) is removed by
	// the next scratch engine to start; one whose process runs (its
	// lock held), or without a lock file yet, stays.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ended, running, unlocked := filepath.Join(tmp, "argon-scratch-1"), filepath.Join(tmp, "argon-scratch-2"), filepath.Join(tmp, "argon-scratch-3")
	for _, d := range []string{ended, running, unlocked} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "s1.sqlite"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{ended, running} {
		if err := os.WriteFile(filepath.Join(d, scratchLock), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	held := flock.New(filepath.Join(running, scratchLock))
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatalf("lock %s: %v %v", running, ok, err)
	}
	defer held.Unlock()
	var next Scratch
	if _, _, err := next.Collection(ctx); err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(next.dir) != tmp {
		t.Fatalf("scratch folder %s, want one in %s", next.dir, tmp)
	}
	for d, want := range map[string]bool{ended: false, running: true, unlocked: true, next.dir: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s after a scratch engine started: exists %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
	next.Close()

	if (&Store{}).Scratch() != nil {
		t.Error("a store of a server has a scratch engine")
	}
	if (&Store{Embedded: true}).Scratch() == nil {
		t.Error("a store of the embedded engine has no scratch engine")
	}
}

// FerretDB puts its folder into SQLite URIs unescaped, so a folder whose
// path has a %, ? or # cannot hold an engine: the workspace's engine says
// so in plain words, and the scratch engine reports ErrNoScratch (its
// callers evaluate in their deployment instead).
func TestEnginePathsFerretDBCannotName(t *testing.T) {
	for _, name := range []string{"50%off", "what?", "issue#7"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := StartEngine(filepath.Join(dir, "data"), "127.0.0.1:0")
		if want := "the embedded engine cannot run in " + filepath.Join(dir, "data") + ": its path has a %, ? or #; use a folder without them, or a server with --uri"; err == nil || err.Error() != want {
			t.Errorf("StartEngine in %s: %v, want %q", name, err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
			t.Errorf("StartEngine in %s made its folder: %v", name, err)
		}
		t.Setenv("TMPDIR", dir)
		var s Scratch
		if _, _, err := s.Collection(context.Background()); !errors.Is(err, ErrNoScratch) {
			t.Errorf("scratch engine with TMPDIR %s: %v, want ErrNoScratch", name, err)
		}
		s.Close()
	}
	// A temporary directory that does not exist: ErrNoScratch too.
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "gone"))
	var s Scratch
	if _, _, err := s.Collection(context.Background()); !errors.Is(err, ErrNoScratch) {
		t.Errorf("scratch engine with a missing TMPDIR: %v, want ErrNoScratch", err)
	}
}

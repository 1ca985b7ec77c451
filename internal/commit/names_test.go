package commit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// collidingMetadata returns two metadata database names, both starting
// with prefix, whose working-database prefixes are equal (the prefix keeps
// 16 bits of a hash, so a few hundred names are enough to find a pair).
func collidingMetadata(t *testing.T, prefix string) (string, string) {
	t.Helper()
	seen := map[string]string{}
	for i := 0; i < 100000; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		p := wal.DatabasePrefix(name)
		if other, ok := seen[p]; ok {
			return other, name
		}
		seen[p] = name
	}
	t.Fatal("no two names share a prefix")
	return "", ""
}

// Two metadata databases whose working-database names are derived alike
// (same name prefix, same project, same branch) never share a working
// database, and neither ever changes or drops the other's: the name is
// claimed on the server by a unique insert of an owner record into the
// database itself, which the metadata database's own reservation cannot
// see. A working database written before owner records is recognised by
// its marker's timeline; one an older argon already let two metadata
// databases share is refused, not rebuilt.
func TestNamesNeverCollideAcrossMetadataDatabases(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	metaA, metaB := collidingMetadata(t, srv.DB+"m")
	prefix := wal.DatabasePrefix(metaA)
	cleanup := func() {
		names, _ := srv.Client.ListDatabaseNames(ctx, bson.D{})
		for _, n := range names {
			if n == metaA || n == metaB || strings.HasPrefix(n, prefix) {
				_ = srv.Client.Database(n).Drop(ctx)
			}
		}
	}
	if !srv.Embedded {
		cleanup()
		t.Cleanup(cleanup)
	}
	open := func(meta string) (*wal.Repo, *wal.Branch) {
		r := wal.Open(srv.Client, meta)
		if err := r.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		_, b, err := r.CreateProject(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		return r, b
	}
	insert := func(r *wal.Repo, b *wal.Branch, id string) {
		t.Helper()
		if _, err := New().Open(r, b).Insert(ctx, "c", []bson.Raw{doc(t, bson.D{{Key: "_id", Value: id}})}, wal.CommitInfo{}); err != nil {
			t.Fatalf("insert %s: %v", id, err)
		}
	}
	// holds reads a working database directly and fails unless it holds
	// exactly the given _ids in c.
	holds := func(db string, ids ...string) {
		t.Helper()
		cur, err := srv.Client.Database(db).Collection("c").Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var got []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &got); err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, g := range got {
			have = append(have, g.ID)
		}
		if strings.Join(have, ",") != strings.Join(ids, ",") {
			t.Fatalf("%s holds %v, want %v", db, have, ids)
		}
	}
	rebuild := func(r *wal.Repo, b *wal.Branch) error {
		head, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New().Open(r, b).Rebuild(ctx, head.Slot, "")
		return err
	}

	rA, mainA := open(metaA)
	insert(rA, mainA, "a1")
	rB, mainB := open(metaB)
	if mainA.DB != prefix+"p__main" {
		t.Fatalf("A's main uses %s, want the readable name %s", mainA.DB, prefix+"p__main")
	}
	if mainB.DB == mainA.DB {
		t.Fatalf("both metadata databases use %s for main", mainA.DB)
	}
	insert(rB, mainB, "b1")
	if err := rebuild(rB, mainB); err != nil {
		t.Fatal(err)
	}
	holds(mainA.DB, "a1")
	holds(mainB.DB, "b1")

	// A working database from before owner records: no owner, a marker
	// without the metadata database's name. B still sees it is not its.
	x, err := rA.CreateBranch(ctx, "p", "x", mainA, 0)
	if err != nil {
		t.Fatal(err)
	}
	insert(rA, x, "x1")
	legacy := srv.Client.Database(x.DB).Collection(workdb.MarkerCollection)
	if _, err := legacy.DeleteOne(ctx, bson.D{{Key: "_id", Value: "owner"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.UpdateOne(ctx, bson.D{{Key: "_id", Value: "marker"}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "meta", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	xB, err := rB.CreateBranch(ctx, "p", "x", mainB, 0)
	if err != nil {
		t.Fatal(err)
	}
	if xB.DB == x.DB {
		t.Fatalf("B's branch x took A's working database %s from before owner records", x.DB)
	}
	insert(rB, xB, "xb1")
	holds(x.DB, "x1")
	// A's own rebuild of it writes the owner record it lacked.
	if err := rebuild(rA, x); err != nil {
		t.Fatal(err)
	}
	if o, err := rA.DBOwner(ctx, x.DB); err != nil || o == nil || o.Meta != metaA {
		t.Fatalf("owner of %s after A's rebuild: %+v, %v", x.DB, o, err)
	}

	// Two metadata databases an older argon let share one database: B's
	// binding names A's database. B never rebuilds or adopts it: it
	// reserves a new name for its branch and rebuilds its state there.
	if _, err := rB.DB.Collection("branches").UpdateOne(ctx, bson.D{{Key: "_id", Value: xB.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "db", Value: x.DB}}}}); err != nil {
		t.Fatal(err)
	}
	shared, err := rB.Branch(ctx, "p", "x")
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	wb := New().Open(rB, shared)
	wb.Notice = func(s string) { notices = append(notices, s) }
	docs, err := wb.Find(ctx, "c", workdb.Query{})
	if err != nil || len(docs) != 1 || docs[0].Lookup("_id").StringValue() != "xb1" {
		t.Fatalf("B reading its branch x: %v, %v", docs, err)
	}
	moved, err := rB.Branch(ctx, "p", "x")
	if err != nil || moved.DB == x.DB || moved.DB == xB.DB || wb.DB.Name() != moved.DB {
		t.Fatalf("B's branch x now uses %s (handle %s), want a new name, not %s or %s", moved.DB, wb.DB.Name(), x.DB, xB.DB)
	}
	want := fmt.Sprintf("the working database %s of branch x belongs to another metadata database now; the branch uses %s, rebuilt from the log", x.DB, moved.DB)
	if len(notices) == 0 || notices[len(notices)-1] != want {
		t.Fatalf("notices %q, want %q", notices, want)
	}
	holds(x.DB, "x1")
	holds(moved.DB, "xb1")
	// The same when A's database took the name while B's was gone.
	if err := srv.Client.Database(moved.DB).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := rA.ClaimOwner(ctx, moved.DB, "p"); err != nil || !ok {
		t.Fatalf("A claiming %s: %v, %v", moved.DB, ok, err)
	}
	if _, err := srv.Client.Database(moved.DB).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "A's"}}); err != nil {
		t.Fatal(err)
	}
	wm := New().Open(rB, moved)
	hf := &holdFiles{}
	wm.Files = hf
	if _, err := wm.Insert(ctx, "c", []bson.Raw{d1("xb2")}, wal.CommitInfo{}); err != nil {
		t.Fatalf("B writing after A took its name: %v", err)
	}
	again, err := rB.Branch(ctx, "p", "x")
	if err != nil || again.DB == moved.DB {
		t.Fatalf("B's branch x uses %s, want a name other than %s", again.DB, moved.DB)
	}
	// Writes were held (as argon serve does) on the name the write
	// started with, then on the new one: A's database is let go at once.
	if want := []string{"hold " + moved.DB, "release " + moved.DB, "hold " + again.DB, "release " + again.DB}; !slices.Equal(hf.events, want) {
		t.Fatalf("holds of a write that moved its branch to a new name: %q, want %q", hf.events, want)
	}
	holds(moved.DB, "A's")
	holds(again.DB, "xb1", "xb2")

	// Both reserve the same free name (neither has built it yet): the
	// first to build owns it, the other moves to a new one when it builds.
	zA, err := rA.CreateBranch(ctx, "p", "z", mainA, -1)
	if err != nil {
		t.Fatal(err)
	}
	zB, err := rB.CreateBranch(ctx, "p", "z", mainB, -1)
	if err != nil {
		t.Fatal(err)
	}
	if zA.DB != zB.DB {
		t.Fatalf("branch z: %s and %s; this case wants both to have reserved the same name", zA.DB, zB.DB)
	}
	insert(rA, zA, "za")
	insert(rB, zB, "zb")
	zB2, err := rB.Branch(ctx, "p", "z")
	if err != nil || zB2.DB == zA.DB {
		t.Fatalf("B's branch z uses %s, want a name other than A's %s", zB2.DB, zA.DB)
	}
	holds(zA.DB, "a1", "za")
	holds(zB2.DB, "b1", "zb")

	// A database that is not argon's already has a new branch's name: the
	// branch gets another name, and the database is left as it is.
	foreign := prefix + "p__y"
	if _, err := srv.Client.Database(foreign).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "theirs"}}); err != nil {
		t.Fatal(err)
	}
	y, err := rA.CreateBranch(ctx, "p", "y", mainA, -1)
	if err != nil {
		t.Fatal(err)
	}
	if y.DB == foreign || !strings.HasPrefix(y.DB, foreign+"_") {
		t.Fatalf("branch y uses %s, want %s with a suffix", y.DB, foreign)
	}
	wy := New().Open(rA, y)
	changes, _, err := wy.Changes(ctx)
	if err != nil || len(changes) != 0 {
		t.Fatalf("branch y: changes %v, %v; want none", changes, err)
	}
	holds(foreign, "theirs")
	holds(y.DB, "a1")
	if err := srv.Client.Database(foreign).Collection(workdb.MarkerCollection).FindOne(ctx, bson.D{}).Err(); err != mongo.ErrNoDocuments {
		t.Fatalf("argon wrote into the foreign database: %v", err)
	}
}

// argon gc of one metadata database leaves the caches (views, scratch
// databases) of another whose name prefix hashes alike: they share the
// prefix, and only the owner record inside tells them apart (found in
// review: gc dropped the other's views, whose reads then came back empty).
func TestGCLeavesOtherMetadataCaches(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	metaA, metaB := collidingMetadata(t, srv.DB+"g")
	prefix := wal.DatabasePrefix(metaA)
	if !srv.Embedded {
		t.Cleanup(func() {
			names, _ := srv.Client.ListDatabaseNames(ctx, bson.D{})
			for _, n := range names {
				if n == metaA || n == metaB || strings.HasPrefix(n, prefix) {
					_ = srv.Client.Database(n).Drop(ctx)
				}
			}
		})
	}
	rA, rB := wal.Open(srv.Client, metaA), wal.Open(srv.Client, metaB)
	var bB *wal.Branch
	for _, r := range []*wal.Repo{rA, rB} {
		if err := r.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
		_, b, err := r.CreateProject(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		bB = b
	}
	if _, err := New().Open(rB, bB).Insert(ctx, "c", []bson.Raw{d1("b1")}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := workdb.OpenView(ctx, rB, bB.Timeline, 1); err != nil { // B reads its LSN 1
		t.Fatal(err)
	}
	n, err := workdb.DropViews(ctx, rA) // argon gc in A
	if err != nil || n != 0 {
		t.Fatalf("A's gc dropped %d databases (%v), want 0", n, err)
	}
	v, err := workdb.OpenView(ctx, rB, bB.Timeline, 1)
	if err != nil {
		t.Fatal(err)
	}
	if docs, err := v.Find(ctx, "c", workdb.Query{}); err != nil || len(docs) != 1 {
		t.Fatalf("after %s's gc, %s's view %s holds %d documents (want 1), err %v", metaA, metaB, v.DB.Name(), len(docs), err)
	}
	if n, err := workdb.DropViews(ctx, rB); err != nil || n != 1 {
		t.Fatalf("B's own gc dropped %d databases (%v), want its view", n, err)
	}
}

// holdFiles records the holds of writes a writer takes (argon serve's
// DBFiles does); it knows no files, so no database is known clean.
type holdFiles struct{ events []string }

func (h *holdFiles) Fingerprint(string) (string, error) { return "", errors.New("no files") }
func (h *holdFiles) Clean(string) string                { return "" }
func (h *holdFiles) SetClean(string, string) error      { return nil }
func (h *holdFiles) KeepClean(string) error             { return nil }
func (h *holdFiles) Building(string)                    {}
func (h *holdFiles) Built(string) error                 { return nil }
func (h *holdFiles) HoldWrites(_ context.Context, db string, _ time.Duration) (func(), error) {
	h.events = append(h.events, "hold "+db)
	done := false
	return func() {
		if !done {
			done = true
			h.events = append(h.events, "release "+db)
		}
	}, nil
}

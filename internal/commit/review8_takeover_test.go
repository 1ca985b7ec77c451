package commit

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// review8IDs are _id values of several BSON types the server accepts
// (no NUL in strings: FerretDB over PostgreSQL refuses them, "unsupported
// Unicode escape sequence").
func review8IDs() []any {
	return []any{
		"a", int32(7), int64(1) << 40, 2.5, bson.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		bson.D{{Key: "x", Value: int32(1)}}, bson.Binary{Subtype: 0, Data: []byte{0, 1, 0xff}},
		bson.NewDateTimeFromTime(time.Unix(1700000000, 0)), true, "ünï",
	}
}

func review8Key(coll string, id any) wal.KeyRef {
	raw := mustMarshal(bson.D{{Key: "_id", Value: id}})
	return wal.KeyRef{Coll: coll, Key: wal.KeyOf(bson.Raw(raw).Lookup("_id"))}
}

func review8IndexKey(coll, name string) wal.KeyRef {
	raw := mustMarshal(bson.D{{Key: "n", Value: name}})
	return wal.KeyRef{Coll: coll, Key: wal.KeyOf(bson.Raw(raw).Lookup("n")), Index: true}
}

// review8State is the working database's collection c, one line per
// document, and its index names.
func review8State(t *testing.T, w *workdb.Branch) string {
	t.Helper()
	ctx := context.Background()
	cur, err := w.DB.Collection("c").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for cur.Next(ctx) {
		d := cur.Current
		lines = append(lines, fmt.Sprintf("%x=%v", wal.KeyOf(d.Lookup("_id")), d.Lookup("v")))
	}
	_ = cur.Close(ctx)
	sort.Strings(lines)
	specs, err := w.Indexes(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Lookup("name").StringValue())
	}
	sort.Strings(names)
	return strings.Join(lines, "\n") + "\nindexes " + strings.Join(names, ",")
}

// review8Crash sets up a branch with committed documents (every _id of
// review8IDs plus "b", v 1) and an index v_1, then has a writer holding
// slot head+1 die after changing, in the working database, every
// announced key (documents set to v 99, one deleted, "x" inserted, index
// v_1 dropped and w_1 created) and one key it did not announce ("b", an
// application's uncommitted change). lease writes the dead writer's lease
// record given the keys it announced. It returns the repo, the branch,
// the taken-over slot number and the announced keys.
func review8Crash(t *testing.T, lease func(r *wal.Repo, b *wal.Branch, w *workdb.Branch, n int64, keys []wal.KeyRef)) (*wal.Repo, *wal.Branch, int64, []wal.KeyRef, string) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	p := New()
	w := p.Open(r, b)
	var docs []bson.Raw
	for _, id := range append(review8IDs(), "b") {
		docs = append(docs, mustMarshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: int32(1)}}))
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "docs"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.CreateIndex(ctx, "c", mustMarshal(bson.D{{Key: "v", Value: int32(1)}}), workdb.IndexOptions{}, wal.CommitInfo{Message: "ix"}); err != nil {
		t.Fatal(err)
	}
	committed := review8State(t, w)
	h, err := r.Head(ctx, w.TL)
	if err != nil {
		t.Fatal(err)
	}
	n := h.Slot.N + 1
	var keys []wal.KeyRef
	for _, id := range review8IDs() {
		keys = append(keys, review8Key("c", id))
	}
	keys = append(keys, review8Key("c", "x"), review8IndexKey("c", "v_1"), review8IndexKey("c", "w_1"))
	lease(r, b, w, n, keys)
	// The dead writer's changes.
	c := w.DB.Collection("c")
	for _, id := range review8IDs()[1:] {
		if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(99)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}, {Key: "v", Value: int32(99)}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Indexes().DropOne(ctx, "v_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Indexes().CreateOne(ctx, workdbIndex("w")); err != nil {
		t.Fatal(err)
	}
	// Not announced: an application's change, which a key-by-key repair
	// keeps and a rebuild would lose.
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "b"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(77)}}}}); err != nil {
		t.Fatal(err)
	}
	return r, b, n, keys, committed
}

// review8TakeOver has another process (the dead one has ended) write to
// the branch, and checks the repair: every announced key is as committed,
// "b" keeps its uncommitted change, and the void copies the lease's keys.
func review8TakeOver(t *testing.T, r *wal.Repo, b *wal.Branch, n int64, keys []wal.KeyRef, committed string) {
	t.Helper()
	ctx := context.Background()
	r2 := *r
	r2.Exclusive = true
	p := New()
	w2 := p.Open(&r2, b)
	var notices []string
	w2.Notice = func(s string) { notices = append(notices, s) }
	review8WriteZ(t, w2, &notices, committed)
	v, err := r.ReadSlot(ctx, b.Timeline, n)
	if err != nil || v == nil {
		t.Fatalf("slot %d: %+v, %v", n, v, err)
	}
	if v.Kind != wal.SlotVoid || !v.Dirty || !v.Taker || !v.KeysKnown || len(v.Keys) != len(keys) {
		t.Fatalf("void %+v, want a dirty taker's void naming %d keys", v, len(keys))
	}
	for i := range keys {
		if v.Keys[i].Coll != keys[i].Coll || !bytes.Equal(v.Keys[i].Key, keys[i].Key) || v.Keys[i].Index != keys[i].Index {
			t.Fatalf("void key %d is %+v, want %+v", i, v.Keys[i], keys[i])
		}
	}
	raw, err := r.DB.Collection("slots").FindOne(ctx, bson.D{{Key: "_id", Value: v.ID}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if typ := raw.Lookup("keys").Type; typ != bson.TypeArray {
		t.Errorf("the void stores keys as %s, want an array (slots keep []KeyRef)", typ)
	}
}

// review8WriteZ has w2 insert "z" (taking the branch over from the dead
// writer) and checks the repair: every announced key as committed, "b"
// with its uncommitted change, and no rebuild among the notices.
func review8WriteZ(t *testing.T, w2 *workdb.Branch, notices *[]string, committed string) {
	t.Helper()
	if _, err := w2.Insert(context.Background(), "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "z"}, {Key: "v", Value: int32(1)}})}, wal.CommitInfo{Message: "z"}); err != nil {
		t.Fatal(err)
	}
	got := review8State(t, w2)
	bKey := fmt.Sprintf("%x", review8Key("c", "b").Key)
	zKey := fmt.Sprintf("%x", review8Key("c", "z").Key)
	want := strings.Replace(committed, bKey+"={\"$numberInt\":\"1\"}", bKey+"={\"$numberInt\":\"77\"}", 1)
	want = strings.Replace(want, "\nindexes", "\n"+zKey+"={\"$numberInt\":\"1\"}\nindexes", 1)
	if sortLines(got) != sortLines(want) {
		t.Errorf("working database after the takeover:\n%s\nwant:\n%s\nnotices %q", got, want, *notices)
	}
	for _, s := range *notices {
		if strings.Contains(s, "rebuilt") {
			t.Errorf("rebuilt instead of repaired: %q", s)
		}
	}
}

func sortLines(s string) string {
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

func workdbIndex(field string) mongo.IndexModel {
	return mongo.IndexModel{Keys: bson.D{{Key: field, Value: int32(1)}}}
}

// A lease record as an older argon wrote it (keys an array of {c, k, i}
// documents), inserted raw, is taken over by this argon: the void names
// its keys and the repair rewrites exactly those.
func TestReview8OldArrayLeaseTakeover(t *testing.T) {
	r, b, n, keys, committed := review8Crash(t, func(r *wal.Repo, b *wal.Branch, w *workdb.Branch, n int64, keys []wal.KeyRef) {
		id := fmt.Sprintf("%s:%012d", w.TL, n)
		_, err := r.DB.Collection("leases").InsertOne(context.Background(), bson.D{
			{Key: "_id", Value: id}, {Key: "tl", Value: w.TL}, {Key: "n", Value: n}, {Key: "token", Value: "old-argon"},
			{Key: "beat", Value: int64(3)}, {Key: "ttl_ms", Value: int64(30000)}, {Key: "known", Value: true},
			{Key: "keys", Value: keys}, {Key: "host", Value: "old"}})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := r.DB.Collection("leases").FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
		if typ := raw.Lookup("keys").Type; typ != bson.TypeArray {
			t.Fatalf("old lease stores keys as %s", typ)
		}
	})
	review8TakeOver(t, r, b, n, keys, committed)
}

// The same through a real writer of this argon: intent at acquire, more
// keys announced (a binary value), heartbeats, then the process dies.
func TestReview8BinaryLeaseTakeover(t *testing.T) {
	r, b, n, keys, committed := review8Crash(t, func(r *wal.Repo, b *wal.Branch, w *workdb.Branch, n int64, keys []wal.KeyRef) {
		ctx := context.Background()
		rr := *r
		rr.LeaseTTL = 3 * time.Millisecond // heartbeats every millisecond
		p := New()
		dead := p.Open(&rr, b)
		wr, err := p.acquire(ctx, dead, keys[:2])
		if err != nil {
			t.Fatal(err)
		}
		if wr.lease.N != n {
			t.Fatalf("lease on slot %d, want %d", wr.lease.N, n)
		}
		if err := wr.announce(ctx, keys); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		wr.stopHB() // killed
		l, err := r.ReadLease(ctx, w.TL, n)
		if err != nil || l == nil || !l.KeysKnown || len(l.Keys) != len(keys) || l.Beat == 0 {
			t.Fatalf("dead writer's lease %+v, %v", l, err)
		}
		raw, _ := r.DB.Collection("leases").FindOne(ctx, bson.D{{Key: "_id", Value: l.ID}}).Raw()
		if typ := raw.Lookup("keys").Type; typ != bson.TypeBinary {
			t.Fatalf("lease stores keys as %s", typ)
		}
	})
	review8TakeOver(t, r, b, n, keys, committed)
}

// fsck reads the pending lease of a dead writer (old array form and
// binary form): without --repair it notes it; with --repair (the dead
// process has ended) it takes the branch over and repairs the announced
// keys only.
func TestReview8FsckPendingLease(t *testing.T) {
	for _, form := range []string{"array", "binary"} {
		t.Run(form, func(t *testing.T) {
			r, b, n, keys, committed := review8Crash(t, func(r *wal.Repo, b *wal.Branch, w *workdb.Branch, n int64, keys []wal.KeyRef) {
				if form == "binary" {
					if err := r.InsertLease(context.Background(), &wal.Lease{TL: w.TL, N: n, Token: "dead", TTLMillis: 30000, KeysKnown: true, Keys: keys, Host: "dead"}); err != nil {
						t.Fatal(err)
					}
					return
				}
				_, err := r.DB.Collection("leases").InsertOne(context.Background(), bson.D{
					{Key: "_id", Value: fmt.Sprintf("%s:%012d", w.TL, n)}, {Key: "tl", Value: w.TL}, {Key: "n", Value: n}, {Key: "token", Value: "dead"},
					{Key: "beat", Value: int64(0)}, {Key: "ttl_ms", Value: int64(30000)}, {Key: "known", Value: true},
					{Key: "keys", Value: keys}, {Key: "host", Value: "dead"}})
				if err != nil {
					t.Fatal(err)
				}
			})
			ctx := context.Background()
			p := New()
			open := func(r *wal.Repo) func(*wal.Branch) *workdb.Branch {
				return func(b *wal.Branch) *workdb.Branch { return p.Open(r, b) }
			}
			rep, err := p.Fsck(ctx, r, "p", open(r), false)
			if err != nil {
				t.Fatalf("fsck: %v", err)
			}
			if len(rep.Problems) > 0 || !strings.Contains(strings.Join(rep.Notes, "\n"), fmt.Sprintf("holds slot %d", n)) {
				t.Fatalf("fsck: problems %+v notes %q", rep.Problems, rep.Notes)
			}
			r2 := *r
			r2.Exclusive = true
			rep, err = p.Fsck(ctx, &r2, "p", open(&r2), true)
			if err != nil {
				t.Fatalf("fsck --repair: %v", err)
			}
			t.Logf("repaired %q notes %q", rep.Repaired, rep.Notes)
			w := p.Open(r, b)
			got := review8State(t, w)
			bKey := fmt.Sprintf("%x", review8Key("c", "b").Key)
			want := strings.Replace(committed, bKey+"={\"$numberInt\":\"1\"}", bKey+"={\"$numberInt\":\"77\"}", 1)
			if got != want {
				t.Errorf("after fsck --repair:\n%s\nwant:\n%s", got, want)
			}
			v, err := r.ReadSlot(ctx, b.Timeline, n)
			if err != nil || v == nil || !v.KeysKnown || len(v.Keys) != len(keys) {
				t.Fatalf("void %+v, %v", v, err)
			}
		})
	}
}

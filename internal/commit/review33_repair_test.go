package commit

// Review 33 of bc42399 (a repair goes key by key at any count; "a repair
// cut off half way is still finished by the next holder, whose lease
// names the same keys; nothing is dropped").

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

type review33Killed struct{}

// review33KilledRepair: a write (1,500 keys of c) dies; the next holder
// is second (an index create, or an insert), which dies right after taking
// its lease, before or while it repairs the first one's keys (a process
// killed: no void of its own, no heartbeat). A third writer takes over.
// The application's uncommitted change to d, a key neither write touched,
// must stay: the repair is key by key, and one cut off is finished by the
// next holder.
func review33KilledRepair(t *testing.T, second func(ctx context.Context, w *workdb.Branch) error) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	var docs []bson.Raw
	var keys []wal.KeyRef
	for i := 0; i < 1500; i++ {
		docs = append(docs, mustMarshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int32(1)}}))
		keys = append(keys, review8Key("c", int32(i)))
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Insert(ctx, "d", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: 1}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	// The application's uncommitted change.
	if _, err := w.DB.Collection("d").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}}); err != nil {
		t.Fatal(err)
	}
	// The first writer: announced c's 1,500 keys, changed them, died.
	h, err := r.Head(ctx, w.TL)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.InsertLease(ctx, &wal.Lease{TL: w.TL, N: h.Slot.N + 1, Token: "dead1", TTLMillis: 30000, Host: "dead", KeysKnown: true, Keys: keys}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("c").UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 99}}}}); err != nil {
		t.Fatal(err)
	}
	// The second holder dies right after taking its lease.
	r2 := *r
	r2.Exclusive = true // every other lease is a dead process's
	armed := true
	Hook = func(point string) {
		if point == "leased" && armed {
			armed = false
			panic(review33Killed{})
		}
	}
	t.Cleanup(func() { Hook = nil })
	func() {
		defer func() {
			if x := recover(); x != nil {
				if _, ok := x.(review33Killed); !ok {
					panic(x)
				}
			}
		}()
		w2 := New().Open(&r2, b)
		w2.ScanReads = w.ScanReads
		w2.Notice = func(string) {}
		_ = second(ctx, w2)
		t.Fatal("the second writer was not stopped")
	}()
	Hook = nil
	// The third holder.
	w3 := New().Open(&r2, b)
	w3.ScanReads = w.ScanReads
	var notices []string
	w3.Notice = func(s string) { notices = append(notices, s) }
	if _, err := w3.Insert(ctx, "e", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "z"}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	var d bson.M
	if err := w3.DB.Collection("d").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if n, err := w3.DB.Collection("c").CountDocuments(ctx, bson.D{{Key: "v", Value: 1}}); err != nil || n != 1500 {
		t.Errorf("%d documents of c back at v 1 (%v), want 1500", n, err)
	}
	if d["v"] != int32(7) {
		t.Errorf("the application's uncommitted change to d (v 7) is lost: v %v; notices %q", d["v"], notices)
	}
	for _, s := range notices {
		if strings.Contains(s, "rebuilt") {
			t.Errorf("the working database was rebuilt, not repaired: %q", s)
		}
	}
}

// Control: the second holder is an insert (its lease names its key).
func TestReview33KilledRepairByAnInsertIsFinished(t *testing.T) {
	review33KilledRepair(t, func(ctx context.Context, w *workdb.Branch) error {
		_, err := w.Insert(ctx, "e", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "y"}})}, wal.CommitInfo{})
		return err
	})
}

// Was a defect (fixed in the twenty-third session): the second holder is `argon index create` (workdb.CreateIndex
// takes the branch with intent nil: a lease with KeysKnown false). Killed
// while it repairs the first writer's keys, its lease names no keys, the
// next holder's dirty-void walk meets a void with unknown keys first and
// rebuilds the whole working database: the application's uncommitted
// change to d, which neither write touched, is lost. The same holds for
// index drop, import and apply (merge, reset, revert): every w.write /
// Protocol.Write with intent nil.
func TestReview33KilledRepairByAnIndexCreateIsFinished(t *testing.T) {
	review33KilledRepair(t, func(ctx context.Context, w *workdb.Branch) error {
		_, _, _, err := w.CreateIndex(ctx, "c", mustMarshal(bson.D{{Key: "v", Value: int32(1)}}), workdb.IndexOptions{}, wal.CommitInfo{})
		return err
	})
}

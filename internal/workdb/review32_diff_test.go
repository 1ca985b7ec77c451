package workdb_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// r32Line renders one change with everything a commit would record from
// it: the collection, kind, index flag, the _id (with its type) and the
// bytes of both versions.
func r32Line(c workdb.Change) string {
	short := func(b []byte) string {
		if b == nil {
			return "-"
		}
		h := sha256.Sum256(b)
		return fmt.Sprintf("%d:%s", len(b), hex.EncodeToString(h[:6]))
	}
	return fmt.Sprintf("%s %s idx=%v id=%s/%s doc=%s was=%s", c.Coll, c.Kind, c.Index, c.ID.Type, c.ID.String(),
		short(c.Doc), short(c.Was))
}

func r32Lines(cs []workdb.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = r32Line(c)
	}
	return out
}

// r32Same compares two lists of changes: as multisets (what a commit
// records), and reports whether the order differs too.
func r32Same(a, b []workdb.Change) (same, sameOrder bool) {
	la, lb := r32Lines(a), r32Lines(b)
	sameOrder = strings.Join(la, "\n") == strings.Join(lb, "\n")
	sort.Strings(la)
	sort.Strings(lb)
	return strings.Join(la, "\n") == strings.Join(lb, "\n"), sameOrder
}

// r32ID draws an _id from a small pool: numbers of three types that are
// equal by value (int32 1, int64 1, double 1.0), strings, documents.
func r32ID(rng *rand.Rand) any {
	n := rng.Intn(12)
	switch rng.Intn(6) {
	case 0:
		return int64(n)
	case 1:
		return float64(n)
	case 2:
		return "s" + strconv.Itoa(n)
	case 3:
		return bson.D{{Key: "k", Value: int32(n)}}
	default:
		return int32(n)
	}
}

func r32Doc(rng *rand.Rand, id any) bson.D {
	d := bson.D{{Key: "_id", Value: id}, {Key: "v", Value: rng.Intn(5)}}
	switch rng.Intn(4) {
	case 0:
		d = append(d, bson.E{Key: "pad", Value: strings.Repeat("p", 100+rng.Intn(3000))})
	case 1:
		d = append(d, bson.E{Key: "n", Value: bson.D{{Key: "x", Value: rng.Float64()}}})
	}
	return d
}

// What held (passes): on random histories (committed inserts, updates,
// deletes, index creations and drops, images taken between them) and
// random changes an application makes directly in the working database
// (inserts, updates, replaces, deletes, _ids equal by value to committed
// ones but of another type, whole collections dropped and created empty,
// indexes created and dropped), the streamed comparison (diffKept, over
// spools in memory and in files) finds exactly the changes the whole
// fold and a second read (diffState) find; Changes too; and a commit of
// them leaves nothing to report.
func TestReview32DiffKeptIsDiffState(t *testing.T) {
	// Random histories: 3 in the README's suite, 30 at the nightly size
	// (internal/testsize). The cases' spool and keep sizes go in their
	// contexts (workdb.WithReadMemory), so the seeds run in parallel.
	t.Parallel()
	for seed := 1; seed <= testsize.Pick(3, 30); seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			t.Parallel()
			r32Run(t, int64(seed))
		})
	}
}

func r32Run(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	h := newR7(t)
	colls := []string{"a", "b", "c"}
	orderDiffs, total, reread := 0, 0, 0
	for round := 0; round < 8; round++ {
		if round == 4 {
			// Go on, on a branch forked from a past LSN.
			at := 1 + rng.Int63n(h.head())
			f, err := h.r.CreateBranch(h.ctx, "p", "f", h.b, at)
			if err != nil {
				t.Fatal(err)
			}
			h = h.on(f)
			h.insert("a", bson.D{{Key: "_id", Value: "fork"}})
		}
		// Committed writes through argon.
		for i := 0; i < 3+rng.Intn(6); i++ {
			coll := colls[rng.Intn(len(colls))]
			switch rng.Intn(6) {
			case 0, 1:
				id := r32ID(rng)
				raw := h.raw(r32Doc(rng, id))
				_, _ = h.w.Insert(h.ctx, coll, []bson.Raw{raw}, wal.CommitInfo{}) // duplicates refused
			case 2:
				_, _ = h.w.Modify(h.ctx, coll, workdb.Modification{Filter: h.raw(bson.D{{Key: "_id", Value: r32ID(rng)}}),
					Update: h.raw(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "u" + strconv.Itoa(rng.Intn(100))}}}})}, workdb.Limits{}, wal.CommitInfo{})
			case 3:
				_, _ = h.w.Modify(h.ctx, coll, workdb.Modification{Filter: h.raw(bson.D{{Key: "_id", Value: r32ID(rng)}}), Delete: true}, workdb.Limits{}, wal.CommitInfo{})
			case 4:
				keys := h.raw(bson.D{{Key: []string{"v", "n.x", "pad"}[rng.Intn(3)], Value: 1}})
				_, _, _, _ = h.w.CreateIndex(h.ctx, coll, keys, workdb.IndexOptions{}, wal.CommitInfo{})
			case 5:
				_, _, _ = h.w.DropIndex(h.ctx, coll, []string{"v_1", "n.x_1", "pad_1"}[rng.Intn(3)], wal.CommitInfo{})
			}
		}
		if rng.Intn(3) == 0 {
			h.image()
		}
		// An application's direct changes.
		for i := 0; i < 2+rng.Intn(10); i++ {
			coll := h.w.DB.Collection(colls[rng.Intn(len(colls))])
			switch rng.Intn(9) {
			case 0, 1:
				_, _ = coll.InsertOne(h.ctx, r32Doc(rng, r32ID(rng)))
			case 2:
				_, _ = coll.UpdateOne(h.ctx, bson.D{{Key: "_id", Value: r32ID(rng)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "app", Value: rng.Intn(3)}}}})
			case 3:
				id := r32ID(rng)
				_, _ = coll.ReplaceOne(h.ctx, bson.D{{Key: "_id", Value: id}}, r32Doc(rng, id))
			case 4:
				_, _ = coll.DeleteOne(h.ctx, bson.D{{Key: "_id", Value: r32ID(rng)}})
			case 5:
				if rng.Intn(3) == 0 {
					_ = coll.Drop(h.ctx)
				}
			case 6:
				_ = h.w.DB.CreateCollection(h.ctx, "empty"+strconv.Itoa(rng.Intn(2)))
			case 7:
				_, _ = coll.Indexes().CreateOne(h.ctx, mongoIndex(rng))
			case 8:
				_ = coll.Indexes().DropOne(h.ctx, []string{"v_1", "n.x_1", "pad_1", "app_1"}[rng.Intn(4)])
			}
		}
		head := h.head()
		want, err := h.w.Review32DiffState(h.ctx, head)
		if err != nil {
			t.Fatal(err)
		}
		total += len(want)
		for _, c := range []struct {
			name        string
			spool, keep int
		}{{"memory", 4 << 20, 256 << 20}, {"files", 700, 256 << 20}, {"tiny files", 1, 256 << 20}, {"past keepMax", 4 << 20, 5000}} {
			ctx := workdb.WithReadMemory(h.ctx, workdb.ReadMemory{Spool: c.spool, Keep: c.keep})
			got, keptNil, err := h.w.Review32DiffKept(ctx, head)
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, c.name, err)
			}
			if keptNil {
				reread++
			}
			same, sameOrder := r32Same(got, want)
			if !same {
				t.Fatalf("round %d, %s: diffKept\n%s\nwant (diffState)\n%s", round, c.name,
					strings.Join(r32Lines(got), "\n"), strings.Join(r32Lines(want), "\n"))
			}
			if !sameOrder {
				orderDiffs++
			}
			ch, _, err := h.w.Changes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if same, _ := r32Same(ch, want); !same {
				t.Fatalf("round %d, %s: Changes\n%s\nwant (diffState)\n%s", round, c.name,
					strings.Join(r32Lines(ch), "\n"), strings.Join(r32Lines(want), "\n"))
			}
		}
		ctx := workdb.WithReadMemory(h.ctx, workdb.ReadMemory{Spool: 700})
		if rng.Intn(2) == 0 {
			if _, _, _, err := h.w.CommitChanges(ctx, wal.CommitInfo{}, workdb.Limits{}); err != nil {
				t.Logf("round %d: commit: %v (restoring)", round, err)
				if _, err := h.w.Restore(ctx); err != nil {
					t.Fatal(err)
				}
			}
		} else if _, err := h.w.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		if ch, _, err := h.w.Changes(ctx); err != nil || len(ch) != 0 {
			t.Fatalf("round %d: after commit or restore: %v, %v", round, r32Lines(ch), err)
		}
	}
	t.Logf("seed %d: %d changes compared, %d comparisons past keepMax", seed, total, reread)
	if orderDiffs > 0 {
		t.Logf("seed %d: %d comparisons listed the same changes in another order", seed, orderDiffs)
	}
}

func mongoIndex(rng *rand.Rand) mongo.IndexModel {
	return mongo.IndexModel{Keys: bson.D{{Key: []string{"v", "n.x", "pad", "app"}[rng.Intn(4)], Value: 1}}}
}

// What held (passes): a branch with no commit whose working database an
// application filled (no marker): the streamed comparison at LSN 0 and
// Changes list what diffState lists.
func TestReview32DiffKeptOnAnEmptyLog(t *testing.T) {
	t.Parallel()
	h := newR7(t)
	if _, err := h.w.DB.Collection("a").InsertMany(h.ctx, []any{
		bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "_id", Value: int64(2)}, {Key: "p", Value: strings.Repeat("y", 3000)}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.w.DB.Collection("b").Indexes().CreateOne(h.ctx, mongo.IndexModel{Keys: bson.D{{Key: "v", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	ctx := workdb.WithReadMemory(h.ctx, workdb.ReadMemory{Spool: 100})
	want, err := h.w.Review32DiffState(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := h.w.Review32DiffKept(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if same, _ := r32Same(got, want); !same || len(want) != 3 {
		t.Fatalf("diffKept\n%s\nwant (diffState, 3 changes)\n%s", strings.Join(r32Lines(got), "\n"), strings.Join(r32Lines(want), "\n"))
	}
	ch, head, err := h.w.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if same, _ := r32Same(ch, want); !same {
		t.Fatalf("Changes (head %d)\n%s\nwant\n%s", head, strings.Join(r32Lines(ch), "\n"), strings.Join(r32Lines(want), "\n"))
	}
}

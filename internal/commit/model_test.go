package commit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// TestModel runs thousands of random operations on several branches, in
// argon and, as a model, on a plain collection per branch on the same
// server. Every branch head, and a sample of past states read back through
// time-travel views, must equal the model byte for byte.
// modelOps sizes TestModel: 400 operations in the README's suite, 5,000
// at the nightly size.
var modelOps = flag.Int("model-ops", testsize.Pick(400, 5000), "random operations TestModel runs")

func TestModel(t *testing.T) {
	t.Parallel()
	ops := *modelOps
	if testing.Short() {
		ops = min(ops, 300)
	}
	srv, r, main := waltest.Project(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))

	type branch struct {
		b     *wal.Branch
		w     *workdb.Branch
		model *mongo.Collection
		ids   map[int32]bool
	}
	modelDB := srv.Client.Database(srv.DB + "_model")
	newBranch := func(b *wal.Branch, i int) *branch {
		w := New().Open(r, b)
		w.ScanReads = srv.Embedded
		if srv.Embedded {
			// As the CLI on the embedded engine: a write that finds the
			// database's files as argon left them skips the check that
			// what it changes is committed (on a server, as the CLI
			// there, every write makes it).
			w.Files = store.FilesAt(srv.DataDir)
			// What argon status does: a scan that finds the database
			// clean records its files so.
			if _, _, err := w.Changes(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return &branch{b: b, w: w, model: modelDB.Collection(fmt.Sprintf("b%d", i)), ids: map[int32]bool{}}
	}
	branches := []*branch{newBranch(main, 0)}

	dump := func(c *mongo.Collection) []byte {
		cur, err := c.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for cur.Next(ctx) {
			s, err := bson.MarshalExtJSON(cur.Current, true, false)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(s)
			buf.WriteByte('\n')
		}
		return buf.Bytes()
	}
	dumpDocs := func(docs []bson.Raw) []byte {
		var buf bytes.Buffer
		for _, d := range docs {
			s, _ := bson.MarshalExtJSON(d, true, false)
			buf.Write(s)
			buf.WriteByte('\n')
		}
		return buf.Bytes()
	}
	byID, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
	type sample struct {
		tl   string
		lsn  int64
		want []byte
	}
	var samples []sample

	value := func() any {
		switch rng.IntN(6) {
		case 0:
			return rng.Int32N(100)
		case 1:
			return int64(rng.IntN(1 << 40))
		case 2:
			return rng.Float64() * 100
		case 3:
			return fmt.Sprintf("s%d", rng.IntN(50))
		case 4:
			return bson.D{{Key: "x", Value: rng.Int32N(5)}, {Key: "y", Value: "z"}}
		default:
			return bson.A{rng.Int32N(3), "a"}
		}
	}
	newDoc := func(id int32) bson.Raw {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "k", Value: rng.Int32N(100)}, {Key: "v", Value: value()}, {Key: "arr", Value: bson.A{}}})
		return raw
	}
	marshal := func(d bson.D) bson.Raw {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	pickID := func(br *branch) (int32, bool) {
		for id := range br.ids {
			return id, true
		}
		return 0, false
	}
	info := wal.CommitInfo{Message: "model"}

	for op := 0; op < ops; op++ {
		br := branches[rng.IntN(len(branches))]
		var err error
		switch k := rng.IntN(100); {
		case k < 3 && len(branches) < 6:
			h, herr := r.Head(ctx, br.b.Timeline)
			if herr != nil {
				t.Fatal(herr)
			}
			nb, berr := r.CreateBranch(ctx, "p", fmt.Sprintf("b%d", len(branches)), br.b, h.LSN)
			if berr != nil {
				t.Fatal(berr)
			}
			child := newBranch(nb, len(branches))
			docs, _ := br.model.Find(ctx, bson.D{})
			var all []bson.Raw
			if err := docs.All(ctx, &all); err != nil {
				t.Fatal(err)
			}
			for _, d := range all {
				if _, err := child.model.InsertOne(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			for id := range br.ids {
				child.ids[id] = true
			}
			branches = append(branches, child)
			continue
		case k < 35:
			n := 1 + rng.IntN(3)
			var docs []bson.Raw
			for len(docs) < n {
				id := rng.Int32N(400)
				if !br.ids[id] {
					docs = append(docs, newDoc(id))
					br.ids[id] = true
				}
			}
			if rng.IntN(20) == 0 {
				// A duplicate must fail in argon and change nothing.
				if id, ok := pickID(br); ok && !containsID(docs, id) {
					dup := append(append([]bson.Raw{}, docs...), newDoc(id))
					var dke *workdb.DuplicateKeyError
					if _, err := br.w.Insert(ctx, "c", dup, info); !errors.As(err, &dke) {
						t.Fatalf("op %d: duplicate insert: %v", op, err)
					}
				}
			}
			_, err = br.w.Insert(ctx, "c", docs, info)
			anys := make([]any, len(docs))
			for i := range docs {
				anys[i] = docs[i]
			}
			if _, merr := br.model.InsertMany(ctx, anys); merr != nil {
				t.Fatal(merr)
			}
		case k < 65:
			var filter bson.Raw
			many := rng.IntN(2) == 0
			if many {
				filter = marshal(bson.D{{Key: "k", Value: bson.D{{Key: "$lt", Value: rng.Int32N(100)}}}})
			} else {
				id, _ := pickID(br)
				filter = marshal(bson.D{{Key: "_id", Value: id}})
			}
			var update bson.D
			switch rng.IntN(5) {
			case 0:
				update = bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: value()}}}}
			case 1:
				update = bson.D{{Key: "$inc", Value: bson.D{{Key: "k", Value: rng.Int32N(5) - 2}}}}
			case 2:
				update = bson.D{{Key: "$unset", Value: bson.D{{Key: "v", Value: ""}}}}
			case 3:
				update = bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: rng.Int32N(9)}}}}
			default:
				update = bson.D{{Key: "$set", Value: bson.D{{Key: "n.deep", Value: value()}}}, {Key: "$inc", Value: bson.D{{Key: "cnt", Value: 1}}}}
			}
			_, err = br.w.Modify(ctx, "c", workdb.Modification{Filter: filter, Update: marshal(update), Many: many}, limitsOf(srv), info)
			if many {
				_, _ = br.model.UpdateMany(ctx, filter, update)
			} else {
				_, _ = br.model.UpdateOne(ctx, filter, update)
			}
		case k < 80:
			id, ok := pickID(br)
			if !ok {
				continue
			}
			filter := marshal(bson.D{{Key: "_id", Value: id}})
			repl := marshal(bson.D{{Key: "k", Value: rng.Int32N(100)}, {Key: "replaced", Value: value()}})
			_, err = br.w.Modify(ctx, "c", workdb.Modification{Filter: filter, Replacement: repl}, limitsOf(srv), info)
			if _, merr := br.model.ReplaceOne(ctx, filter, repl); merr != nil {
				t.Fatal(merr)
			}
		default:
			many := rng.IntN(4) == 0
			var filter bson.Raw
			if many {
				filter = marshal(bson.D{{Key: "k", Value: bson.D{{Key: "$gt", Value: 90 + rng.Int32N(10)}}}})
			} else {
				id, ok := pickID(br)
				if !ok {
					continue
				}
				filter = marshal(bson.D{{Key: "_id", Value: id}})
			}
			// Track which ids go, from the model's own answer.
			cur, ferr := br.model.Find(ctx, filter, options.Find().SetProjection(byID))
			if ferr != nil {
				t.Fatal(ferr)
			}
			var gone []bson.Raw
			if err := cur.All(ctx, &gone); err != nil {
				t.Fatal(err)
			}
			_, err = br.w.Modify(ctx, "c", workdb.Modification{Filter: filter, Delete: true, Many: many}, limitsOf(srv), info)
			if many {
				_, _ = br.model.DeleteMany(ctx, filter)
			} else {
				_, _ = br.model.DeleteOne(ctx, filter)
			}
			if many || len(gone) > 0 {
				for _, d := range gone {
					delete(br.ids, d.Lookup("_id").Int32())
					if !many {
						break
					}
				}
			}
		}
		if err != nil {
			t.Fatalf("op %d on %s: %v", op, br.b.Name, err)
		}
		if rng.IntN(50) == 0 {
			h, err := r.Head(ctx, br.b.Timeline)
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, sample{tl: br.b.Timeline, lsn: h.LSN, want: dump(br.model)})
		}
	}

	for _, br := range branches {
		docs, err := br.w.Find(ctx, "c", workdb.Query{Sort: byID})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := dumpDocs(docs), dump(br.model); !bytes.Equal(got, want) {
			t.Fatalf("branch %s differs from the model:\nargon:\n%s\nmodel:\n%s", br.b.Name, got, want)
		}
		// The fingerprint kept up to date write by write equals one
		// computed from scratch.
		m, err := br.w.Marker(ctx)
		if err != nil {
			t.Fatal(err)
		}
		now, err := workdb.ScanSums(ctx, br.w.DB)
		if err != nil {
			t.Fatal(err)
		}
		if m.Sums == nil || !now.Equal(m.Sums) {
			t.Fatalf("branch %s: marker fingerprint %v, database %v", br.b.Name, m.Sums, now)
		}
	}
	for _, s := range samples {
		owner, err := r.Owner(ctx, s.tl, s.lsn)
		if err != nil {
			t.Fatal(err)
		}
		v, err := workdb.OpenView(ctx, r, owner, s.lsn)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := v.Find(ctx, "c", workdb.Query{Sort: byID})
		if err != nil {
			t.Fatal(err)
		}
		if got := dumpDocs(docs); !bytes.Equal(got, s.want) {
			t.Fatalf("state %s@%d differs from the model:\nargon:\n%s\nmodel:\n%s", s.tl, s.lsn, got, s.want)
		}
	}
	t.Logf("%d operations on %d branches, %d past states checked", ops, len(branches), len(samples))
}

func containsID(docs []bson.Raw, id int32) bool {
	for _, d := range docs {
		if d.Lookup("_id").Int32() == id {
			return true
		}
	}
	return false
}

// limitsOf gives the engine's limits on what it stores, as argon applies
// them.
func limitsOf(srv *enginetest.Server) workdb.Limits {
	switch {
	case srv.Embedded:
		return workdb.Limits{Engine: workdb.EmbeddedEngine}
	case srv.FerretDB:
		return workdb.Limits{Engine: workdb.FerretDBServer}
	}
	return workdb.Limits{}
}

package workdb_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// An update or delete of many documents gives, document for document and
// byte for byte, what the engine's own updateMany or deleteMany gives on a
// plain copy of the data, and the log folds to the same state, whichever
// way argon drives the engine: by _id, by the user's filter, by the filter
// narrowed to ranges of _id (mixed _id types), or by _id again when the
// _ids have a type argon does not order (doubles).
func TestModifyManyMatchesEngine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		few, max  int
		doubleIDs bool
	}{
		{"by id", 1000, 1000, false},
		{"by filter", 5, 1000, false},
		{"by ranges", 5, 7, false},
		{"by id, unordered ids", 5, 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			workdb.SetBulkLimits(t, tc.few, tc.max)
			modifyManyMatchesEngine(t, tc.doubleIDs)
		})
	}
}

func modifyManyMatchesEngine(t *testing.T, doubleIDs bool) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	plain := srv.Client.Database(srv.DB + "_plain").Collection("c")
	t.Cleanup(func() { _ = plain.Database().Drop(context.Background()) })

	var docs []bson.Raw
	for i := 0; i < 60; i++ {
		var id any
		switch {
		case doubleIDs && i%2 == 0:
			id = float64(i) + 0.5
		case i%4 == 0:
			id = fmt.Sprintf("s%02d", i)
		case i%4 == 1:
			id = int32(i)
		case i%4 == 2:
			id = int64(i) << 40
		default:
			id = bson.ObjectID{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i)}
		}
		d := bson.D{{Key: "_id", Value: id}, {Key: "kind", Value: []string{"a", "b", "c"}[i%3]}, {Key: "n", Value: int32(i)}}
		if i%5 != 0 {
			d = append(d, bson.E{Key: "sub", Value: bson.D{{Key: "x", Value: i}, {Key: "tags", Value: bson.A{"t"}}}})
		}
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, raw)
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "load"}); err != nil {
		t.Fatal(err)
	}
	anys := make([]any, len(docs))
	for i := range docs {
		anys[i] = docs[i]
	}
	if _, err := plain.InsertMany(ctx, anys); err != nil {
		t.Fatal(err)
	}

	raw := func(s string) bson.Raw {
		var v bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(s), false, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct{ filter, update string }{
		{`{"kind": "a"}`, `{"$inc": {"n": 100}}`},
		// Leaves the documents with n of 30 or more as they were.
		{`{}`, `{"$max": {"n": 30}}`},
		{`{}`, `{"$set": {"sub.x": 7}, "$push": {"sub.tags": "u"}}`},
		{`{"kind": {"$in": ["b", "c"]}}`, `{"$unset": {"sub": ""}}`},
		{`{"n": {"$gte": 100}}`, `{"$rename": {"kind": "k"}, "$max": {"n": 130}}`},
		{`{"k": "a"}`, ``},
		{`{}`, `{"$set": {"last": true}}`},
		{`{"n": {"$lt": 10}}`, ``},
	}
	for _, s := range steps {
		m := workdb.Modification{Filter: raw(s.filter), Many: true}
		var nres int64
		if s.update == "" {
			m.Delete = true
			res, err := plain.DeleteMany(ctx, m.Filter)
			if err != nil {
				t.Fatal(err)
			}
			nres = res.DeletedCount
		} else {
			m.Update = raw(s.update)
			res, err := plain.UpdateMany(ctx, m.Filter, m.Update)
			if err != nil {
				t.Fatal(err)
			}
			nres = res.ModifiedCount
		}
		res, err := w.Modify(ctx, "c", m, workdb.Limits{}, wal.CommitInfo{Message: s.filter})
		if err != nil {
			t.Fatalf("%s %s: %v", s.filter, s.update, err)
		}
		if got := int64(res.Modified + res.Deleted); got != nres {
			t.Errorf("%s %s: argon changed %d documents, the engine %d", s.filter, s.update, got, nres)
		}
		checkState(t, r, b, w, byKey(t, plain), fmt.Sprintf("after %s %s", s.filter, s.update))
	}
	// No scratch database is left behind.
	names, err := srv.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(n, "-scratch-") {
			t.Errorf("scratch database %s left behind", n)
		}
	}
	// One an interrupted update of this repo left an hour ago is dropped
	// by gc; a young one (an update may be using it), one of another
	// metadata database whose prefix hashes alike, and one without an
	// owner record are left alone.
	scratch := func(suffix, meta string, age time.Duration) string {
		db := srv.Client.Database(r.DatabasePrefix() + "-scratch-" + suffix)
		if meta != "" {
			if _, err := db.Collection(workdb.MarkerCollection).InsertOne(ctx, bson.D{{Key: "_id", Value: "owner"},
				{Key: "meta", Value: meta}, {Key: "created_at", Value: time.Now().Add(-age)}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
		return db.Name()
	}
	old := scratch("000000000001", r.DB.Name(), 2*time.Hour)
	keep := map[string]bool{
		scratch("000000000002", r.DB.Name(), time.Minute):          true,
		scratch("000000000003", r.DB.Name()+"-other", 2*time.Hour): true,
		scratch("000000000004", "", 0):                             true,
	}
	n, err := workdb.DropViews(ctx, r)
	if err != nil || n != 1 {
		t.Fatalf("gc dropped %d databases (%v), want 1", n, err)
	}
	names, err = srv.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == old {
			t.Errorf("gc left scratch database %s", n)
		}
		delete(keep, n)
	}
	for n := range keep {
		t.Errorf("gc dropped %s, which it must leave", n)
	}
	if !srv.Embedded {
		for _, n := range names {
			if strings.HasPrefix(n, r.DatabasePrefix()+"-scratch-00000000000") {
				_ = srv.Client.Database(n).Drop(ctx)
			}
		}
	}
}

// checkState compares collection c of the branch's working database and
// of the fold of its log at the head with want, byte for byte.
func checkState(t *testing.T, r *wal.Repo, b *wal.Branch, w *workdb.Branch, want map[string]bson.Raw, when string) {
	t.Helper()
	ctx := context.Background()
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Fold(ctx, b.Timeline, head.LSN, "c")
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bson.Raw{}
	for _, d := range st.Docs("c") {
		logged[string(wal.KeyOf(d.Lookup("_id")))] = d
	}
	for name, have := range map[string]map[string]bson.Raw{"the working database": byKey(t, w.DB.Collection("c")), "the log": logged} {
		if len(have) != len(want) {
			t.Errorf("%s: %s holds %d documents, want %d", when, name, len(have), len(want))
		}
		for k, d := range want {
			if !bytes.Equal(have[k], d) {
				t.Errorf("%s: %s holds %v, want %v", when, name, have[k], d)
			}
		}
	}
}

func byKey(t *testing.T, c *mongo.Collection) map[string]bson.Raw {
	t.Helper()
	cur, err := c.Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var all []bson.Raw
	if err := cur.All(context.Background(), &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.Raw{}
	for _, d := range all {
		out[string(wal.KeyOf(d.Lookup("_id")))] = d
	}
	return out
}

// Applying many puts (a merge) gives the expected documents in the working
// database and in the log, whether the old versions are read and deleted
// by one scan (FerretDB, more than 100 puts) or by $in batches, also when
// a unique value moves from one document to another.
func TestApplyPutsMany(t *testing.T) {
	for _, scan := range []bool{true, false} {
		t.Run(fmt.Sprintf("scan=%v", scan), func(t *testing.T) {
			srv, r, b := waltest.Project(t)
			ctx := context.Background()
			w := commit.New().Open(r, b)
			w.ScanReads = scan && (srv.Embedded || srv.FerretDB)
			mk := func(id int32, u int32, v string) bson.Raw {
				raw, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "u", Value: u}, {Key: "v", Value: v}})
				if err != nil {
					t.Fatal(err)
				}
				return raw
			}
			want := map[string]bson.Raw{}
			var docs []bson.Raw
			for i := int32(0); i < 500; i++ {
				d := mk(i, i, "old")
				docs = append(docs, d)
				want[string(wal.KeyOf(d.Lookup("_id")))] = d
			}
			if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "load"}); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := w.CreateIndex(ctx, "c", mustRaw(t, bson.D{{Key: "u", Value: 1}}), workdb.IndexOptions{Unique: true}, wal.CommitInfo{Message: "index"}); err != nil {
				t.Fatal(err)
			}
			var puts []workdb.Put
			put := func(id int32, d bson.Raw) {
				idv := mustRaw(t, bson.D{{Key: "_id", Value: id}}).Lookup("_id")
				puts = append(puts, workdb.Put{Coll: "c", ID: idv, Doc: d})
				if d == nil {
					delete(want, string(wal.KeyOf(idv)))
				} else {
					want[string(wal.KeyOf(idv))] = d
				}
			}
			// Documents 0-149 take the unique value of the next one (the
			// last of them takes 150's, which 150, deleted, gives up).
			for i := int32(0); i < 150; i++ {
				put(i, mk(i, i+1, "new"))
			}
			for i := int32(150); i < 200; i++ {
				put(i, nil)
			}
			for i := int32(1000); i < 1030; i++ {
				put(i, mk(i, i, "added"))
			}
			h, err := r.Head(ctx, b.Timeline)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := w.ApplyPuts(ctx, puts, h.LSN, wal.CommitInfo{Message: "merge"}); err != nil {
				t.Fatal(err)
			}
			checkState(t, r, b, w, want, "after the merge")
		})
	}
}

func mustRaw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	raw, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// An application that writes to the working database while an update of
// many documents is evaluated in the scratch database makes the update
// fail with nothing written, its own change intact: a changed matched
// document, or a new document the filter matches.
func TestModifyManyRefusesConcurrentChange(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  func(c *mongo.Collection) error
	}{
		{"changed document", func(c *mongo.Collection) error {
			_, err := c.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: int32(7)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "tag", Value: "app"}}}})
			return err
		}},
		{"new matching document", func(c *mongo.Collection) error {
			_, err := c.InsertOne(context.Background(), bson.D{{Key: "_id", Value: int32(1000)}, {Key: "n", Value: int32(0)}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			workdb.SetBulkLimits(t, 5, 1000) // the filter path: the widest window
			srv, r, b := waltest.Project(t)
			w := commit.New().Open(r, b)
			w.ScanReads = srv.Embedded || srv.FerretDB
			if !w.ScanReads {
				t.Skip("the scratch evaluation is FerretDB's path")
			}
			var docs []bson.Raw
			for i := int32(0); i < 250; i++ {
				docs = append(docs, mustRaw(t, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}}))
			}
			ctx := context.Background()
			if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "load"}); err != nil {
				t.Fatal(err)
			}
			c := w.DB.Collection("c")
			once := false
			ctx = workdb.WithProgress(ctx, func(what string, n int) {
				if what == "updating" && !once {
					once = true
					if err := tc.app(c); err != nil {
						t.Error(err)
					}
				}
			})
			before := byKey(t, c)
			m := workdb.Modification{Filter: mustRaw(t, bson.D{}), Update: mustRaw(t, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}), Many: true}
			_, err := w.Modify(ctx, "c", m, workdb.Limits{}, wal.CommitInfo{Message: "inc"})
			if err == nil || !strings.Contains(err.Error(), "changed during the write") {
				t.Fatalf("update during an application's write: %v, want a failure naming the change", err)
			}
			if !once {
				t.Fatal("the application's write never ran")
			}
			after := byKey(t, c)
			for k, d := range before {
				if after[k] == nil {
					t.Errorf("document %x lost", k)
				} else if !bytes.Equal(after[k], d) && !bytes.Contains(after[k], []byte("app")) {
					t.Errorf("document %x changed by the failed update: %v", k, bson.Raw(after[k]))
				}
			}
			if tc.name == "changed document" && !bytes.Contains(after[string(wal.KeyOf(mustRaw(t, bson.D{{Key: "_id", Value: int32(7)}}).Lookup("_id")))], []byte("app")) {
				t.Error("the application's change to _id 7 was undone")
			}
			if len(after) != len(before)+map[bool]int{true: 1, false: 0}[tc.name == "new matching document"] {
				t.Errorf("%d documents after, %d before", len(after), len(before))
			}
		})
	}
}

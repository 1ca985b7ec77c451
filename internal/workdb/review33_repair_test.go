package workdb_test

// Review 33 of bc42399: Repair past a thousand keys on FerretDB reads the
// touched documents with one scan of the collection (readKeys).

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

func review33Key(coll string, id any) wal.KeyRef {
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	return wal.KeyRef{Coll: coll, Key: wal.KeyOf(bson.Raw(raw).Lookup("_id"))}
}

// _ids of several types that the server takes for equal (int32 10 and
// int64 10, int32 0 and -0.0, stored 0.0), a double no one committed, and
// an application's uncommitted documents of equal-looking types: the
// repair ends the touched keys as the log holds them and keeps the
// application's documents, with the scan (ScanReads) as with $in.
func TestReview33RepairMixedTypes(t *testing.T) {
	t.Parallel()
	for _, scans := range []bool{false, true} {
		_, r, b := waltest.Project(t)
		ctx := context.Background()
		w := commit.New().Open(r, b)
		var docs []bson.Raw
		for i := 0; i < 1100; i++ {
			raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: 1}})
			docs = append(docs, raw)
		}
		res, err := w.Insert(ctx, "c", docs, wal.CommitInfo{})
		if err != nil {
			t.Fatal(err)
		}
		c := w.DB.Collection("c")
		var keys []wal.KeyRef
		// The failed write: every committed document at v 99, 10 and 0
		// replaced by equal values of other types, 2000.5 inserted.
		if _, err := c.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 99}}}}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1100; i++ {
			keys = append(keys, review33Key("c", int32(i)))
		}
		for _, id := range []any{int32(10), int32(0)} {
			if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []any{int64(10), 0.0, 2000.5} {
			if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: 99}}); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, review33Key("c", id))
		}
		keys = append(keys, review33Key("c", math.Copysign(0, -1)))
		// The application's, not touched.
		for _, id := range []any{int64(5000), 6000.0, "app"} {
			if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "app", Value: true}}); err != nil {
				t.Fatal(err)
			}
		}
		w.ScanReads = scans
		if err := w.Repair(ctx, res.Head, keys); err != nil {
			t.Fatalf("scans %v: %v", scans, err)
		}
		cur, err := c.Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		v1 := 0
		for cur.Next(ctx) {
			id := cur.Current.Lookup("_id")
			if v, ok := cur.Current.Lookup("v").AsInt64OK(); ok && v == 1 && id.Type == bson.TypeInt32 {
				v1++
				continue
			}
			got = append(got, fmt.Sprintf("%s %s", id.Type, cur.Current))
		}
		sort.Strings(got)
		if v1 != 1100 || len(got) != 3 {
			t.Errorf("scans %v: %d committed documents back at v 1 (want 1100), others %q (want the application's 3)", scans, v1, got)
		}
	}
}

// A failed insert of 2,000 documents on FerretDB (ScanReads), one of
// whose _ids (int32 1700) equals an application's uncommitted document's
// (int64 1700, and 1800.0 for int32 1800), and whose last one is
// committed: the repair takes out what the insert put there and keeps the
// application's documents and its change to a committed one.
func TestReview33FailedInsertBesideEqualApplicationIDs(t *testing.T) {
	t.Parallel()
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: "committed"}, {Key: "v", Value: 1}})
	if _, err := w.Insert(ctx, "c", []bson.Raw{raw}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	c := w.DB.Collection("c")
	for _, id := range []any{int64(1700), 1800.0} {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "app", Value: true}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "committed"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 7}}}}); err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	for i := 0; i < 2000; i++ {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
		docs = append(docs, raw)
	}
	raw, _ = bson.Marshal(bson.D{{Key: "_id", Value: "committed"}})
	docs = append(docs, raw)
	_, err := w.Insert(ctx, "c", docs, wal.CommitInfo{})
	t.Logf("insert: %v", err)
	if err == nil {
		t.Fatal("the insert succeeded")
	}
	cur, err := c.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for cur.Next(ctx) {
		got = append(got, cur.Current.String())
	}
	sort.Strings(got)
	if len(got) != 3 {
		t.Errorf("c holds %d documents after the failed insert, want the application's 2 and the committed one (at v 7): %.600q", len(got), got)
	}
	t.Logf("%q", got)
}

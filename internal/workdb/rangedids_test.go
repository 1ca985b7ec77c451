package workdb

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/enginetest"
)

// rangedIDsFilter matches exactly the documents idsFilter matches, by the
// server's own comparison: integer ids of both widths, doubles of the same
// value in the collection (the $in of 5 matches 5.0), ids of the list
// that no document has, other types beside them, and documents whose _id
// is of another type that sorts between the runs' bounds. Asked of the
// engine itself, with the filter's runs cut small so that there are many.
func TestRangedIDsFilterMatchesWhatIdsFilterMatches(t *testing.T) {
	t.Parallel()
	srv := enginetest.Start(t)
	ctx := context.Background()
	c := srv.Client.Database(srv.DB + "_ranged").Collection("c")
	var docs []any
	for i := range 3000 {
		var id any = int32(i)
		switch i % 7 {
		case 1:
			id = int64(i)
		case 2:
			id = float64(i)
		case 3:
			id = fmt.Sprint(i)
		}
		docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: i}})
	}
	docs = append(docs, bson.D{{Key: "_id", Value: time.UnixMilli(1e12).UTC()}}, bson.D{{Key: "_id", Value: 1500.5}},
		bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: 1}}}}, bson.D{{Key: "_id", Value: int64(1) << 40}})
	if _, err := c.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	raw := func(v any) bson.RawValue {
		typ, b, err := bson.MarshalValue(v)
		if err != nil {
			t.Fatal(err)
		}
		return bson.RawValue{Type: typ, Value: b}
	}
	// Every second number up to 4,500 (1,500 past the collection's end),
	// as 32- or 64-bit integers in turn, unsorted: enough for the runs
	// of rangedIDsFilter; a few strings and a date; a 64-bit id past
	// 2^32.
	var ids []bson.RawValue
	for i := 4499; i >= 0; i -= 2 {
		if i%4 == 1 {
			ids = append(ids, raw(int32(i)))
		} else {
			ids = append(ids, raw(int64(i)))
		}
	}
	ids = append(ids, raw("10"), raw("nothere"), raw(time.UnixMilli(1e12).UTC()), raw(int64(1)<<40))
	matched := func(f bson.D) []string {
		t.Helper()
		cur, err := c.Find(ctx, f, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for cur.Next(ctx) {
			out = append(out, cur.Current.Lookup("_id").String())
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	want := matched(idsFilter(ids))
	if len(want) < 1200 {
		t.Fatalf("the plain $in matched %d documents: the test's data is wrong", len(want))
	}
	for _, n := range []int{len(ids), 100, 20} {
		f := rangedIDsFilterFrom(ids[:n], min(n, rangedFrom))
		or, ok := f[0].Value.(bson.A)
		if f[0].Key != "$or" || !ok || len(or) < 2 {
			t.Fatalf("%d ids: the filter is {%s: ...} with %d parts, want an $or of runs", n, f[0].Key, len(or))
		}
		if n == len(ids) {
			if got := matched(f); !slices.Equal(got, want) {
				t.Errorf("%d ids: the runs matched %d documents, the plain $in %d", n, len(got), len(want))
			}
			continue
		}
		if got, want := matched(f), matched(idsFilter(ids[:n])); !slices.Equal(got, want) {
			t.Errorf("%d ids: the runs matched %v, the plain $in %v", n, got, want)
		}
	}
	// And a delete by the runs removes exactly those documents.
	w := &Branch{ScanReads: true}
	n, err := w.deleteIDs(ctx, c, ids)
	if err != nil {
		t.Fatal(err)
	}
	if int(n) != len(want) {
		t.Errorf("deleteIDs deleted %d documents, want %d", n, len(want))
	}
	if left := matched(idsFilter(ids)); len(left) != 0 {
		t.Errorf("after deleteIDs %d documents of the ids are left", len(left))
	}
}

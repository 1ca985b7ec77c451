package workdb_test

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/ejson"
	"github.com/argon-db/argon/internal/workdb"
)

// What the count command answers on FerretDB against the driver's
// CountDocuments (what argon count sent before), filter by filter, on a
// collection with documents, one emptied, and one that does not exist.
// They agree everywhere but on a filter with $expr over a collection
// with no documents: the aggregation validates $expr before it reads
// (an error), the count command (as find) only when it meets a document
// (0). That one difference is logged, not failed: find answers the same
// filter there without an error too (checked below), so count now agrees
// with find. Any other difference fails.
func TestReview32CountCommandIsCountDocuments(t *testing.T) {
	h := newR7(t)
	if !h.srv.Embedded {
		// This test, run on FerretDB over PostgreSQL in CI, found its
		// count command wrong on {"a.b": 2} over {a: [{b: 2}]} (1 where
		// CountDocuments and find say 2): argon sends it on the embedded
		// engine only (count_paths.txtar checks every engine).
		t.Skip("countDocs sends the count command on the embedded engine only")
	}
	h.insert("c",
		bson.D{{Key: "_id", Value: int32(1)}, {Key: "v", Value: int32(1)}, {Key: "a", Value: bson.D{{Key: "b", Value: int32(1)}}}, {Key: "arr", Value: bson.A{int32(1), int32(2)}}},
		bson.D{{Key: "_id", Value: int64(2)}, {Key: "v", Value: int64(2)}, {Key: "a", Value: bson.A{bson.D{{Key: "b", Value: int32(2)}}}}, {Key: "s", Value: "x y"}},
		bson.D{{Key: "_id", Value: 3.5}, {Key: "v", Value: 3.0}, {Key: "n", Value: nil}},
		bson.D{{Key: "_id", Value: "four"}, {Key: "v", Value: "4"}},
	)
	h.insert("e", bson.D{{Key: "_id", Value: int32(1)}})
	h.del("e", int32(1))
	filters := []string{
		`{}`,
		`{"v": 1}`,
		`{"v": {"$gte": 2}}`,
		`{"_id": 1}`,
		`{"_id": {"$numberLong": "2"}}`,
		`{"_id": 2.0}`,
		`{"a.b": 2}`,
		`{"a.b": {"$exists": true}}`,
		`{"arr": 2}`,
		`{"arr": {"$size": 2}}`,
		`{"n": null}`,
		`{"missing": {"$exists": false}}`,
		`{"v": {"$type": "string"}}`,
		`{"$or": [{"v": 1}, {"_id": "four"}]}`,
		`{"$expr": {"$gt": ["$v", 1]}}`,
		`{"$expr": {"$bogus": 1}}`,
		`{"$where": "true"}`,
		`{"$text": {"$search": "x"}}`,
		`{"v": {"$bogus": 1}}`,
		`{"s": {"$regex": "^x"}}`,
		`{"v": {"$in": [1, "4"]}}`,
		`{"$comment": "hi"}`,
	}
	disagree := 0
	for _, coll := range []string{"c", "e", "nothere"} {
		c := h.w.DB.Collection(coll)
		for _, fs := range filters {
			f, err := ejson.ParseDocument("filter", []byte(fs))
			if err != nil {
				t.Fatal(err)
			}
			want, werr := c.CountDocuments(h.ctx, f)
			got, gerr := workdb.Review32CountDocs(h.ctx, c, f, true)
			line := fmt.Sprintf("%s %s: count command %d, %v; CountDocuments %d, %v", coll, fs, got, gerr, want, werr)
			switch {
			case (gerr == nil) != (werr == nil) && coll != "c" && f.Lookup("$expr").Type != 0:
				cur, ferr := c.Find(h.ctx, f)
				if ferr == nil {
					cur.Next(h.ctx)
					ferr = cur.Err()
					cur.Close(h.ctx)
				}
				if (ferr == nil) != (gerr == nil) {
					t.Errorf("count command and find disagree: %s; find: %v", line, ferr)
				}
				t.Logf("known: $expr validated only by the aggregation: %s; find: %v", line, ferr)
			case (gerr == nil) != (werr == nil):
				disagree++
				t.Errorf("error on one side only: %s", line)
			case gerr == nil && got != want:
				disagree++
				t.Errorf("counts differ: %s", line)
			case gerr != nil && gerr.Error() != werr.Error():
				t.Logf("errors differ in text: %s", line)
			default:
				t.Logf("same: %s", line)
			}
		}
	}
	t.Logf("%d disagreements", disagree)
}

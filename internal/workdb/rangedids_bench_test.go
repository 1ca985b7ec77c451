package workdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/enginetest"
)

// A delete of the documents with n integer _ids (every _id i with i % 90
// < 10, a ninth of them) from a collection of docs documents: by
// rangedIDsFilter, as deleteIDs sends it on FerretDB, against the plain
// {_id: {$in: ids}} it sent before, on two copies of the collection in
// the same engine, alternately. The deleted documents are put back,
// untimed, before each iteration. (BENCHMARKS, "Deletes of many integer
// _ids".)
func BenchmarkDeleteIntIDs(b *testing.B) {
	for _, docs := range []int{20000, 100000} {
		b.Run(fmt.Sprintf("docs=%d", docs), func(b *testing.B) {
			if docs > 20000 && testing.Short() {
				b.Skip("loads 100,000 documents")
			}
			srv := enginetest.Start(b)
			ctx := context.Background()
			db := srv.Client.Database(srv.DB + "_del")
			ranged, plain := db.Collection("ranged"), db.Collection("plain")
			var all, gone []any
			var ids []bson.RawValue
			for i := range docs {
				d := bson.D{{Key: "_id", Value: int32(i)}, {Key: "name", Value: fmt.Sprintf("user%d", i)}, {Key: "age", Value: int32(i % 90)}}
				all = append(all, d)
				if i%90 < 10 {
					gone = append(gone, d)
					typ, v, _ := bson.MarshalValue(int32(i))
					ids = append(ids, bson.RawValue{Type: typ, Value: v})
				}
			}
			for _, c := range []*mongo.Collection{ranged, plain} {
				if _, err := c.InsertMany(ctx, all); err != nil {
					b.Fatal(err)
				}
			}
			del := func(c *mongo.Collection, f bson.D) time.Duration {
				t0 := time.Now()
				r, err := c.DeleteMany(ctx, f)
				if err != nil || int(r.DeletedCount) != len(ids) {
					b.Fatalf("deleted %v of %d: %v", r, len(ids), err)
				}
				return time.Since(t0)
			}
			var ta, tn time.Duration
			b.ResetTimer()
			for range b.N {
				tn += del(plain, idsFilter(ids))
				ta += del(ranged, rangedIDsFilter(ids))
				b.StopTimer()
				for _, c := range []*mongo.Collection{ranged, plain} {
					if _, err := c.InsertMany(ctx, gone); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(ta.Microseconds())/float64(b.N), "argon-µs/op")
			b.ReportMetric(float64(tn.Microseconds())/float64(b.N), "native-µs/op")
			b.ReportMetric(float64(ta)/float64(tn), "ratio")
		})
	}
}

package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A lookup of a few keys that the key records cannot answer (an older
// commit without records in range), so that it reads the entries
// collection, over a 50,000-entry commit whose chunks carry kh (log
// format 2, as it was written on an engine that scans) or not (format
// 3): the time of a lookup and the bytes of the entries collection's
// replies. Both layouts in one run, on the same engine (review37; written
// up in BENCHMARKS, "Log format 3").
//
//	go test -run '^$' -bench LookupPastKeyRecords -benchtime 5x ./internal/wal/
func BenchmarkLookupPastKeyRecords(b *testing.B) {
	const n = 50000
	for _, format := range []int{2, 3} {
		b.Run(fmt.Sprintf("format=%d", format), func(b *testing.B) {
			l := newChainLog(b)
			ctx := context.Background()
			r37Format2(l, l.main, "old", []Entry{l.entry(l.main, 1, "c", OpPut, "old", -1)})
			var es []Entry
			for i := 0; i < n; i++ {
				es = append(es, l.entry(l.main, int64(i+2), "c", OpPut, "big", i))
			}
			l.commit(l.main, "big", es)
			if format == 2 {
				for _, c := range chunkEntriesOf(es) {
					if _, err := l.r.DB.Collection(collEntries).UpdateOne(ctx, bson.D{{Key: "_id", Value: c.ID}},
						bson.D{{Key: "$set", Value: bson.D{{Key: "kh", Value: c.KH}}}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			var mu sync.Mutex
			replyBytes := 0
			mon := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
				if e.CommandName == "find" || e.CommandName == "getMore" {
					mu.Lock()
					replyBytes += len(e.Reply)
					mu.Unlock()
				}
			}}
			client, err := mongo.Connect(options.Client().ApplyURI(l.uri).SetMonitor(mon))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
			mr := Open(client, l.r.DB.Name())
			mr.Scans = true
			keys := []int{3, 25000, 49999}
			want := r37Fold(b, l.r, l.main, n+1, keys)
			mu.Lock()
			replyBytes = 0
			mu.Unlock()
			var took time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				got := r37Latest(b, mr, true, l.main, n+1, keys)
				took += time.Since(t0)
				if got != want {
					b.Fatalf("lookup: %s, want %s", got, want)
				}
			}
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			b.ReportMetric(float64(took.Microseconds())/float64(b.N)/1000, "lookup-ms")
			b.ReportMetric(float64(replyBytes)/float64(b.N), "reply-B")
		})
	}
}

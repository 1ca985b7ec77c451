package workdb_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// Many changed keys (an update of many, deletes, inserts in one commit)
// with limits and skips at every boundary; then concurrent readers at
// LSNs near one image, none of whose view exists yet: every answer is a
// full view's, one view of the image is published, and no database is
// left that no record names.
func TestReview7ManyKeysAndConcurrentReaders(t *testing.T) {
	t.Parallel()
	h := newR7(t)
	var docs []bson.D
	for i := int32(0); i < 120; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}, {Key: "tag", Value: i % 5}})
	}
	h.insert("c", docs...)
	img := h.image()
	lsns := []int64{}
	h.modify("c", workdb.Modification{Filter: h.raw(bson.D{{Key: "tag", Value: bson.D{{Key: "$in", Value: bson.A{int32(0), int32(1)}}}}}),
		Update: h.raw(bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: int32(1000)}}}}), Many: true})
	lsns = append(lsns, h.head())
	h.modify("c", workdb.Modification{Filter: h.raw(bson.D{{Key: "tag", Value: int32(2)}, {Key: "v", Value: bson.D{{Key: "$lt", Value: int32(60)}}}}), Delete: true, Many: true})
	lsns = append(lsns, h.head())
	docs = nil
	for i := int32(0); i < 30; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: 500 + i}, {Key: "v", Value: -i}, {Key: "tag", Value: i % 5}})
	}
	for i := int32(2); i < 60; i += 5 { // the deleted ones, back
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}, {Key: "tag", Value: int32(2)}})
	}
	h.insert("c", docs...)
	lsns = append(lsns, h.head())
	f := func(d bson.D) bson.Raw { return h.raw(d) }
	var reads []r7Read
	for _, sk := range []int64{0, 1, 47, 48, 71, 72, 119, 120, 149, 150, 151} {
		for _, lim := range []int64{0, 1, 2, 25} {
			reads = append(reads, r7Read{fmt.Sprintf("skip %d limit %d", sk, lim), workdb.Query{Skip: sk, Limit: lim}})
		}
	}
	reads = append(reads,
		r7Read{"tag 0 limit 3", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(0)}}), Limit: 3}},
		r7Read{"tag 2 skip 10 limit 3 no _id", workdb.Query{Filter: f(bson.D{{Key: "tag", Value: int32(2)}}), Skip: 10, Limit: 3, Projection: f(bson.D{{Key: "_id", Value: 0}})}},
		r7Read{"v gt 100", workdb.Query{Filter: f(bson.D{{Key: "v", Value: bson.D{{Key: "$gt", Value: int32(100)}}}})}},
	)
	overlaid, _ := h.compare(h.b.Timeline, lsns, []string{"c"}, reads)
	t.Logf("%d of %d reads over the image", overlaid, len(lsns)*len(reads))

	// Concurrent readers, no view yet.
	h.dropViews()
	type job struct {
		lsn int64
		rd  r7Read
	}
	var jobs []job
	for _, l := range lsns {
		for _, rd := range reads[:8] {
			jobs = append(jobs, job{l, rd})
		}
		jobs = append(jobs, job{l, reads[len(reads)-1]})
	}
	got := make([][]bson.Raw, len(jobs))
	counts := make([]int64, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := workdb.OpenCollViews(h.r, h.b.Timeline, j.lsn)
			got[i], errs[i] = v.Find(h.ctx, "c", j.rd.q)
			if errs[i] == nil {
				counts[i], errs[i] = workdb.OpenCollViews(h.r, h.b.Timeline, j.lsn).Count(h.ctx, "c", j.rd.q.Filter)
			}
		}()
	}
	wg.Wait()
	h.noScratch()
	// One published view (of the image), and no database of a view that
	// no record names.
	cur, err := h.r.DB.Collection("views").Find(h.ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []bson.M
	if err := cur.All(h.ctx, &recs); err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, rec := range recs {
		named[rec["db"].(string)] = true
	}
	if len(recs) != 1 {
		t.Errorf("%d views published, want 1 (the image's): %v", len(recs), recs)
	}
	names, err := h.r.Client.ListDatabaseNames(h.ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, h.r.DatabasePrefix()+"-view-") && !named[n] {
			t.Errorf("view database %s left that no record names", n)
		}
	}
	h.dropViews()
	plain := *h.r
	plain.NoImages = true
	for i, j := range jobs {
		if errs[i] != nil {
			t.Errorf("at %d, %s: %v", j.lsn, j.rd.name, errs[i])
			continue
		}
		want := h.readOne(&plain, h.b.Timeline, j.lsn, "c", j.rd.q)
		g := r7Answer{docs: got[i], count: counts[i]}
		if !g.same(want) {
			t.Errorf("concurrent, at %d, %s:\n  got  %s\n  want %s", j.lsn, j.rd.name, g, want)
		}
	}
	_ = img
}

package wal

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// r37Key is the key bytes of {_id: int32(i)}.
func r37Key(i int) []byte {
	id, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
	return KeyOf(bson.Raw(id).Lookup("_id"))
}

// r37Lines renders a lookup's answer, one line a key.
func r37Lines(got map[string]*Entry) string {
	var lines []string
	for k, e := range got {
		lines = append(lines, fmt.Sprintf("%x %s@%d %s %s", k, e.TL[len(e.TL)-4:], e.LSN, e.Op, e.Token))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// r37Fold is the answer of a plain fold: every committed entry of coll c
// on tl's ancestry up to at (EachEntry, by the scan of the entries
// collection), the newest of each wanted key.
func r37Fold(t testing.TB, r *Repo, tl string, at int64, keys []int) string {
	t.Helper()
	scans := r.Scans
	r.Scans = false
	defer func() { r.Scans = scans }()
	want := map[string]bool{}
	for _, k := range keys {
		want[string(r37Key(k))] = true
	}
	out := map[string]*Entry{}
	if err := r.EachEntry(context.Background(), tl, 0, at, "c", func(e *Entry) error {
		if want[string(e.KeyBytes)] && e.Op != OpIndex && e.Op != OpDropIndex {
			if cur, ok := out[string(e.KeyBytes)]; !ok || cur.LSN < e.LSN {
				cp := *e
				out[string(e.KeyBytes)] = &cp
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return r37Lines(out)
}

func r37Latest(t testing.TB, r *Repo, scans bool, tl string, at int64, keys []int) string {
	t.Helper()
	old := r.Scans
	r.Scans = scans
	defer func() { r.Scans = old }()
	var kbs [][]byte
	for _, k := range keys {
		kbs = append(kbs, r37Key(k))
	}
	got, _, err := r.LatestAtOrBelow(context.Background(), tl, at, "c", kbs, false)
	if err != nil {
		t.Fatal(err)
	}
	return r37Lines(got)
}

// r37Format1 commits es on tl stored one document per entry (log format 1).
func r37Format1(l *chainLog, tl, token string, es []Entry) {
	l.t.Helper()
	ctx := context.Background()
	for _, e := range es {
		if _, err := l.r.DB.Collection(collEntries).InsertOne(ctx, bson.D{{Key: "_id", Value: entryID(tl, e.LSN, token)}, {Key: "tl", Value: tl},
			{Key: "lsn", Value: e.LSN}, {Key: "op", Value: e.Op}, {Key: "coll", Value: e.Coll}, {Key: "kb", Value: e.KeyBytes}, {Key: "doc", Value: e.Doc}, {Key: "token", Value: token}}); err != nil {
			l.t.Fatal(err)
		}
	}
	l.commitSlot(tl, token, es, 0)
}

// r37Format2 commits es on tl as an argon of format 2 wrote them on a
// server that does not scan: chunks with kh, no key records.
func r37Format2(l *chainLog, tl, token string, es []Entry) {
	l.t.Helper()
	ctx := context.Background()
	for _, c := range chunkEntriesOf(es) {
		if _, err := l.r.DB.Collection(collEntries).InsertOne(ctx, c); err != nil {
			l.t.Fatal(err)
		}
	}
	l.commitSlot(tl, token, es, 0)
}

// r37Log builds a log on the embedded engine whose newer commits are of
// format 3 (chunks without kh, written as on an engine that scans):
//
//	main: [old: format 2 (kh, no records) 1..1500 keys 0..1499,
//	       format 1 1501..1510 keys 1400..1409]  (with old)
//	      format 3 commit "alt": 130 entries alternating c and d, the c
//	        ones keys 1000..1064, so 65 chunks of c hold wanted keys
//	        (more than keyedReads);
//	      format 3 commit "m2": puts 5, 1002, 2000; deletes 1003.
//	f:    forked from main inside "alt"; a writer that never committed
//	      (format 3 chunks and key records) at LSNs f's commit then uses,
//	      for keys 5, 1001, 2000, 1064; format 3 commit "f1": deletes
//	      1001, puts 2000 and 7.
func r37Log(t *testing.T, old, unkeyed bool) (l *chainLog, f string, alt, fork, m2, f1 int64) {
	t.Helper()
	l = newChainLog(t)
	l.unkeyed = unkeyed
	ctx := context.Background()
	if _, err := l.r.DB.Collection(collProjects).UpdateOne(ctx, bson.D{{Key: "_id", Value: "p"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "format", Value: 2}}}}); err != nil {
		t.Fatal(err)
	}
	h := l.heads[l.main]
	if old {
		var es []Entry
		for i := 0; i < 1500; i++ {
			es = append(es, l.entry(l.main, int64(i+1), "c", OpPut, "old", i))
		}
		r37Format2(l, l.main, "old", es)
		es = nil
		for i := 0; i < 10; i++ {
			es = append(es, l.entry(l.main, h[1]+int64(i)+1, "c", OpPut, "f1fmt", 1400+i))
		}
		r37Format1(l, l.main, "f1fmt", es)
	}
	var es []Entry
	for i := 0; i < 130; i++ {
		coll, key := "c", 1000+i/2
		if i%2 == 1 {
			coll = "d"
		}
		es = append(es, l.entry(l.main, h[1]+int64(i)+1, coll, OpPut, "alt", key))
	}
	l.commit(l.main, "alt", es)
	alt = h[1]
	fork = alt - 20
	f = l.forkAt("f", fork)
	es = []Entry{
		l.entry(l.main, h[1]+1, "c", OpPut, "m2", 5),
		l.entry(l.main, h[1]+2, "c", OpPut, "m2", 1002),
		l.entry(l.main, h[1]+3, "c", OpPut, "m2", 2000),
		l.entry(l.main, h[1]+4, "c", OpDel, "m2", 1003),
	}
	l.commit(l.main, "m2", es)
	m2 = h[1]
	// The writer on f that never committed: its chunks and key records.
	scans := l.r.Scans
	l.r.Scans = true
	if _, err := l.r.SpillEntries(ctx, "p", []Entry{
		l.entry(f, fork+1, "c", OpPut, "lost", 5), l.entry(f, fork+2, "c", OpPut, "lost", 1001),
		l.entry(f, fork+3, "c", OpPut, "lost", 2000), l.entry(f, fork+4, "c", OpDel, "lost", 1064),
	}); err != nil {
		t.Fatal(err)
	}
	l.r.Scans = scans
	es = []Entry{
		l.entry(f, fork+1, "c", OpDel, "f1", 1001),
		l.entry(f, fork+2, "c", OpPut, "f1", 2000),
		l.entry(f, fork+3, "c", OpPut, "f1", 7),
	}
	l.commit(f, "f1", es)
	f1 = l.heads[f][1]
	return l, f, alt, fork, m2, f1
}

// Whatever mix of chunks a log holds (format 3 without kh, with or
// without key records, format 2 with kh, format 1), a lookup through
// LatestAtOrBelow gives a plain fold's answer, on an engine that scans
// (key records, and their fallbacks: more than keyedReads chunks, a slot
// without records, a record gone) and on a server that does not.
func TestReview37LatestOnFormat3LogsMatchAFold(t *testing.T) {
	type lookup struct {
		name string
		tl   func(main, f string) string
		at   func(alt, fork, m2, f1 int64) int64
		keys []int
	}
	few := []int{5, 7, 1001, 1002, 1003, 1064, 1405, 2000, 3000, 0, 1499}
	var many []int // keys in every one of alt's 65 chunks of c
	for i := 1000; i <= 1064; i++ {
		many = append(many, i)
	}
	many = append(many, 5, 2000, 1405)
	onMain := func(main, f string) string { return main }
	onF := func(main, f string) string { return f }
	lookups := []lookup{
		{"main at m2, few", onMain, func(a, fk, m2, f1 int64) int64 { return m2 }, few},
		{"main at m2, many", onMain, func(a, fk, m2, f1 int64) int64 { return m2 }, many},
		{"main inside alt, many", onMain, func(a, fk, m2, f1 int64) int64 { return a - 7 }, many},
		{"main below alt, few", onMain, func(a, fk, m2, f1 int64) int64 { return a - 130 }, few},
		{"f at f1, few", onF, func(a, fk, m2, f1 int64) int64 { return f1 }, few},
		{"f at f1, many", onF, func(a, fk, m2, f1 int64) int64 { return f1 }, many},
		{"f at the fork, many", onF, func(a, fk, m2, f1 int64) int64 { return fk }, many},
		{"f inside f1, few", onF, func(a, fk, m2, f1 int64) int64 { return fk + 2 }, few},
	}
	for _, v := range []struct {
		name         string
		old, unkeyed bool
		dropRecord   bool
	}{
		{"format 3 alone", false, false, false},
		{"format 3, slots without records", false, true, false},
		{"format 3, a record gone", false, false, true},
		{"beside format 2 and 1", true, false, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			l, f, alt, fork, m2, f1 := r37Log(t, v.old, v.unkeyed)
			ctx := context.Background()
			withKH, err := l.r.DB.Collection(collEntries).CountDocuments(ctx, bson.D{{Key: "kh", Value: bson.D{{Key: "$exists", Value: true}}}})
			if err != nil {
				t.Fatal(err)
			}
			if (withKH > 0) != v.old {
				t.Fatalf("%d chunks with kh", withKH)
			}
			if v.dropRecord {
				// The record of alt's chunk of key 1001 (c) on main.
				res, err := l.r.DB.Collection(collChunkKeys).DeleteOne(ctx, bson.D{{Key: "tl", Value: l.main}, {Key: "token", Value: "alt"}, {Key: "coll", Value: "c"}, {Key: "lsn", Value: alt - 130 + 3}})
				if err != nil || res.DeletedCount != 1 {
					t.Fatalf("delete a record: %v %v", res, err)
				}
			}
			for _, c := range lookups {
				tl, at := c.tl(l.main, f), c.at(alt, fork, m2, f1)
				want := r37Fold(t, l.r, tl, at, c.keys)
				if want == "" && at > 0 {
					t.Fatalf("%s: the fold finds nothing", c.name)
				}
				for _, scans := range []bool{true, false} {
					if got := r37Latest(t, l.r, scans, tl, at, c.keys); got != want {
						t.Errorf("%s (scans %v): LatestAtOrBelow\n%s\nwant (fold)\n%s", c.name, scans, got, want)
					}
				}
				// The same through a client that records its queries: the
				// fallback (a query of the entries collection) is among
				// the paths taken.
				mr, finds := monitored(t, l)
				finds()
				if got := r37Latest(t, mr, true, tl, at, c.keys); got != want {
					t.Errorf("%s (monitored): LatestAtOrBelow\n%s\nwant (fold)\n%s", c.name, got, want)
				}
				scanned := false
				for _, q := range finds() {
					scanned = scanned || (strings.HasPrefix(q, collEntries+" ") && !strings.HasPrefix(q, collEntries+` {"_id": "`))
				}
				// The paths this is meant to cover are taken: more than
				// keyedReads chunks read the entries collection; on a log
				// of keyed format-3 commits alone, a few keys do not.
				if c.name == "main at m2, many" && !scanned {
					t.Errorf("%s: the entries collection was not read", c.name)
				}
				if v.name == "format 3 alone" && c.name == "main at m2, few" && scanned {
					t.Errorf("%s: the key records did not answer", c.name)
				}
			}
		})
	}
}

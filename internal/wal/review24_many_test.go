package wal

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// review24: a lookup whose keys lie in more chunks than keyedReads reads
// the entries collection once instead (and at keyedReads exactly, only
// chunks by _id); either way its answer is EachEntry's. The commit's
// collection changes at every entry, so that each entry is a chunk of
// its own and a key lies in several chunks of one commit; an earlier
// commit and a later inline one hold older and newer values of some keys.
func TestReview24MoreChunksThanKeyedReads(t *testing.T) {
	l := newChainLog(t)
	r, ctx := l.r, context.Background()
	var es []Entry
	for i := 0; i < 200; i++ {
		es = append(es, l.entry(l.main, int64(i+1), "c", OpPut, "m1", i))
	}
	l.commit(l.main, "m1", es) // 1-200, one chunk
	es = nil
	// 201-...: for key i in 0..79, c, d, c, d (a key in two chunks of c
	// within one commit, and in d's with the same bytes).
	lsn := int64(201)
	for i := 0; i < 80; i++ {
		for _, coll := range []string{"c", "d", "c", "d"} {
			op := OpPut
			if coll == "c" && i%5 == 0 && len(es)%4 == 2 {
				op = OpDel
			}
			es = append(es, l.entry(l.main, lsn, coll, op, "m2", i))
			lsn++
		}
	}
	l.commit(l.main, "m2", es)
	head := lsn - 1
	n, err := r.DB.Collection(collChunkKeys).CountDocuments(ctx, bson.D{{Key: "token", Value: "m2"}})
	if err != nil || n != 320 {
		t.Fatalf("m2 has %d key records (%v), want 320", n, err)
	}
	mr, finds := monitored(t, l)
	keysOf := func(from, to int) [][]byte {
		var kbs [][]byte
		for i := from; i < to; i++ {
			kbs = append(kbs, l.entry(l.main, 1, "c", OpPut, "", i).KeyBytes)
		}
		return kbs
	}
	for _, c := range []struct {
		keys   [][]byte
		byKeys bool // answered from the key records alone
	}{
		{keysOf(0, 31), true},    // 62 chunks of c in m2, and m1's: 63
		{keysOf(0, 32), false},   // 65
		{keysOf(0, 80), false},   // 160
		{keysOf(150, 152), true}, // in m1 only: no chunk of m2 holds them
	} {
		for _, coll := range []string{"c", "d"} {
			want := r24Truth(t, r, l.main, head)[coll][false]
			finds()
			got, _, err := mr.LatestAtOrBelow(ctx, l.main, head, coll, c.keys, false)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := r24Lines(got, c.keys), r24Lines(want, c.keys); g != w {
				t.Errorf("%d keys of %s: got\n%s\nwant\n%s", len(c.keys), coll, head24(g), head24(w))
			}
			if coll == "c" && len(got) != len(c.keys) {
				t.Errorf("%d keys of c: %d found", len(c.keys), len(got))
			}
			scan := false
			for _, q := range finds() {
				scan = scan || (strings.HasPrefix(q, collEntries+" ") && !strings.HasPrefix(q, collEntries+` {"_id": "`))
			}
			if coll == "c" && scan == c.byKeys {
				t.Errorf("%d keys of c: read the entries collection: %v, want %v", len(c.keys), scan, !c.byKeys)
			}
		}
	}
}

func head24(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 8 {
		return strings.Join(lines[:8], "\n") + fmt.Sprintf("\n... (%d lines)", len(lines))
	}
	return s
}

package wal

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
)

// The chunk chains give what the query of the entries collection gives
// across a fork taken inside a spilled commit, with a losing writer's
// chunks over the same LSNs, for a collection that only has index entries
// in a spilled commit, and after DeleteCovered removed the loser's
// chunks (found to hold by an adversarial review).
func TestChunkChainsForksLosersAndGC(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	r := Open(srv.Client, srv.DB)
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	_, main, err := r.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(tl string, lsn int64, coll, op, token string, i int) Entry {
		id, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
		e := Entry{TL: tl, LSN: lsn, Op: op, Coll: coll, Token: token, KeyBytes: KeyOf(bson.Raw(id).Lookup("_id"))}
		if op == OpPut {
			e.Doc, _ = bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: lsn}, {Key: "tok", Value: token}})
		}
		if op == OpIndex {
			e, _ = IndexEntry(coll, mustRaw(bson.D{{Key: "name", Value: fmt.Sprintf("ix%d", i)}, {Key: "key", Value: bson.D{{Key: "f", Value: 1}}}}))
			e.TL, e.LSN, e.Token = tl, lsn, token
		}
		return e
	}
	type st struct{ lsn, n int64 }
	heads := map[string]*st{main.Timeline: {0, 0}}
	commit := func(tl, token string, es []Entry) {
		h := heads[tl]
		h.n++
		s := &Slot{TL: tl, N: h.n, Kind: SlotCommit, Base: h.lsn, LSN: h.lsn + int64(len(es)), Token: token, Spilled: true, Stats: Stats(es)}
		if err := r.SpillEntries(ctx, "p", es); err != nil {
			t.Fatal(err)
		}
		if err := r.InsertSlot(ctx, s); err != nil {
			t.Fatal(err)
		}
		h.lsn = s.LSN
	}
	tl := main.Timeline
	var es []Entry
	for i := 1; i <= 2500; i++ {
		coll := "a"
		if i > 1200 {
			coll = "b"
		}
		es = append(es, mk(tl, int64(i), coll, OpPut, "t1", i))
	}
	commit(tl, "t1", es)
	// A loser at 2501..3000 in a (and c), never committed.
	es = nil
	for i := 1; i <= 500; i++ {
		coll := "a"
		if i > 250 {
			coll = "c"
		}
		es = append(es, mk(tl, 2500+int64(i), coll, OpPut, "lose", 9000+i))
	}
	if err := r.SpillEntries(ctx, "p", es); err != nil {
		t.Fatal(err)
	}
	// Commit 2: 2501..3200 in a, then index entries in c only.
	es = nil
	for i := 1; i <= 700; i++ {
		es = append(es, mk(tl, 2500+int64(i), "a", OpPut, "t2", i))
	}
	for i := 1; i <= 3; i++ {
		es = append(es, mk(tl, 3200+int64(i), "c", OpIndex, "t2", i))
	}
	commit(tl, "t2", es)
	// Fork at 1700 (inside commit 1), and a spilled commit there.
	br, err := r.CreateBranch(ctx, "p", "f", main, 1700)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := r.Head(ctx, br.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	heads[br.Timeline] = &st{1700, fh.Slot.N}
	es = nil
	for i := 1; i <= 1500; i++ {
		coll := "b"
		if i%2 == 0 {
			coll = "c"
		}
		es = append(es, mk(br.Timeline, 1700+int64(i), coll, OpPut, "t4", 5000+i))
	}
	commit(br.Timeline, "t4", es)

	read := func(scans bool, tl string, from, to int64, coll string) (string, error) {
		r.Scans = scans
		var b bytes.Buffer
		err := r.EachEntry(ctx, tl, from, to, coll, func(e *Entry) error {
			fmt.Fprintf(&b, "%s %d %s %s %x %x\n", e.TL, e.LSN, e.Op, e.Coll, e.KeyBytes, e.Doc)
			return nil
		})
		return b.String(), err
	}
	check := func(label string) {
		for _, c := range []struct {
			tl       string
			from, to int64
		}{{tl, 0, 3203}, {tl, 2500, 3203}, {tl, 3000, 3201}, {br.Timeline, 0, 3200}, {br.Timeline, 1600, 1800}, {br.Timeline, 1700, 3200}, {br.Timeline, 0, 1700}} {
			for _, coll := range []string{"", "a", "b", "c"} {
				want, err := read(false, c.tl, c.from, c.to, coll)
				if err != nil {
					t.Fatal(err)
				}
				got, err := read(true, c.tl, c.from, c.to, coll)
				if err != nil {
					t.Fatalf("%s chains %s (%d,%d] %q: %v", label, c.tl, c.from, c.to, coll, err)
				}
				if got != want {
					t.Errorf("%s: %s (%d,%d] %q differ: got %d bytes, want %d", label, c.tl, c.from, c.to, coll, len(got), len(want))
				}
			}
		}
	}
	check("before gc")
	n, err := r.DeleteCovered(ctx, tl, 3203, map[string]bool{"t1": true, "t2": true})
	t.Logf("DeleteCovered removed %d entries (%v)", n, err)
	check("after gc")
}

func mustRaw(d bson.D) bson.Raw {
	b, _ := bson.Marshal(d)
	return b
}

package wal

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
)

// On an engine that scans, the spilled entries of a fold's commits are
// read by point reads along each commit's chunks (chunkChains); they must
// be exactly those the one query of the entries collection gives, for
// any range and collection: a commit whose chunks change collection, a
// range starting or ending inside a chunk, deletes, a commit stored one
// document per entry (format 1) and more chunks than chainChunks, where
// the scan is used.
func TestChunkChainsMatchTheScan(t *testing.T) {
	l := newChainLog(t)
	r, ctx, tl := l.r, context.Background(), l.main
	entry := func(lsn int64, coll, op, token string, i int) Entry { return l.entry(tl, lsn, coll, op, token, i) }
	commit := func(token string, es []Entry) { l.commit(tl, token, es) }
	// Commit 1: LSNs 1..1200 in a, 1201..2500 in b (chunks 1..1000,
	// 1001..1200, 1201..2200, 2201..2500).
	var es []Entry
	for i := 1; i <= 2500; i++ {
		coll := "a"
		if i > 1200 {
			coll = "b"
		}
		es = append(es, entry(int64(i), coll, OpPut, "t1", i))
	}
	commit("t1", es)
	// Commit 2: 2501..3200 in a, every third a delete.
	es = nil
	for i := 1; i <= 700; i++ {
		op := OpPut
		if i%3 == 0 {
			op = OpDel
		}
		es = append(es, entry(2500+int64(i), "a", op, "t2", i))
	}
	commit("t2", es)
	// Commit 3: 3201..3210 in b, stored one document per entry as format
	// 1 did.
	s3 := &Slot{TL: tl, N: 3, Kind: SlotCommit, Base: 3200, LSN: 3210, Token: "t3", Spilled: true, Stats: []CollStats{{Coll: "b", Puts: 10}}}
	for i := int64(1); i <= 10; i++ {
		e := entry(3200+i, "b", OpPut, "t3", int(i))
		if _, err := r.DB.Collection(collEntries).InsertOne(ctx, bson.D{{Key: "_id", Value: entryID(tl, e.LSN, "t3")}, {Key: "tl", Value: tl},
			{Key: "lsn", Value: e.LSN}, {Key: "op", Value: e.Op}, {Key: "coll", Value: "b"}, {Key: "kb", Value: e.KeyBytes}, {Key: "doc", Value: e.Doc}, {Key: "token", Value: "t3"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.InsertSlot(ctx, s3); err != nil {
		t.Fatal(err)
	}

	read := func(scans bool, from, to int64, coll string) (string, error) {
		return l.read(scans, tl, from, to, coll)
	}
	defer func(n int) { chainChunks = n }(chainChunks)
	for _, limit := range []int{64, 3} {
		chainChunks = limit
		for _, rg := range [][2]int64{{0, 3210}, {0, 1000}, {0, 1001}, {999, 1201}, {1200, 2500}, {1500, 2700}, {2500, 3200}, {2999, 3000}, {3100, 3205}, {3200, 3210}} {
			for _, coll := range []string{"", "a", "b"} {
				want, err := read(false, rg[0], rg[1], coll)
				if err != nil {
					t.Fatal(err)
				}
				got, err := read(true, rg[0], rg[1], coll)
				if err != nil {
					t.Fatalf("chains, (%d, %d] %q: %v", rg[0], rg[1], coll, err)
				}
				if got != want {
					t.Errorf("chainChunks %d, (%d, %d] of %q: chains and scan differ:\n%s\nwant\n%s", limit, rg[0], rg[1], coll, head(got), head(want))
				}
				// And one chunk at a time, down each commit's chain.
				if lazy, err := l.readByChunk(tl, rg[0], rg[1], coll); err != nil || lazy != want {
					t.Errorf("(%d, %d] of %q by chunk: %v\n%s\nwant\n%s", rg[0], rg[1], coll, err, head(lazy), head(want))
				}
				if want == "" && coll == "" {
					t.Errorf("(%d, %d] of %q: no entries", rg[0], rg[1], coll)
				}
			}
		}
	}

	// The chains alone (not falling back to the scan) give commit 1 and
	// 2's entries; commit 3 (format 1) makes them fall back.
	chainChunks = 64
	slots, err := r.TimelineSlots(ctx, tl, 0, 3210)
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[string][2]int64{"t1": {1100, 2500}, "t2": {2500, 2600}}
	// The entries of a token's chunks within its range: first, last, count.
	inRange := func(got map[string][]*storedEntry, token string) (first, last int64, n int) {
		rg := ranges[token]
		for _, se := range got[token] {
			_ = se.expand(func(e *Entry) error {
				if e.LSN > rg[0] && e.LSN <= rg[1] {
					if n++; n == 1 {
						first = e.LSN
					}
					last = e.LSN
				}
				return nil
			})
		}
		return first, last, n
	}
	got, ok, err := r.chunkChains(ctx, slots, ranges, "")
	f1, _, n1 := inRange(got, "t1")
	_, l2, n2 := inRange(got, "t2")
	if err != nil || !ok || n1 != 1400 || n2 != 100 || f1 != 1101 || l2 != 2600 {
		t.Errorf("chains of t1 and t2: ok %v, err %v, %d and %d entries", ok, err, n1, n2)
	}
	ranges["t3"] = [2]int64{3200, 3210}
	if _, ok, err := r.chunkChains(ctx, slots, ranges, ""); ok || err != nil {
		t.Errorf("chains with a format-1 commit: ok %v, err %v, want a fallback", ok, err)
	}
	// Collection a: commit 3 (format 1, only b by its stats) is not read.
	got, ok, err = r.chunkChains(ctx, slots, ranges, "a")
	_, _, n1 = inRange(got, "t1")
	_, _, n2 = inRange(got, "t2")
	_, _, n3 := inRange(got, "t3")
	if err != nil || !ok || n1 != 100 || n2 != 100 || n3 != 0 {
		t.Errorf("chains of a: ok %v, err %v, %d, %d and %d entries", ok, err, n1, n2, n3)
	}

	// A chain broken in the middle (commit 1's chunk 1001..1200 gone):
	// read by chunk, the rest of the commit comes from a query, as the
	// scan gives it.
	if _, err := r.DB.Collection(collEntries).DeleteOne(ctx, bson.D{{Key: "_id", Value: entryID(tl, 1001, "t1")}}); err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"", "a", "b"} {
		want, err := read(false, 0, 3210, coll)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(want, fmt.Sprintf("%s 1001 ", tl)) {
			t.Fatal("the chunk is still read")
		}
		if lazy, err := l.readByChunk(tl, 0, 3210, coll); err != nil || lazy != want {
			t.Errorf("a broken chain, %q, by chunk: %v\n%s\nwant\n%s", coll, err, head(lazy), head(want))
		}
	}
}

// chainLog is a project whose log the chunk-chain tests write directly:
// spilled commits of given entries on any of its timelines.
type chainLog struct {
	t     testing.TB
	r     *Repo
	main  string
	heads map[string]*[2]int64 // timeline -> last slot number, head LSN
	uri   string               // the engine's
	// unkeyed makes commit's slots name no key records (Slot.Keyed), as
	// an older argon's did: readers then read the entries collection.
	unkeyed bool
}

func newChainLog(t testing.TB) *chainLog {
	t.Helper()
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
	return &chainLog{t: t, r: r, main: main.Timeline, heads: map[string]*[2]int64{main.Timeline: {0, 0}}, uri: srv.URI}
}

// entry is the entry at lsn of timeline tl written by token: a put of
// {_id: i, v: lsn, tok: token}, a delete of _id i, or index ix<i>.
func (l *chainLog) entry(tl string, lsn int64, coll, op, token string, i int) Entry {
	id, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
	e := Entry{TL: tl, LSN: lsn, Op: op, Coll: coll, Token: token, KeyBytes: KeyOf(bson.Raw(id).Lookup("_id"))}
	switch op {
	case OpPut:
		e.Doc, _ = bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: lsn}, {Key: "tok", Value: token}})
	case OpIndex:
		spec, _ := bson.Marshal(bson.D{{Key: "name", Value: fmt.Sprintf("ix%d", i)}, {Key: "key", Value: bson.D{{Key: "f", Value: 1}}}})
		e, _ = IndexEntry(coll, spec)
		e.TL, e.LSN, e.Token = tl, lsn, token
	}
	return e
}

// commit spills es and commits them on tl under token, with the chunks'
// key records.
func (l *chainLog) commit(tl, token string, es []Entry) {
	l.t.Helper()
	scans := l.r.Scans
	l.r.Scans = true // to write the chunks' key records
	n, err := l.r.SpillEntries(context.Background(), "p", es)
	l.r.Scans = scans
	if err != nil {
		l.t.Fatal(err)
	}
	if l.unkeyed {
		n = 0
	}
	l.commitSlot(tl, token, es, n)
}

// commitSlot commits es, already written, on tl: the next head slot,
// spilled, naming keyed chunks' key records.
func (l *chainLog) commitSlot(tl, token string, es []Entry, keyed int) {
	l.t.Helper()
	h := l.heads[tl]
	s := &Slot{TL: tl, N: h[0] + 1, Kind: SlotCommit, Base: h[1], LSN: h[1] + int64(len(es)), Token: token, Spilled: true, Stats: Stats(es), Keyed: keyed}
	if err := l.r.InsertSlot(context.Background(), s); err != nil {
		l.t.Fatal(err)
	}
	h[0], h[1] = s.N, s.LSN
}

// forkAt creates branch name from main at LSN at and returns its
// timeline, ready for commit.
func (l *chainLog) forkAt(name string, at int64) string {
	l.t.Helper()
	return l.forkOf("main", name, at)
}

// forkOf creates branch name from branch of at LSN at and returns its
// timeline, ready for commit.
func (l *chainLog) forkOf(of, name string, at int64) string {
	l.t.Helper()
	ctx := context.Background()
	b, err := l.r.Branch(ctx, "p", of)
	if err != nil {
		l.t.Fatal(err)
	}
	br, err := l.r.CreateBranch(ctx, "p", name, b, at)
	if err != nil {
		l.t.Fatal(err)
	}
	fh, err := l.r.Head(ctx, br.Timeline)
	if err != nil {
		l.t.Fatal(err)
	}
	l.heads[br.Timeline] = &[2]int64{fh.Slot.N, at}
	return br.Timeline
}

// read lists the committed entries of tl in (from, to] of coll, by the
// chains (scans) or by the query of the entries collection.
func (l *chainLog) read(scans bool, tl string, from, to int64, coll string) (string, error) {
	l.r.Scans = scans
	var b bytes.Buffer
	err := l.r.EachEntry(context.Background(), tl, from, to, coll, func(e *Entry) error {
		fmt.Fprintf(&b, "%s %d %s %s %x %x\n", e.TL, e.LSN, e.Op, e.Coll, e.KeyBytes, e.Doc)
		return nil
	})
	return b.String(), err
}

// readByChunk is read by eachEntryByChunk.
func (l *chainLog) readByChunk(tl string, from, to int64, coll string) (string, error) {
	var b bytes.Buffer
	_, err := l.r.eachEntryByChunk(context.Background(), tl, from, to, coll, nil, nil, func(e *Entry) error {
		fmt.Fprintf(&b, "%s %d %s %s %x %x\n", e.TL, e.LSN, e.Op, e.Coll, e.KeyBytes, e.Doc)
		return nil
	})
	return b.String(), err
}

func head(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

// EntryBound counts a collection's entries in a range from the commit
// slots alone, a commit cut by the range counting whole, and says when a
// commit may change an index or carries no counts.
func TestEntryBound(t *testing.T) {
	l := newChainLog(t)
	ctx, tl := context.Background(), l.main
	var es []Entry
	for i := 1; i <= 10; i++ {
		coll := "a"
		if i > 6 {
			coll = "b"
		}
		es = append(es, l.entry(tl, int64(i), coll, OpPut, "t1", i))
	}
	l.commit(tl, "t1", es)
	l.commit(tl, "t2", []Entry{l.entry(tl, 11, "a", OpDel, "t2", 1), l.entry(tl, 12, "b", OpIndex, "t2", 1)})
	for _, c := range []struct {
		from, to int64
		coll     string
		n        int64
		indexes  bool
	}{
		{0, 10, "a", 6, false},
		{0, 12, "a", 7, false},
		{5, 12, "a", 7, false},
		{10, 12, "a", 1, false},
		{10, 12, "b", 1, true},
		{0, 12, "b", 5, true},
		{0, 12, "c", 0, false},
	} {
		n, ix, known, err := l.r.EntryBound(ctx, tl, c.from, c.to, c.coll)
		if err != nil || !known || n != c.n || ix != c.indexes {
			t.Errorf("%s in (%d, %d]: %d entries, indexes %v, known %v, %v; want %d, %v", c.coll, c.from, c.to, n, ix, known, err, c.n, c.indexes)
		}
	}
	// A commit without counts bounds nothing.
	h := l.heads[tl]
	h[0]++
	s := &Slot{TL: tl, N: h[0], Kind: SlotCommit, Base: h[1], LSN: h[1] + 1, Token: "t3", Spilled: true}
	if _, err := l.r.SpillEntries(ctx, "p", []Entry{l.entry(tl, h[1]+1, "a", OpPut, "t3", 99)}); err != nil {
		t.Fatal(err)
	}
	if err := l.r.InsertSlot(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, _, known, err := l.r.EntryBound(ctx, tl, 0, 13, "a"); known || err != nil {
		t.Errorf("with a commit without counts: known %v, %v", known, err)
	}
}

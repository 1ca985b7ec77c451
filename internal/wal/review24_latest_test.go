package wal

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/testsize"
)

// review24: LatestAtOrBelow on an engine that scans (latestAcross, and
// latestKeyed through the chunks' key records) against a ground truth
// that does not share its code: the last committed entry of each key read
// by EachEntry on the path of a server that does not scan. The histories
// are random: several timelines forked at random LSNs (inside inline and
// spilled commits, at 0, below a timeline's own base), spilled commits
// whose chunks change collection at random (so that a key lies in several
// chunks of one commit), index entries whose key bytes are those of a
// document's string _id, writers that never committed (with and without
// key records), commits whose records could not all be written (Keyed 0,
// some records left), and commits whose slot names records the engine
// does not show.

// r24 is a random history.
type r24 struct {
	t     *testing.T
	l     *chainLog
	rng   *rand.Rand
	tls   []string          // timelines, main first
	names map[string]string // timeline -> branch name
	n     int
	// allKeyed: every spilled commit names all of its key records.
	allKeyed bool
}

// entry is a random entry at lsn of tl under token: keys are ints 0-11
// and strings "ix0"-"ix3" (the key bytes of index ix0-ix3).
func (h *r24) entry(tl string, lsn int64, token, coll string) Entry {
	var id any = int32(h.rng.IntN(12))
	if h.rng.IntN(4) == 0 {
		id = fmt.Sprintf("ix%d", h.rng.IntN(4))
	}
	ib, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	idv := bson.Raw(ib).Lookup("_id")
	switch h.rng.IntN(8) {
	case 0, 1, 2:
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: lsn}, {Key: "tok", Value: token}, {Key: "tl", Value: tl}})
		e, _ := PutEntry(coll, doc)
		e.TL, e.LSN, e.Token = tl, lsn, token
		return e
	case 3, 4:
		e := DelEntry(coll, idv)
		e.TL, e.LSN, e.Token = tl, lsn, token
		return e
	case 5, 6:
		spec, _ := bson.Marshal(bson.D{{Key: "name", Value: fmt.Sprintf("ix%d", h.rng.IntN(4))}, {Key: "key", Value: bson.D{{Key: "f", Value: lsn}}}})
		e, _ := IndexEntry(coll, spec)
		e.TL, e.LSN, e.Token = tl, lsn, token
		return e
	default:
		e := DropIndexEntry(coll, fmt.Sprintf("ix%d", h.rng.IntN(4)))
		e.TL, e.LSN, e.Token = tl, lsn, token
		return e
	}
}

func (h *r24) entries(tl, token string, from int64, n int) []Entry {
	colls := []string{"c", "d"}
	coll := colls[h.rng.IntN(2)]
	var es []Entry
	for i := 0; i < n; i++ {
		if h.rng.IntN(5) == 0 {
			coll = colls[h.rng.IntN(2)]
		}
		es = append(es, h.entry(tl, from+int64(i), token, coll))
	}
	return es
}

func (h *r24) token() string {
	h.n++
	return fmt.Sprintf("tok%d", h.n)
}

// step adds one random thing to the history.
func (h *r24) step() {
	t, l, ctx := h.t, h.l, context.Background()
	tl := h.tls[h.rng.IntN(len(h.tls))]
	hd := l.heads[tl]
	switch k := h.rng.IntN(10); {
	case k == 0 && len(h.tls) < 6:
		// A fork of tl's branch at a random LSN at or below its head.
		from, err := l.r.Branch(ctx, "p", h.names[tl])
		if err != nil {
			t.Fatal(err)
		}
		at := h.rng.Int64N(hd[1] + 1)
		name := fmt.Sprintf("b%d", len(h.tls))
		b, err := l.r.CreateBranch(ctx, "p", name, from, at)
		if err != nil {
			t.Fatal(err)
		}
		bh, err := l.r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		l.heads[b.Timeline] = &[2]int64{bh.Slot.N, at}
		h.tls = append(h.tls, b.Timeline)
		h.names[b.Timeline] = name
	case k == 1:
		// An inline commit.
		tok := h.token()
		es := h.entries(tl, tok, hd[1]+1, 1+h.rng.IntN(5))
		hd[0]++
		s := &Slot{TL: tl, N: hd[0], Kind: SlotCommit, Base: hd[1], LSN: hd[1] + int64(len(es)), Token: tok, Stats: Stats(es)}
		for _, e := range es {
			s.Entries = append(s.Entries, SlotEntry{Op: e.Op, Coll: e.Coll, Key: e.KeyBytes, Doc: e.Doc})
		}
		if err := l.r.InsertSlot(ctx, s); err != nil {
			t.Fatal(err)
		}
		hd[1] = s.LSN
	case k == 2:
		// A writer that never committed, at the LSNs the next commit
		// uses, with or without key records.
		scans := l.r.Scans
		l.r.Scans = h.rng.IntN(2) == 0
		_, err := l.r.SpillEntries(ctx, "p", h.entries(tl, h.token(), hd[1]+1, 1+h.rng.IntN(20)))
		l.r.Scans = scans
		if err != nil {
			t.Fatal(err)
		}
	default:
		// A spilled commit: keyed (most), unkeyed, records partly
		// written (Keyed 0, as addKeyed(-1) leaves it), or keyed with a
		// record the engine does not show.
		tok := h.token()
		es := h.entries(tl, tok, hd[1]+1, 1+h.rng.IntN(40))
		if h.rng.IntN(10) == 0 {
			// A chunk past chunkEntries, so that a commit has a long
			// chunk followed by others.
			es = h.entries(tl, tok, hd[1]+1, 1000+h.rng.IntN(30))
		}
		mode := h.rng.IntN(8)
		if h.allKeyed {
			mode = 0
		}
		saved := l.unkeyed
		l.unkeyed = mode == 1 || mode == 2
		l.commit(tl, tok, es)
		l.unkeyed = saved
		if mode == 2 || mode == 3 {
			if _, err := l.r.DB.Collection(collChunkKeys).DeleteOne(ctx, bson.D{{Key: "tl", Value: tl}, {Key: "token", Value: tok}}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// r24Truth is the last committed entry of each key at at on tl, by
// collection, then indexes (true) or documents (false), by EachEntry on a
// server that does not scan.
func r24Truth(t *testing.T, r *Repo, tl string, at int64) map[string]map[bool]map[string]*Entry {
	t.Helper()
	r.Scans = false
	last := map[string]map[bool]map[string]*Entry{}
	if err := r.EachEntry(context.Background(), tl, 0, at, "", func(e *Entry) error {
		index := e.Op == OpIndex || e.Op == OpDropIndex
		if last[e.Coll] == nil {
			last[e.Coll] = map[bool]map[string]*Entry{false: {}, true: {}}
		}
		cp := *e
		last[e.Coll][index][string(e.KeyBytes)] = &cp
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return last
}

func r24Lines(m map[string]*Entry, keys [][]byte) string {
	var lines []string
	for _, k := range keys {
		if e, ok := m[string(k)]; ok {
			lines = append(lines, fmt.Sprintf("%x %s@%d %s %s %x", k, e.TL[len(e.TL)-4:], e.LSN, e.Op, e.Token, e.Doc))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// r24Keys is every key the random histories use.
func r24Keys() [][]byte {
	var keys [][]byte
	for i := 0; i < 12; i++ {
		b, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}})
		keys = append(keys, KeyOf(bson.Raw(b).Lookup("_id")))
	}
	for i := 0; i < 4; i++ {
		b, _ := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("ix%d", i)}})
		keys = append(keys, KeyOf(bson.Raw(b).Lookup("_id")))
	}
	return keys
}

// latestSeeds is how many random histories TestReview24LatestRandomHistories
// checks (about 10 s each, twice): one in the README's suite, six at the
// nightly size (internal/testsize).
var latestSeeds = flag.Int("latest-seeds", testsize.Pick(1, 6), "random histories of TestReview24LatestRandomHistories")

func TestReview24LatestRandomHistories(t *testing.T) {
	t.Parallel()
	for seed := 1; seed <= *latestSeeds; seed++ {
		for _, allKeyed := range []bool{true, false} {
			t.Run(fmt.Sprintf("seed%d/allKeyed=%v", seed, allKeyed), func(t *testing.T) { checkReview24Random(t, uint64(seed), allKeyed) })
		}
	}
}

func checkReview24Random(t *testing.T, seed uint64, allKeyed bool) {
	l := newChainLog(t)
	h := &r24{t: t, l: l, rng: rand.New(rand.NewPCG(seed, 24)), tls: []string{l.main}, names: map[string]string{l.main: "main"}, allKeyed: allKeyed}
	// 40 random steps in the README's suite, 60 at the nightly size.
	for i := 0; i < testsize.Pick(40, 60); i++ {
		h.step()
	}
	r, ctx := l.r, context.Background()
	mr, finds := monitored(t, l)
	all := r24Keys()
	checked, nonEmpty, keyed := 0, 0, 0
	for _, tl := range h.tls {
		head := l.heads[tl][1]
		var ats []int64
		// One random point besides the head and the root (three took
		// 30 s of the suite; -latest-seeds runs more histories).
		ats = append(ats, h.rng.Int64N(head+1))
		ats = append(ats, head, 0)
		for _, at := range ats {
			// One fold from the root for every collection and kind.
			truths := r24Truth(t, r, tl, at)
			for _, coll := range []string{"c", "d"} {
				for _, index := range []bool{false, true} {
					truth := truths[coll][index]
					// All keys, and a random few.
					sets := [][][]byte{all}
					var few [][]byte
					for _, k := range all {
						if h.rng.IntN(4) == 0 {
							few = append(few, k)
						}
					}
					if len(few) > 0 {
						sets = append(sets, few)
					}
					for _, keys := range sets {
						finds()
						got, _, err := mr.LatestAtOrBelow(ctx, tl, at, coll, keys, index)
						if err != nil {
							t.Fatal(err)
						}
						byID, scan := false, false
						for _, q := range finds() {
							if strings.HasPrefix(q, collEntries+` {"_id": "`) {
								byID = true
							} else if strings.HasPrefix(q, collEntries+" ") {
								scan = true
							}
						}
						if byID && !scan {
							keyed++
						}
						want := r24Lines(truth, keys)
						if g := r24Lines(got, keys); g != want {
							t.Errorf("%s@%d %s index=%v, %d keys: scans found\n%s\nwant (EachEntry)\n%s", tl[len(tl)-4:], at, coll, index, len(keys), g, want)
						}
						checked++
						if want != "" {
							nonEmpty++
						}
					}
				}
			}
		}
	}
	t.Logf("%d lookups, %d found something, %d answered through key records alone", checked, nonEmpty, keyed)
	if allKeyed && keyed < checked/4 {
		t.Errorf("only %d of %d lookups went through the key records", keyed, checked)
	}
	if nonEmpty < checked/3 {
		t.Errorf("only %d of %d lookups found anything", nonEmpty, checked)
	}
	// And fsck names exactly the commits whose slot names records the
	// engine does not show.
	_, problems, err := r.Check(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if !strings.Contains(p.What, "key record") {
			t.Errorf("fsck: %s", p.What)
		}
	}
}

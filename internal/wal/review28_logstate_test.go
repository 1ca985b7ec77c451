package wal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// r28Runs writes one spilled commit on tl of runs of one collection each
// (the lengths given: a run of 100 or more keeps eachEntryByChunk reading
// chunk by chunk; runs of 1 or 2 make it fall back), random puts (keys
// from a small space, so that keys are put again, deleted and put again),
// deletes and index changes, and returns its head.
func r28Runs(l *chainLog, tl, token string, rng *rand.Rand, colls []string, runs []int) int64 {
	lsn := l.heads[tl][1]
	var es []Entry
	for ri, n := range runs {
		coll := colls[(ri+rng.IntN(len(colls)))%len(colls)]
		if ri > 0 && coll == es[len(es)-1].Coll {
			coll = colls[(ri+1)%len(colls)]
			if coll == es[len(es)-1].Coll {
				coll = colls[(ri+2)%len(colls)]
			}
		}
		for j := 0; j < n; j++ {
			lsn++
			k := rng.IntN(120)
			switch r := rng.IntN(40); {
			case r < 28:
				es = append(es, l.entry(tl, lsn, coll, OpPut, token, k))
			case r < 38:
				es = append(es, l.entry(tl, lsn, coll, OpDel, token, k))
			case r < 39:
				es = append(es, l.entry(tl, lsn, coll, OpIndex, token, k%3))
			default:
				e := l.entry(tl, lsn, coll, OpIndex, token, k%3)
				e.Op, e.Doc = OpDropIndex, nil
				es = append(es, e)
			}
		}
	}
	l.commit(tl, token, es)
	return lsn
}

// r28Inline writes a commit of n random entries kept inline in its slot.
func r28Inline(l *chainLog, tl, token string, rng *rand.Rand, colls []string, n int) int64 {
	l.t.Helper()
	h := l.heads[tl]
	var es []Entry
	var ses []SlotEntry
	for j := 0; j < n; j++ {
		lsn := h[1] + int64(j) + 1
		coll := colls[rng.IntN(len(colls))]
		k := rng.IntN(120)
		op := OpPut
		if rng.IntN(4) == 0 {
			op = OpDel
		}
		e := l.entry(tl, lsn, coll, op, token, k)
		es = append(es, e)
		ses = append(ses, SlotEntry{Op: e.Op, Coll: e.Coll, Key: e.KeyBytes, Doc: e.Doc})
	}
	h[0]++
	s := &Slot{TL: tl, N: h[0], Kind: SlotCommit, Base: h[1], LSN: h[1] + int64(n), Token: token, Stats: Stats(es), Entries: ses}
	if err := l.r.InsertSlot(context.Background(), s); err != nil {
		l.t.Fatal(err)
	}
	h[1] = s.LSN
	return s.LSN
}

// r28Format1 writes a spilled commit of n puts of coll stored one document
// per entry, as log format 1 did.
func r28Format1(l *chainLog, tl, token, coll string, n int) int64 {
	l.t.Helper()
	ctx := context.Background()
	h := l.heads[tl]
	var es []Entry
	for j := 0; j < n; j++ {
		e := l.entry(tl, h[1]+int64(j)+1, coll, OpPut, token, 200+j%7)
		es = append(es, e)
		if _, err := l.r.DB.Collection(collEntries).InsertOne(ctx, bson.D{{Key: "_id", Value: entryID(tl, e.LSN, token)}, {Key: "tl", Value: tl},
			{Key: "lsn", Value: e.LSN}, {Key: "op", Value: e.Op}, {Key: "coll", Value: coll}, {Key: "kb", Value: e.KeyBytes}, {Key: "doc", Value: e.Doc}, {Key: "token", Value: token}}); err != nil {
			l.t.Fatal(err)
		}
	}
	h[0]++
	s := &Slot{TL: tl, N: h[0], Kind: SlotCommit, Base: h[1], LSN: h[1] + int64(n), Token: token, Spilled: true, Stats: Stats(es)}
	if err := l.r.InsertSlot(ctx, s); err != nil {
		l.t.Fatal(err)
	}
	h[1] = s.LSN
	return s.LSN
}

// r28Loser spills, under token, puts at LSNs from+1..from+n of tl that no
// slot names (a writer that lost): no reader may see them.
func r28Loser(l *chainLog, tl, token string, from int64, n int, coll string) {
	l.t.Helper()
	var es []Entry
	for j := 0; j < n; j++ {
		es = append(es, l.entry(tl, from+int64(j)+1, coll, OpPut, token, j%120))
	}
	if _, err := l.r.SpillEntries(context.Background(), "p", es); err != nil {
		l.t.Fatal(err)
	}
}

// r28Check compares, at (tl, at): the image written from the log with the
// fold's, byte for byte; FoldEach with no image (whole and by collection)
// with the fold's listing; and eachEntryByChunk (with and without a
// collection) with EachEntry. It returns whether the by-chunk walk of the
// whole log fell back.
func r28Check(t *testing.T, l *chainLog, tl string, at int64, colls []string) bool {
	t.Helper()
	ctx := context.Background()
	plain := *l.r
	plain.NoImages = true
	st, err := plain.Fold(ctx, tl, at, "")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := l.r.readLogState(ctx, tl, at, "")
	if err != nil {
		t.Fatalf("@%d: %v", at, err)
	}
	want, wantColls, wd, wi := encodeImage(st)
	var got [][]byte
	gotColls, gd, gi, err := writeImage(ls, imageChunk, func(c []byte) error {
		got = append(got, bytes.Clone(c))
		return nil
	})
	if err != nil {
		t.Fatalf("@%d: %v", at, err)
	}
	if fmt.Sprint(gotColls) != fmt.Sprint(wantColls) || gd != wd || gi != wi || len(got) != len(want) {
		t.Fatalf("@%d: the log's image lists %v, %d documents, %d indexes, %d chunks; the fold's %v, %d, %d, %d", at, gotColls, gd, gi, len(got), wantColls, wd, wi, len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("@%d: chunk %d differs from the fold's", at, i)
		}
	}
	for _, coll := range []string{"", colls[len(colls)-1]} {
		cst := st
		if coll != "" {
			if cst, err = plain.Fold(ctx, tl, at, coll); err != nil {
				t.Fatal(err)
			}
		}
		var s streamed
		fs, err := plain.FoldEach(ctx, tl, at, coll, s.sink())
		if err != nil {
			t.Fatalf("@%d %q: %v", at, coll, err)
		}
		if w := folded(cst); strings.Join(s.lines, "\n") != strings.Join(w, "\n") {
			t.Fatalf("@%d %q: FoldEach from the log: %s", at, coll, firstDiff(s.lines, w))
		}
		// Same entries as the fold replays.
		var n int64
		if err := plain.EachEntry(ctx, tl, 0, at, coll, func(*Entry) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if fs.Entries != n {
			t.Fatalf("@%d %q: FoldEach counts %d entries, the fold %d", at, coll, fs.Entries, n)
		}
	}
	fell := false
	for _, coll := range []string{"", colls[0]} {
		var a, b bytes.Buffer
		line := func(w *bytes.Buffer) func(*Entry) error {
			return func(e *Entry) error {
				fmt.Fprintf(w, "%s %d %s %s %x %x\n", e.TL, e.LSN, e.Op, e.Coll, e.KeyBytes, e.Doc)
				return nil
			}
		}
		if err := l.r.EachEntry(ctx, tl, 0, at, coll, line(&a)); err != nil {
			t.Fatal(err)
		}
		fb, err := l.r.eachEntryByChunk(ctx, tl, 0, at, coll, nil, nil, line(&b))
		if err != nil {
			t.Fatal(err)
		}
		if coll == "" {
			fell = fb
		}
		if a.String() != b.String() {
			t.Fatalf("@%d %q: by chunk (fell back %v):\n%s\nwant\n%s", at, coll, fb, head(b.String()), head(a.String()))
		}
	}
	return fell
}

// The image and stream from the log are the fold's on a history read
// chunk by chunk (runs of one collection of 100 entries or more, across
// chunk boundaries of 1,000), with inline commits between spilled ones,
// chunks of a losing writer at the same LSNs, a fork taken inside a
// spilled commit (and inside a chunk), and a fork of that fork inside one
// of its commits: three levels of ancestry, none falling back.
func TestReview28LogStateByChunkAcrossForks(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	smallChunks(l.r)
	rng := rand.New(rand.NewPCG(28, 1))
	colls := []string{"a", "b", "c"}
	m := l.main
	h1 := r28Runs(l, m, "m1", rng, colls, []int{150, 1300, 120, 400})
	r28Loser(l, m, "lost1", h1, 900, "a")
	h2 := r28Inline(l, m, "m2", rng, colls, 12)
	h3 := r28Runs(l, m, "m3", rng, colls, []int{700, 200, 1100})
	fork := h2 + 850 // inside m3's second chunk (m3's first run is 700 long: chunk 1..700, then 701..900)
	f := l.forkAt("f", fork)
	g1 := r28Runs(l, f, "f1", rng, colls, []int{300, 1000})
	r28Inline(l, f, "f2", rng, colls, 5)
	g3 := r28Runs(l, f, "f3", rng, colls, []int{250, 130})
	fork2 := g1 - 420 // inside f1's second run, inside its first chunk
	g := l.forkOf("f", "g", fork2)
	r28Runs(l, g, "g1", rng, colls, []int{500, 100})
	k2 := r28Inline(l, g, "g2", rng, colls, 7)
	r28Loser(l, g, "lost2", k2, 300, "b")
	k3 := r28Runs(l, g, "g3", rng, colls, []int{1001})

	for _, at := range []int64{150, h1, h2 + 700, fork, h3} {
		if r28Check(t, l, m, at, colls) {
			t.Fatalf("main@%d: the by-chunk walk fell back", at)
		}
	}
	for _, at := range []int64{fork + 1, fork2, g3 - 130, g3} {
		if r28Check(t, l, f, at, colls) {
			t.Fatalf("f@%d: the by-chunk walk fell back", at)
		}
	}
	for _, at := range []int64{fork2 + 1, k2, k3 - 1} {
		if r28Check(t, l, g, at, colls) {
			t.Fatalf("g@%d: the by-chunk walk fell back", at)
		}
	}
}

// The walk falls back mid-way (a commit whose collection changes at
// every entry: after its 8th chunk; a format-1 commit: at its first;
// many small spilled commits: at the walk's 16th chunk), after entries
// were given by chunk, and resumes from the last LSN it gave: every
// entry once, and the images and streams of states on either side, on
// main and on a fork taken inside the mixed commit, are the fold's.
func TestReview28LogStateFallsBackMidWalk(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	smallChunks(l.r)
	rng := rand.New(rand.NewPCG(28, 2))
	colls := []string{"a", "b"}
	m := l.main
	h1 := r28Runs(l, m, "m1", rng, colls, []int{400, 300})
	mixed := make([]int, 40)
	for i := range mixed {
		mixed[i] = 1 + i%2
	}
	r28Runs(l, m, "m2", rng, colls, mixed)
	h3 := r28Runs(l, m, "m3", rng, colls, []int{250})
	h4 := r28Format1(l, m, "m4", "b", 6)
	h5 := r28Runs(l, m, "m5", rng, colls, []int{300})
	var small []int64
	for i := 0; i < 18; i++ {
		small = append(small, r28Runs(l, m, fmt.Sprintf("s%d", i), rng, colls, []int{3}))
	}
	h6 := r28Runs(l, m, "m6", rng, colls, []int{200})
	f := l.forkAt("f", h1+12)
	k1 := r28Runs(l, f, "f1", rng, colls, []int{150, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 200})

	cases := []struct {
		tl   string
		at   int64
		fell bool
	}{
		{m, h1 + 12, false}, {m, h1 + 13, true}, {m, h3, true}, {m, h4 - 1, true},
		{m, h5, true}, {m, small[15], true}, {m, h6, true},
		{f, h1 + 12, false}, {f, k1 - 200, true}, {f, k1, true},
	}
	for _, c := range cases {
		if fell := r28Check(t, l, c.tl, c.at, colls); fell != c.fell {
			t.Errorf("%s@%d: fell back %v, want %v", c.tl[len(c.tl)-4:], c.at, fell, c.fell)
		}
	}
	// Without the mixed and format-1 commits, only the many small commits
	// make the walk fall back: at the walk's 16th chunk.
	l2 := newChainLog(t)
	smallChunks(l2.r)
	var hs []int64
	for i := 0; i < 20; i++ {
		hs = append(hs, r28Runs(l2, l2.main, fmt.Sprintf("s%d", i), rng, colls, []int{4}))
	}
	for _, i := range []int{15, 16} {
		if fell := r28Check(t, l2, l2.main, hs[i], colls); fell != (i >= 16) {
			t.Errorf("small commits @%d: fell back %v", hs[i], fell)
		}
	}
}

// A stream from a checked image that finds it damaged part-way, with no
// image left below, goes on from the log (two reads, logState) passing
// over what the sink already has: at whichever chunk of whichever
// collection the damage is, whole and by collection, with a sink that
// cannot forget and one that can, the sink ends with the fold, record
// for record, never a document twice, and no reset. The log below the
// image is read chunk by chunk (runs of 100 or more) and above it holds
// documents changed, deleted and put again since the image.
func TestReview28DamagedImageThenTheLog(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	r := l.r
	plain := *r
	plain.NoImages = true
	rng := rand.New(rand.NewPCG(28, 3))
	colls := []string{"a", "b", "c"}
	m := l.main
	h1 := r28Runs(l, m, "m1", rng, colls, []int{300, 200, 150})
	img, err := r.TakeImage(ctx, "p", m, h1)
	if err != nil {
		t.Fatal(err)
	}
	if img.chunkSum(0) == nil || img.Chunks < 4 {
		t.Fatalf("image of %d chunks, checked %v", img.Chunks, img.chunkSum(0) != nil)
	}
	r28Inline(l, m, "m2", rng, colls, 10)
	head := r28Runs(l, m, "m3", rng, colls, []int{120, 110})
	wants := map[string][]string{}
	for _, coll := range []string{"", "b"} {
		st, err := plain.Fold(ctx, m, head, coll)
		if err != nil {
			t.Fatal(err)
		}
		wants[coll] = folded(st)
	}
	s := &r27Images{t: t, l: l}
	for n := 0; n < img.Chunks; n++ {
		restore := s.damage(img, n, n%3)
		for _, coll := range []string{"", "b"} {
			for _, withReset := range []bool{false, true} {
				var got streamed
				sink := got.sink()
				given := 0
				doc := sink.Doc
				sink.Doc = func(c string, d bson.Raw) error { given++; return doc(c, d) }
				if !withReset {
					sink.Reset = nil
				}
				fs, err := r.FoldEach(ctx, m, head, coll, sink)
				if err != nil {
					t.Fatalf("chunk %d %q: %v", n, coll, err)
				}
				if coll == "" && fs.Image != nil {
					t.Fatalf("chunk %d %q: ended on the damaged image", n, coll)
				}
				if strings.Join(got.lines, "\n") != strings.Join(wants[coll], "\n") || got.resets != 0 || given != r28Docs(wants[coll]) {
					t.Fatalf("chunk %d %q reset %v: %s, %d resets, %d documents given", n, coll, withReset, firstDiff(got.lines, wants[coll]), got.resets, given)
				}
			}
		}
		restore()
	}
}

// r28Docs counts the documents of a listing (folded, streamed).
func r28Docs(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "d ") {
			n++
		}
	}
	return n
}

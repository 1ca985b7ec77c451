package wal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/argon-db/argon/internal/testsize"
)

// An image written from the log (imagelog.go: two reads, holding only
// keys and the documents changed after they came into being) is the
// image of the fold, chunk for chunk and byte for byte, at every LSN of
// random histories of puts, deletes, puts again and index changes, on
// main and on a fork taken inside a commit; FoldEach with no image below
// streams the same reads; and TakeImage writes a history's first image
// that way.
func TestImageFromTheLogIsTheFolds(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	plain := *l.r
	plain.NoImages = true
	rng := rand.New(rand.NewPCG(11, 3))
	heads := randomCommits(l, rng, 6)
	fork := heads[2] - 9
	ftl := l.forkAt("f", fork)
	fheads := r27Commits(l, ftl, rng, 3, []string{"a", "b", "c"})

	write := func(src imageSource) (chunks [][]byte, colls string, docs, indexes int64) {
		cs, docs, indexes, err := writeImage(src, l.r.chunkSize(), func(c []byte) error {
			chunks = append(chunks, bytes.Clone(c))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return chunks, fmt.Sprintf("%+v", cs), docs, indexes
	}
	changed := 0
	check := func(tl string, at int64) {
		t.Helper()
		st, err := plain.Fold(ctx, tl, at, "")
		if err != nil {
			t.Fatal(err)
		}
		ls, err := l.r.readLogState(ctx, tl, at, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ls.colls {
			for _, d := range c.docs {
				if d.last != d.born {
					changed++
				}
			}
		}
		want, wantColls, wd, wi := write(st)
		got, gotColls, gd, gi := write(ls)
		if gotColls != wantColls || gd != wd || gi != wi {
			t.Fatalf("%s@%d: the log's image lists %s, %d documents, %d indexes; the fold's %s, %d, %d", tl[len(tl)-4:], at, gotColls, gd, gi, wantColls, wd, wi)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s@%d: chunk %d of %d differs from the fold's", tl[len(tl)-4:], at, i, len(want))
			}
		}
		// With no image below, FoldEach streams the same two reads: the
		// fold's documents and indexes, in its order.
		colls := []string{""}
		if at%3 == 0 {
			colls = append(colls, "b")
		}
		for _, coll := range colls {
			want := folded(st)
			if coll != "" {
				cst, err := plain.Fold(ctx, tl, at, coll)
				if err != nil {
					t.Fatal(err)
				}
				want = folded(cst)
			}
			var got streamed
			fs, err := plain.FoldEach(ctx, tl, at, coll, got.sink())
			if err != nil {
				t.Fatal(err)
			}
			if fs.Image != nil || strings.Join(got.lines, "\n") != strings.Join(want, "\n") || got.resets != 0 {
				t.Fatalf("%s@%d %q: FoldEach from the log: %s (%d resets)", tl[len(tl)-4:], at, coll, firstDiff(got.lines, want), got.resets)
			}
		}
	}
	// Random points: further apart in the README's suite than at the
	// nightly size (internal/testsize).
	for at := int64(0); at <= heads[len(heads)-1]; at += int64(testsize.Pick(2, 1) * (1 + rng.IntN(14))) {
		check(l.main, at)
	}
	for at := fork; at <= fheads[len(fheads)-1]; at += 1 + int64(rng.IntN(6)) {
		check(ftl, at)
	}
	if changed < 100 {
		t.Fatalf("only %d documents changed after they came into being: the histories test too little", changed)
	}

	// No image is below: TakeImage writes from the log, and the image
	// loads as the fold.
	img, err := l.r.TakeImage(ctx, "p", ftl, fheads[1])
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := l.r.LoadImage(ctx, img, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := plain.Fold(ctx, ftl, fheads[1], "")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := folded(loaded), folded(want); fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("the first image of the fork loads as %s", firstDiff(g, w))
	}
	if img.Chunks < 3 {
		t.Fatalf("the image has %d chunks: records do not span chunks", img.Chunks)
	}
}

// The log's image is read down each commit's chunks by _id, one chunk at
// a time: no query of the entries collection reads it whole. Once chunks
// turn out to hold few entries (a commit that changes collection at every
// entry), the rest is read by one query, with the same result.
func TestLogStateReadsChunksByID(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	ctx := context.Background()
	plain := *l.r
	plain.NoImages = true
	var es []Entry
	for i := 1; i <= 20_000; i++ {
		coll := "a"
		if i > 12_000 {
			coll = "b"
		}
		es = append(es, l.entry(l.main, int64(i), coll, OpPut, "t1", i%15_000))
	}
	l.commit(l.main, "t1", es)
	big := int64(20_000)
	es = nil
	for i := 1; i <= 300; i++ {
		es = append(es, l.entry(l.main, big+int64(i), []string{"a", "b"}[i%2], OpPut, "t2", i))
	}
	l.commit(l.main, "t2", es)

	mr, finds := monitored(t, l)
	image := func(at int64) (scans []string, byID int) {
		t.Helper()
		finds()
		ls, err := mr.readLogState(ctx, l.main, at, "")
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		if _, _, _, err := writeImage(ls, imageChunk, func(c []byte) error {
			got = append(got, bytes.Clone(c))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		st, err := plain.Fold(ctx, l.main, at, "")
		if err != nil {
			t.Fatal(err)
		}
		want, _, _, _ := encodeImage(st)
		if len(got) != len(want) {
			t.Fatalf("@%d: %d chunks, the fold's %d", at, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("@%d: chunk %d differs from the fold's", at, i)
			}
		}
		for _, q := range finds() {
			switch {
			case strings.HasPrefix(q, collEntries+` {"_id": "`):
				byID++
			case strings.HasPrefix(q, collEntries+" "):
				scans = append(scans, q)
			}
		}
		return scans, byID
	}
	if scans, byID := image(big); len(scans) != 0 || byID != 2*20 {
		t.Fatalf("the entries collection was queried (%v), and %d chunks read by _id, want 40", scans, byID)
	}
	// Then 300 chunks of one entry (the collection changes at every
	// entry): the first read stops reading by chunk at the 8th and reads
	// the rest as EachEntry does, and so do the second reads (EachEntry
	// follows up to 2*chainChunks chunks by _id, then scans). By chunk,
	// the 300 would be read three times.
	if scans, byID := image(big + 300); len(scans) == 0 || byID > 20+8+3*2*chainChunks {
		t.Fatalf("%d chunks read by _id, %d queries of the entries collection", byID, len(scans))
	}
}

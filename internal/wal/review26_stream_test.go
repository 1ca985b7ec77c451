package wal

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/testsize"
)

// r26Model is an independent model of a timeline's state: per collection,
// each live key's document and the LSN it last came into being, and each
// index's specification and the LSN it was (last) created.
type r26Doc struct {
	doc  []byte
	born int64
}

type r26Model map[string]*struct {
	docs, idx map[string]*r26Doc
}

func (m r26Model) apply(e Entry) {
	c := m[e.Coll]
	if c == nil {
		c = &struct{ docs, idx map[string]*r26Doc }{map[string]*r26Doc{}, map[string]*r26Doc{}}
		m[e.Coll] = c
	}
	k := string(e.KeyBytes)
	switch e.Op {
	case OpPut:
		if d := c.docs[k]; d != nil {
			d.doc = e.Doc
		} else {
			c.docs[k] = &r26Doc{e.Doc, e.LSN}
		}
	case OpDel:
		delete(c.docs, k)
	case OpIndex:
		c.idx[k] = &r26Doc{e.Doc, e.LSN}
	case OpDropIndex:
		delete(c.idx, k)
	}
}

// lines lists the model as folded lists a state (coll "" : all).
func (m r26Model) lines(coll string) []string {
	var names []string
	for n, c := range m {
		if (coll == "" || n == coll) && len(c.docs)+len(c.idx) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	byBorn := func(ds map[string]*r26Doc) []*r26Doc {
		var out []*r26Doc
		for _, d := range ds {
			out = append(out, d)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].born < out[j].born })
		return out
	}
	var out []string
	for _, n := range names {
		for _, d := range byBorn(m[n].docs) {
			out = append(out, fmt.Sprintf("d %s %x", n, d.doc))
		}
		for _, d := range byBorn(m[n].idx) {
			out = append(out, fmt.Sprintf("i %s %x", n, d.doc))
		}
	}
	return out
}

// r26Hist writes commits on a chainLog and keeps every committed entry,
// by timeline, for the model.
type r26Hist struct {
	l       *chainLog
	entries map[string][]Entry // own entries of each timeline
	parent  map[string]string
	base    map[string]int64
}

func (h *r26Hist) put(tl string, lsn int64, coll, token string, id, pad int) Entry {
	e := h.l.entry(tl, lsn, coll, OpPut, token, id)
	e.Doc, _ = bson.Marshal(bson.D{{Key: "_id", Value: int32(id)}, {Key: "v", Value: lsn}, {Key: "tl", Value: tl}, {Key: "p", Value: strings.Repeat("x", pad)}})
	return e
}

func (h *r26Hist) commit(tl, token string, es []Entry) {
	h.l.commit(tl, token, es)
	h.entries[tl] = append(h.entries[tl], es...)
}

// model is the state of tl at lsn by the model.
func (h *r26Hist) model(tl string, lsn int64) r26Model {
	var chain []string
	var limits []int64
	lim := lsn
	for t := tl; t != ""; t = h.parent[t] {
		chain = append([]string{t}, chain...)
		limits = append([]int64{lim}, limits...)
		lim = min(lim, h.base[t])
	}
	m := r26Model{}
	for i, t := range chain {
		lo := h.base[t]
		for _, e := range h.entries[t] {
			if e.LSN > lo && e.LSN <= limits[i] {
				m.apply(e)
			}
		}
	}
	return m
}

// A deterministic history aimed at the overlay's corners, checked against
// an independent model as well as a plain fold: keys deleted and put
// again several times above an image, keys only above it, a collection
// whose documents were all deleted above the image but that keeps an
// index, an index dropped and created again (its place among the indexes
// moves), a collection only above the image, documents spanning 2 KiB
// chunks, a losing writer's chunks over committed LSNs, a fork inside a
// spilled commit's chunk with images on the parent below and above the
// fork point and on the child, every collection filter, with and without
// the chunk chains (Scans).
func TestReview26FoldEachModel(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	r := l.r
	h := &r26Hist{l: l, entries: map[string][]Entry{}, parent: map[string]string{}, base: map[string]int64{}}
	tl := l.main
	lsn := int64(0)
	next := func() int64 { lsn++; return lsn }
	ix := func(tl string, lsn int64, coll, token string, i int) Entry {
		return l.entry(tl, lsn, coll, OpIndex, token, i)
	}
	drop := func(tl string, lsn int64, coll, token string, i int) Entry {
		e := l.entry(tl, lsn, coll, OpIndex, token, i)
		e.Op, e.Doc = OpDropIndex, nil
		return e
	}
	del := func(tl string, lsn int64, coll, token string, i int) Entry {
		return l.entry(tl, lsn, coll, OpDel, token, i)
	}

	// c1: a 0..19 (some larger than a chunk), b 0..9, indexes, "gone".
	var es []Entry
	for i := 0; i < 20; i++ {
		pad := 30
		if i%6 == 0 {
			pad = 4500
		}
		es = append(es, h.put(tl, next(), "a", "t1", i, pad))
	}
	for i := 0; i < 10; i++ {
		es = append(es, h.put(tl, next(), "b", "t1", i, 100))
	}
	es = append(es, ix(tl, next(), "a", "t1", 0), ix(tl, next(), "b", "t1", 1), ix(tl, next(), "b", "t1", 3))
	for i := 0; i < 5; i++ {
		es = append(es, h.put(tl, next(), "gone", "t1", i, 10))
	}
	es = append(es, ix(tl, next(), "gone", "t1", 0))
	h.commit(tl, "t1", es)
	img1 := lsn

	// A loser over the next LSNs, never committed.
	var lose []Entry
	for i := 0; i < 60; i++ {
		lose = append(lose, h.put(tl, lsn+1+int64(i), "a", "lose", i, 50))
	}
	if _, err := r.SpillEntries(ctx, "p", lose); err != nil {
		t.Fatal(err)
	}

	// c2: the overlay's corners.
	es = nil
	es = append(es,
		del(tl, next(), "a", "t2", 3), h.put(tl, next(), "a", "t2", 3, 10), del(tl, next(), "a", "t2", 3), h.put(tl, next(), "a", "t2", 3, 4600),
		h.put(tl, next(), "a", "t2", 5, 20), h.put(tl, next(), "a", "t2", 5, 21), // in place, twice
		del(tl, next(), "a", "t2", 7),
		h.put(tl, next(), "a", "t2", 100, 5), del(tl, next(), "a", "t2", 100), h.put(tl, next(), "a", "t2", 100, 6),
		h.put(tl, next(), "a", "t2", 101, 5), h.put(tl, next(), "a", "t2", 101, 7),
		del(tl, next(), "a", "t2", 999),                                    // a key that never was
		h.put(tl, next(), "a", "t2", 0, 10), del(tl, next(), "a", "t2", 0), // large image doc gone
	)
	for i := 0; i < 5; i++ {
		es = append(es, del(tl, next(), "gone", "t2", i))
	}
	es = append(es, drop(tl, next(), "b", "t2", 1), ix(tl, next(), "b", "t2", 1), ix(tl, next(), "b", "t2", 2), ix(tl, next(), "b", "t2", 3))
	for i := 0; i < 3; i++ {
		es = append(es, h.put(tl, next(), "c", "t2", i, 3000))
	}
	es = append(es, h.put(tl, next(), "b", "t2", 0, 1), drop(tl, next(), "zz", "t2", 0))
	h.commit(tl, "t2", es)
	img2 := lsn

	// c3: a run of 60 puts in a (one chunk), then a run in b.
	es = nil
	for i := 0; i < 60; i++ {
		es = append(es, h.put(tl, next(), "a", "t3", 200+i, 40))
	}
	c3a := lsn
	for i := 0; i < 10; i++ {
		es = append(es, del(tl, next(), "b", "t3", i))
	}
	h.commit(tl, "t3", es)
	fork := c3a - 25 // inside c3's chunk of a

	// c4 on main: above the fork.
	es = nil
	es = append(es, del(tl, next(), "a", "t4", 1), h.put(tl, next(), "c", "t4", 0, 9), drop(tl, next(), "a", "t4", 0))
	h.commit(tl, "t4", es)
	mainHead := lsn
	if _, err := r.TakeImage(ctx, "p", tl, img1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TakeImage(ctx, "p", tl, img2); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TakeImage(ctx, "p", tl, c3a); err != nil { // above the fork
		t.Fatal(err)
	}

	ftl := l.forkAt("f", fork)
	h.parent[ftl], h.base[ftl] = tl, fork
	lsn = fork
	es = nil
	es = append(es, del(ftl, next(), "a", "f1", 200), h.put(ftl, next(), "a", "f1", 3, 11), del(ftl, next(), "a", "f1", 101),
		h.put(ftl, next(), "a", "f1", 201, 4400), drop(ftl, next(), "b", "f1", 2), ix(ftl, next(), "b", "f1", 2), h.put(ftl, next(), "d", "f1", 1, 2))
	h.commit(ftl, "f1", es)
	fimg := lsn
	es = nil
	es = append(es, del(ftl, next(), "a", "f2", 3), h.put(ftl, next(), "a", "f2", 3, 12), del(ftl, next(), "d", "f2", 1), ix(ftl, next(), "d", "f2", 0))
	h.commit(ftl, "f2", es)
	forkHead := lsn
	if _, err := r.TakeImage(ctx, "p", ftl, fimg); err != nil {
		t.Fatal(err)
	}

	plain := *r
	plain.NoImages = true
	colls := []string{"", "a", "b", "c", "d", "gone", "zz"}
	// The plain fold does not depend on Scans (plain is a copy of r made
	// before the loop below sets it): it is checked against the model once.
	check := func(tl string, lsns []int64, checkPlain bool) (imaged int) {
		for _, at := range lsns {
			for _, coll := range colls {
				want := h.model(tl, at).lines(coll)
				if checkPlain {
					st, err := plain.Fold(ctx, tl, at, coll)
					if err != nil {
						t.Fatal(err)
					}
					if f := folded(st); strings.Join(f, "\n") != strings.Join(want, "\n") {
						t.Fatalf("model and plain fold differ at %s@%d %q: %s", tl, at, coll, firstDiff(f, want))
					}
				}
				var got streamed
				fs, err := r.FoldEach(ctx, tl, at, coll, got.sink())
				if err != nil {
					t.Fatalf("%s@%d %q: %v", tl, at, coll, err)
				}
				if fs.Image != nil {
					imaged++
				}
				if strings.Join(got.lines, "\n") != strings.Join(want, "\n") || got.resets != 0 {
					t.Fatalf("%s@%d %q (image %v): %s, %d resets", tl, at, coll, fs.Image != nil, firstDiff(got.lines, want), got.resets)
				}
			}
		}
		return imaged
	}
	var mainLSNs, forkLSNs []int64
	// Every sixth LSN of main in the README's suite, every one at the
	// nightly size (internal/testsize).
	for x := int64(0); x <= mainHead; x += int64(testsize.Pick(6, 1)) {
		mainLSNs = append(mainLSNs, x)
	}
	mainLSNs = append(mainLSNs, img1, img1+1, img2, img2+1, fork, c3a, mainHead)
	for x := fork - 3; x <= forkHead; x += int64(testsize.Pick(2, 1)) {
		forkLSNs = append(forkLSNs, x)
	}
	forkLSNs = append(forkLSNs, fork, fork+1, fimg, fimg+1, forkHead, img1+4, img2+2)
	for _, scans := range []bool{false, true} {
		r.Scans = scans
		n := check(tl, mainLSNs, !scans) + check(ftl, forkLSNs, !scans)
		if n < 50 {
			t.Fatalf("Scans %v: only %d streams from an image", scans, n)
		}
	}
}

// A chunk whose data field is not a byte string (another BSON type) is
// damage like any other: Fold passes such an image over (loadNearest skips
// an image that fails to load for any reason); the stream must do the
// same, not fail the checkout, rebuild or find --at that reads it.
func TestReview26FoldEachUndecodableChunk(t *testing.T) {
	for _, c := range []struct {
		name string
		data any
	}{
		{"int", int32(7)},
		{"binary subtype 0x80", bson.Binary{Subtype: 0x80, Data: []byte("x")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newChainLog(t)
			ctx := context.Background()
			plain := *l.r
			plain.NoImages = true
			var es []Entry
			for i := 1; i <= 10; i++ {
				es = append(es, l.entry(l.main, int64(i), "a", OpPut, "t1", i))
			}
			l.commit(l.main, "t1", es)
			img, err := l.r.TakeImage(ctx, "p", l.main, 10)
			if err != nil {
				t.Fatal(err)
			}
			l.commit(l.main, "t2", []Entry{l.entry(l.main, 11, "a", OpDel, "t2", 4)})
			if _, err := l.r.DB.Collection(img.Coll).UpdateOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(0)}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: c.data}}}}); err != nil {
				t.Fatal(err)
			}
			want, err := plain.Fold(ctx, l.main, 11, "")
			if err != nil {
				t.Fatal(err)
			}
			st, fs, err := l.r.FoldWithStats(ctx, l.main, 11, "")
			if err != nil || fs.Image != nil || strings.Join(folded(st), "\n") != strings.Join(folded(want), "\n") {
				t.Fatalf("Fold: %v, image %v", err, fs.Image)
			}
			var got streamed
			if _, err := l.r.FoldEach(ctx, l.main, 11, "", got.sink()); err != nil {
				t.Fatalf("FoldEach over an image whose chunk does not decode: %v (Fold passes it over)", err)
			}
			// The chunk is found damaged before any of its documents is
			// passed on: nothing to forget.
			if strings.Join(got.lines, "\n") != strings.Join(folded(want), "\n") || got.resets != 0 {
				t.Fatalf("FoldEach: %s, %d resets", firstDiff(got.lines, folded(want)), got.resets)
			}
		})
	}
}

// Every chunk of an image damaged in turn (a byte of each record flipped,
// the chunk cut short, the chunk gone), whole and by collection: the plain
// fold's result, with no reset when the chunks have checksums of their
// own and one at most when not; a sink that fails on a damaged image
// without them is reset and the stream succeeds without it, and one that
// fails on checked documents fails the stream.
func TestReview26FoldEachDamageEverywhere(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	plain := *l.r
	plain.NoImages = true
	img, at := r27OneImage(t, l)
	chunks := l.r.DB.Collection(img.Coll)
	wants := map[string]string{}
	for _, coll := range []string{"", "a", "b"} {
		st, err := plain.Fold(ctx, l.main, at, coll)
		if err != nil {
			t.Fatal(err)
		}
		wants[coll] = strings.Join(folded(st), "\n")
	}
	run := func(label string, wantResets map[string]int) {
		t.Helper()
		for _, coll := range []string{"", "a", "b"} {
			var got streamed
			fs, err := l.r.FoldEach(ctx, l.main, at, coll, got.sink())
			if err != nil || strings.Join(got.lines, "\n") != wants[coll] || got.resets != wantResets[coll] {
				t.Fatalf("%s, %q: %v, image %v, %d resets (want %d), %s", label, coll, err, fs.Image != nil, got.resets, wantResets[coll],
					firstDiff(got.lines, strings.Split(wants[coll], "\n")))
			}
		}
	}
	run("intact", nil)
	// Twice: with the chunks' own checksums (nothing passed on is ever
	// wrong: no reset), then as an image written before them (damage is
	// found at the end of a collection: one reset).
	for _, checked := range []bool{true, false} {
		if !checked {
			if _, err := l.r.DB.Collection(collImages).UpdateOne(ctx, bson.D{{Key: "_id", Value: img.ID}},
				bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, ic := range img.Colls {
			other := map[string]string{"a": "b", "b": "a"}[ic.Name]
			resets := map[string]int{"": 1, ic.Name: 1, other: 0}
			if checked {
				resets = nil
			}
			for n := ic.First; n < ic.First+ic.Chunks; n++ {
				id := imageChunkID(n)
				var d imageChunkDoc2
				if err := chunks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
					t.Fatal(err)
				}
				orig := d.Data
				set := func(data []byte) {
					if _, err := chunks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: data}}}}); err != nil {
						t.Fatal(err)
					}
				}
				// The README's suite flips one of the four bytes of each
				// chunk, in turn; the nightly size all four.
				for oi, off := range []int{0, 7, len(orig) / 2, len(orig) - 1} {
					if off < 0 || off >= len(orig) || (oi+n)%testsize.Stride(4) != 0 {
						continue
					}
					b := append([]byte(nil), orig...)
					b[off] ^= 0x41
					set(b)
					run(fmt.Sprintf("chunk %d byte %d flipped", n, off), resets)
				}
				set(orig[:len(orig)/2])
				run(fmt.Sprintf("chunk %d cut", n), resets)
				set(append(append([]byte(nil), orig...), 'd'))
				run(fmt.Sprintf("chunk %d one byte more", n), resets)
				set(orig)
				if _, err := chunks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
					t.Fatal(err)
				}
				run(fmt.Sprintf("chunk %d gone", n), resets)
				if _, err := chunks.InsertOne(ctx, imageChunkDoc2{ID: id, Data: orig}); err != nil {
					t.Fatal(err)
				}
				run("restored", nil)
			}
		}
	}

	// A sink that fails on the damaged image's records: the damage is
	// what made it fail, so the stream resets and succeeds without it.
	b := img.Colls[1]
	id := imageChunkID(b.First + b.Chunks - 1)
	var d imageChunkDoc2
	if err := chunks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), d.Data...)
	bad[len(bad)-3] ^= 1
	if _, err := chunks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: bad}}}}); err != nil {
		t.Fatal(err)
	}
	var got streamed
	s := got.sink()
	failed, fromImage := false, true
	s.Doc = func(coll string, doc bson.Raw) error {
		if coll == "b" && fromImage && !failed {
			failed = true
			return fmt.Errorf("duplicate key")
		}
		got.lines = append(got.lines, fmt.Sprintf("d %s %x", coll, []byte(doc)))
		return nil
	}
	reset := s.Reset
	s.Reset = func() error { fromImage = false; return reset() }
	if _, err := l.r.FoldEach(ctx, l.main, at, "", s); err != nil || !failed || got.resets != 1 || strings.Join(got.lines, "\n") != wants[""] {
		t.Fatalf("a sink failing on a damaged image: %v, failed %v, %d resets", err, failed, got.resets)
	}
	// With the chunks' own checksums, the documents the sink failed on
	// were checked: its failure is its own, and the stream fails.
	if _, err := l.r.DB.Collection(collImages).UpdateOne(ctx, bson.D{{Key: "_id", Value: img.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "chunk_sums", Value: img.ChunkSums}}}}); err != nil {
		t.Fatal(err)
	}
	got, failed, fromImage = streamed{}, false, true
	if _, err := l.r.FoldEach(ctx, l.main, at, "", s); err == nil || err.Error() != "duplicate key" || got.resets != 0 {
		t.Fatalf("a sink failing on checked documents: %v, %d resets", err, got.resets)
	}
}

// fsck's check of an image must find what makes reads pass it over. A
// format-2 image's chunk collection holding a chunk more than its header
// names is refused by LoadImage (a fold of the whole state passes it
// over, and TakeImage deletes its header), as fsck before 2cf5d17
// reported; the chunk-at-a-time check read only the chunks the header
// names and reported nothing (fixed: it counts them).
func TestReview26VerifyImagesExtraChunk(t *testing.T) {
	l := newChainLog(t)
	ctx := context.Background()
	var es []Entry
	for i := 1; i <= 5; i++ {
		es = append(es, l.entry(l.main, int64(i), "a", OpPut, "t1", i))
	}
	l.commit(l.main, "t1", es)
	img, err := l.r.TakeImage(ctx, "p", l.main, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.r.DB.Collection(img.Coll).InsertOne(ctx, imageChunkDoc2{ID: imageChunkID(img.Chunks), Data: []byte("stray")}); err != nil {
		t.Fatal(err)
	}
	_, loadErr := l.r.LoadImage(ctx, img, "")
	_, fs, err := l.r.FoldWithStats(ctx, l.main, 5, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LoadImage: %v; Fold from image: %v", loadErr, fs.Image != nil)
	problems, _, err := l.r.VerifyImages(ctx, map[string]bool{l.main: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	if loadErr != nil && len(problems) == 0 {
		t.Fatalf("fsck reports no problem with an image that reads refuse (%v)", loadErr)
	}
}

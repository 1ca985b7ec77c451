package wal

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// streamed is what FoldEach passed on, one line per record, and how many
// times it reset.
type streamed struct {
	lines  []string
	resets int
}

func (s *streamed) sink() StateSink {
	return StateSink{
		Doc: func(coll string, doc bson.Raw) error {
			s.lines = append(s.lines, fmt.Sprintf("d %s %x", coll, []byte(doc)))
			return nil
		},
		Index: func(coll string, spec bson.Raw) error {
			s.lines = append(s.lines, fmt.Sprintf("i %s %x", coll, []byte(spec)))
			return nil
		},
		Reset: func() error {
			s.lines = nil
			s.resets++
			return nil
		},
	}
}

// folded is the same listing of a fold's state: collections by name, each
// one's documents in order, then its indexes.
func folded(st *State) []string {
	var out []string
	for _, c := range st.Collections() {
		for _, d := range st.Docs(c) {
			out = append(out, fmt.Sprintf("d %s %x", c, []byte(d)))
		}
		for _, spec := range st.Indexes(c) {
			out = append(out, fmt.Sprintf("i %s %x", c, []byte(spec)))
		}
	}
	return out
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("record %d: %.60s, want %.60s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("%d records, want %d", len(a), len(b))
}

// smallChunks makes r cut images into chunks of 2 KiB (copies of r made
// after too), so that records span chunks without megabytes of documents.
func smallChunks(r *Repo) {
	r.imageChunk = 2 << 10
}

// randomCommits writes n commits of random puts, deletes, puts again and
// index changes over keys of two collections; some documents are larger
// than the chunks smallChunks makes. It returns the head LSN after each
// commit.
func randomCommits(l *chainLog, rng *rand.Rand, n int) []int64 {
	var heads []int64
	lsn := l.heads[l.main][1]
	for c := 0; c < n; c++ {
		token := fmt.Sprintf("c%d", len(l.heads[l.main])+int(lsn))
		var es []Entry
		for j := 0; j < 30; j++ {
			lsn++
			coll := []string{"a", "b"}[rng.IntN(2)]
			k := rng.IntN(25)
			switch r := rng.IntN(20); {
			case r < 13:
				e := l.entry(l.main, lsn, coll, OpPut, token, k)
				pad := rng.IntN(400)
				if rng.IntN(10) == 0 {
					pad = 5000
				}
				e.Doc, _ = bson.Marshal(bson.D{{Key: "_id", Value: int32(k)}, {Key: "v", Value: lsn}, {Key: "p", Value: strings.Repeat("x", pad)}})
				es = append(es, e)
			case r < 18:
				es = append(es, l.entry(l.main, lsn, coll, OpDel, token, k))
			case r < 19:
				es = append(es, l.entry(l.main, lsn, coll, OpIndex, token, k%3))
			default:
				e := l.entry(l.main, lsn, coll, OpIndex, token, k%3)
				e.Op, e.Doc = OpDropIndex, nil
				es = append(es, e)
			}
		}
		l.commit(l.main, token, es)
		heads = append(heads, lsn)
	}
	return heads
}

// A streamed state is the fold's, record for record and in the same
// order, at every LSN, from any image below it, whole or by collection:
// documents the entries above the image changed stay in the image's
// place, deleted ones are left out, ones deleted and put again (or new)
// follow in the order they came into being, indexes last.
func TestFoldEachMatchesFold(t *testing.T) {
	t.Parallel()
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	plain := *l.r
	plain.NoImages = true
	rng := rand.New(rand.NewPCG(7, 9))
	heads := randomCommits(l, rng, 6)
	for _, at := range []int64{heads[1], heads[3] - 7} {
		if _, err := l.r.TakeImage(ctx, "p", l.main, at); err != nil {
			t.Fatal(err)
		}
	}
	imaged := 0
	for lsn := int64(0); lsn <= heads[len(heads)-1]; lsn += 1 + int64(rng.IntN(5)) {
		for _, coll := range []string{"", "a", "b"} {
			want, err := plain.Fold(ctx, l.main, lsn, coll)
			if err != nil {
				t.Fatal(err)
			}
			var got streamed
			fs, err := l.r.FoldEach(ctx, l.main, lsn, coll, got.sink())
			if err != nil {
				t.Fatal(err)
			}
			if fs.Image != nil {
				imaged++
			}
			if w := folded(want); strings.Join(got.lines, "\n") != strings.Join(w, "\n") || got.resets != 0 {
				t.Fatalf("LSN %d, collection %q, image %v: %s (%d resets)", lsn, coll, fs.Image != nil, firstDiff(got.lines, w), got.resets)
			}
		}
	}
	if imaged < 10 {
		t.Fatalf("only %d streams started from an image", imaged)
	}
}

// A damaged image is found at the end of its collection's chunks, after
// some of its documents were passed on: the sink is reset once and the
// stream starts again without it, with the same result. A sink that fails
// on an intact image fails the stream, with no reset.
func TestFoldEachDamagedImage(t *testing.T) {
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	plain := *l.r
	plain.NoImages = true
	heads := randomCommits(l, rand.New(rand.NewPCG(3, 4)), 4)
	at := heads[len(heads)-1]
	img, err := l.r.TakeImage(ctx, "p", l.main, heads[2])
	if err != nil {
		t.Fatal(err)
	}
	want, err := plain.Fold(ctx, l.main, at, "")
	if err != nil {
		t.Fatal(err)
	}
	a := img.Colls[0]
	if a.Name != "a" || a.Chunks < 3 {
		t.Fatalf("collection a in %d chunks, want at least 3", a.Chunks)
	}

	boom := errors.New("the sink's own failure")
	var n int
	var seen streamed
	failing := seen.sink()
	failing.Doc = func(string, bson.Raw) error {
		if n++; n == 3 {
			return boom
		}
		return nil
	}
	if _, err := l.r.FoldEach(ctx, l.main, at, "", failing); !errors.Is(err, boom) || seen.resets != 0 {
		t.Fatalf("a failing sink: %v, %d resets", err, seen.resets)
	}

	chunks := l.r.DB.Collection(img.Coll)
	var last imageChunkDoc2
	if err := chunks.FindOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(a.First + a.Chunks - 1)}}).Decode(&last); err != nil {
		t.Fatal(err)
	}
	damage := []struct {
		name string
		data []byte
	}{
		// a byte of a document's padding: every record reads, the
		// checksum does not match
		{"flipped", func() []byte { b := append([]byte(nil), last.Data...); b[len(b)/2] ^= 1; return b }()},
		// the end cut: the last record is never complete
		{"cut", last.Data[:len(last.Data)-5]},
		// records that do not read
		{"garbage", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	// The chunks' own checksums (checked): each damage is found before
	// the chunk's documents are passed on, and the stream passes over
	// what it passed on already. Without them (an image written before),
	// at the end of the collection: the sink forgets everything once; a
	// sink that cannot forget is given the fold instead.
	headers := l.r.DB.Collection(collImages)
	for _, mode := range []string{"checked", "unchecked", "unchecked, no reset"} {
		if mode == "unchecked" {
			if _, err := headers.UpdateOne(ctx, bson.D{{Key: "_id", Value: img.ID}},
				bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range damage {
			if _, err := chunks.UpdateOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(a.First + a.Chunks - 1)}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: d.data}}}}); err != nil {
				t.Fatal(err)
			}
			var got streamed
			sink := got.sink()
			wantResets := map[string]int{"checked": 0, "unchecked": 1}[mode]
			if mode == "unchecked, no reset" {
				sink.Reset = nil
			}
			fs, err := l.r.FoldEach(ctx, l.main, at, "", sink)
			if err != nil {
				t.Fatalf("%s, %s: %v", mode, d.name, err)
			}
			if fs.Image != nil || got.resets != wantResets {
				t.Fatalf("%s, %s: image %v, %d resets, want none and %d", mode, d.name, fs.Image, got.resets, wantResets)
			}
			if w := folded(want); strings.Join(got.lines, "\n") != strings.Join(w, "\n") {
				t.Fatalf("%s, %s: %s", mode, d.name, firstDiff(got.lines, w))
			}
		}
		if _, err := chunks.UpdateOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(a.First + a.Chunks - 1)}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: last.Data}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Unchecked and intact, a sink that cannot forget is not streamed the
	// image: it gets the fold, from the log (the image is read whole).
	var whole streamed
	sink := whole.sink()
	sink.Reset = nil
	if fs, err := l.r.FoldEach(ctx, l.main, at, "", sink); err != nil || fs.Image == nil || fs.Image.ID != img.ID ||
		strings.Join(whole.lines, "\n") != strings.Join(folded(want), "\n") {
		t.Fatalf("unchecked, no reset, intact: %v, image %v", err, fs.Image)
	}

	// A chunk gone: found when it is read.
	if _, err := chunks.DeleteOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(a.First + 1)}}); err != nil {
		t.Fatal(err)
	}
	var got streamed
	if fs, err := l.r.FoldEach(ctx, l.main, at, "", got.sink()); err != nil || fs.Image != nil || got.resets != 1 ||
		strings.Join(got.lines, "\n") != strings.Join(folded(want), "\n") {
		t.Fatalf("a chunk gone: %v, image %v, %d resets", err, fs.Image, got.resets)
	}
}

// fsck's check of an image (VerifyImages) reads its chunks one at a time:
// an intact image is the fold's encoding; a damaged or missing chunk is
// reported by what is wrong with it, and an image whose chunks are fine
// but hold another state by the fold's encoding.
func TestVerifyImagesChunkByChunk(t *testing.T) {
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	heads := randomCommits(l, rand.New(rand.NewPCG(5, 6)), 3)
	img, err := l.r.TakeImage(ctx, "p", l.main, heads[2])
	if err != nil {
		t.Fatal(err)
	}
	older, err := l.r.TakeImage(ctx, "p", l.main, heads[0])
	if err != nil {
		t.Fatal(err)
	}
	tls := map[string]bool{l.main: true}
	check := func(what string, want ...string) {
		t.Helper()
		problems, _, err := l.r.VerifyImages(ctx, tls, false)
		if err != nil || fmt.Sprint(problems) != fmt.Sprint(want) {
			t.Fatalf("%s: %q, %v; want %q", what, problems, err, want)
		}
	}
	check("intact")

	// The older image's header pointed at the newer one's chunks: every
	// chunk matches its checksum, the state is not the fold's.
	images := l.r.DB.Collection(collImages)
	set := func(id string, fields bson.D) {
		t.Helper()
		if _, err := images.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: fields}}); err != nil {
			t.Fatal(err)
		}
	}
	set(older.ID, bson.D{{Key: "coll", Value: img.Coll}, {Key: "chunks", Value: img.Chunks}, {Key: "colls", Value: img.Colls}, {Key: "chunk_sums", Value: img.ChunkSums}})
	check("another state", fmt.Sprintf("image %s@%d differs from a fold of the log", l.main, older.LSN))
	set(older.ID, bson.D{{Key: "coll", Value: older.Coll}, {Key: "chunks", Value: older.Chunks}, {Key: "colls", Value: older.Colls}, {Key: "chunk_sums", Value: older.ChunkSums}})
	check("restored")

	chunks := l.r.DB.Collection(img.Coll)
	b := img.Colls[1]
	id := imageChunkID(b.First + 1)
	var d imageChunkDoc2
	if err := chunks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	d.Data[len(d.Data)/2] ^= 1
	if _, err := chunks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: d.Data}}}}); err != nil {
		t.Fatal(err)
	}
	check("a byte flipped", fmt.Sprintf(`image %s@%d: chunk %d does not match its checksum`, l.main, img.LSN, b.First+1))
	if _, err := chunks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		t.Fatal(err)
	}
	check("a chunk gone", fmt.Sprintf("image %s@%d: %d of its %d chunks are stored", l.main, img.LSN, img.Chunks-1, img.Chunks))
}

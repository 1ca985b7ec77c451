package wal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Each collection's stream is cut into chunks no larger than imageChunk,
// also when one document is larger than a chunk; no chunk holds records
// of two collections; the header's runs place every chunk; and the joined
// chunks decode to the same state, in the same order.
func TestImageChunks(t *testing.T) {
	st := NewState()
	sizes := []int{10, imageChunk + 100, 3 * imageChunk, 20, imageChunk - 50}
	for i, n := range sizes {
		for _, coll := range []string{"a", "c"} {
			doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(len(sizes) - i)}, {Key: "s", Value: strings.Repeat("x", n)}})
			e, err := PutEntry(coll, doc)
			if err != nil {
				t.Fatal(err)
			}
			e.LSN = int64(i + 1)
			st.Apply(&e)
		}
	}
	small, _ := bson.Marshal(bson.D{{Key: "_id", Value: "only"}})
	e, _ := PutEntry("b", small)
	e.LSN = 9
	st.Apply(&e)
	chunks, colls, docs, _ := encodeImage(st)
	if docs != int64(2*len(sizes)+1) || len(colls) != 3 {
		t.Fatalf("%d documents in %d collections", docs, len(colls))
	}
	next := 0
	for _, ic := range colls {
		if ic.First != next || ic.Chunks < 1 {
			t.Fatalf("collection %s at chunks %d+%d, want from %d", ic.Name, ic.First, ic.Chunks, next)
		}
		total := int64(0)
		for i := ic.First; i < ic.First+ic.Chunks; i++ {
			c := chunks[i]
			if len(c) > imageChunk || (i < ic.First+ic.Chunks-1 && len(c) != imageChunk) {
				t.Fatalf("chunk %d of collection %s holds %d bytes (at most %d, all but its last full)", i, ic.Name, len(c), imageChunk)
			}
			total += int64(len(c))
			one := NewState()
			if err := decodeImage(one, bytes.Join(chunks[ic.First:ic.First+ic.Chunks], nil), ""); err != nil {
				t.Fatal(err)
			}
			if got := one.Collections(); len(got) != 1 || got[0] != ic.Name {
				t.Fatalf("the chunks of %s hold collections %v", ic.Name, got)
			}
		}
		if total != ic.Bytes {
			t.Fatalf("collection %s: %d bytes in its chunks, header says %d", ic.Name, total, ic.Bytes)
		}
		next += ic.Chunks
	}
	if next != len(chunks) || colls[0].Chunks < 5 || colls[1].Chunks != 1 {
		t.Fatalf("runs %+v over %d chunks", colls, len(chunks))
	}
	got := NewState()
	joined := bytes.Join(chunks, nil)
	if err := decodeImage(got, joined, ""); err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"a", "b", "c"} {
		want := st.Docs(coll)
		have := got.Docs(coll)
		if len(have) != len(want) {
			t.Fatalf("%s: %d documents decoded, want %d", coll, len(have), len(want))
		}
		for i := range want {
			if !bytes.Equal(have[i], want[i]) {
				t.Fatalf("%s: document %d differs", coll, i)
			}
		}
	}
	if err := decodeImage(NewState(), joined[:len(joined)-1], ""); err == nil {
		t.Fatal("a truncated stream decoded")
	}
}

// A read of one collection of an image reads that collection's chunks
// only: it loads when the other collections' chunks are gone, and it
// finds its own missing or damaged (and a fold then passes the image
// over). An image of format 1, one stream of every collection, still
// loads.
func TestImageReadsOneCollection(t *testing.T) {
	l := newChainLog(t)
	r, ctx, tl := l.r, context.Background(), l.main
	var es []Entry
	for i := 1; i <= 120; i++ {
		coll := "a"
		if i > 80 {
			coll = "b"
		}
		es = append(es, l.entry(tl, int64(i), coll, OpPut, "t1", i))
	}
	es = append(es, l.entry(tl, 121, "a", OpIndex, "t1", 1))
	l.commit(tl, "t1", es)
	img, err := r.TakeImage(ctx, "p", tl, 121)
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != imageFormat || len(img.Colls) != 2 || img.Colls[0].Name != "a" || img.Colls[1].Name != "b" {
		t.Fatalf("image of format %d with collections %+v", img.Format, img.Colls)
	}
	plain := *r
	plain.NoImages = true
	want := func(coll string) *State {
		st, err := plain.Fold(ctx, tl, 121, coll)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	same := func(what string, got, want *State) {
		t.Helper()
		if !bytes.Equal(stateBytes(got), stateBytes(want)) || fmt.Sprint(got.Indexes("a")) != fmt.Sprint(want.Indexes("a")) {
			t.Fatalf("%s: the image's state differs from the log's", what)
		}
	}
	for _, coll := range []string{"", "a", "b"} {
		got, err := r.LoadImage(ctx, img, coll)
		if err != nil {
			t.Fatal(err)
		}
		same("collection "+coll, got, want(coll))
	}
	if got, err := r.LoadImage(ctx, img, "none"); err != nil || len(got.Collections()) != 0 {
		t.Fatalf("a collection the image does not hold: %v, %v", got.Collections(), err)
	}

	// Format 1: the same records as one stream, under integer _ids.
	old := *img
	old.Format, old.Coll = imageFormat1, img.Coll+"_f1"
	chunks, _, _, _ := encodeImage(want(""))
	stream := bytes.Join(chunks, nil)
	sum := sha256.Sum256(stream)
	old.Sum, old.Chunks = hex.EncodeToString(sum[:]), 1
	if _, err := r.DB.Collection(old.Coll).InsertOne(ctx, imageChunkDoc{N: 0, Data: stream}); err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"", "b"} {
		got, err := r.LoadImage(ctx, &old, coll)
		if err != nil {
			t.Fatal(err)
		}
		same("format 1, collection "+coll, got, want(coll))
	}

	// Collection a's chunks gone: b still loads, a and the whole state
	// do not, and a fold of a passes the image over.
	chunkColl := r.DB.Collection(img.Coll)
	if _, err := chunkColl.DeleteOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(img.Colls[0].First)}}); err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadImage(ctx, img, "b")
	if err != nil {
		t.Fatal(err)
	}
	same("b without a's chunks", got, want("b"))
	var ie *ImageError
	for _, coll := range []string{"", "a"} {
		if _, err := r.LoadImage(ctx, img, coll); !errors.As(err, &ie) {
			t.Fatalf("collection %q without a's chunks: %v, want an image error", coll, err)
		}
	}
	st, fs, err := r.FoldWithStats(ctx, tl, 121, "a")
	if err != nil || fs.Image != nil {
		t.Fatalf("fold of a: image %v, %v", fs.Image, err)
	}
	same("fold of a", st, want("a"))

	// b's chunk damaged: found by its checksum.
	if _, err := chunkColl.UpdateOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(img.Colls[1].First)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: []byte("x")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadImage(ctx, img, "b"); !errors.As(err, &ie) || !strings.Contains(err.Error(), `the chunks of collection "b" do not match its checksum`) {
		t.Fatalf("b damaged: %v", err)
	}
}

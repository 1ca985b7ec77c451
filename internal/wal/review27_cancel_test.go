package wal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// r27OneImage writes 12 documents of a and 12 of b (each collection in
// several 2 KiB chunks), an index on b, images the state, and writes
// above it. It returns the image and the head.
func r27OneImage(t *testing.T, l *chainLog) (*Image, int64) {
	ctx := context.Background()
	var es []Entry
	lsn := int64(0)
	for i := 0; i < 12; i++ {
		for _, coll := range []string{"a", "b"} {
			lsn++
			e := l.entry(l.main, lsn, coll, OpPut, "t1", i)
			e.Doc, _ = bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "p", Value: strings.Repeat("y", 300+i*100)}})
			es = append(es, e)
		}
	}
	lsn++
	es = append(es, l.entry(l.main, lsn, "b", OpIndex, "t1", 1))
	l.commit(l.main, "t1", es)
	img, err := l.r.TakeImage(ctx, "p", l.main, lsn)
	if err != nil {
		t.Fatal(err)
	}
	l.commit(l.main, "t2", []Entry{l.entry(l.main, lsn+1, "a", OpDel, "t2", 2), l.entry(l.main, lsn+2, "b", OpPut, "t2", 50)})
	return img, lsn + 2
}

// A stream cancelled by its caller (the context, as a sink's insert sees
// it) ends with the cancellation, never passed off as a damaged image
// and never followed by a reset or a new start, whatever the image:
// checked or not, intact or damaged where the cancellation happens.
// FAILS for an image without chunk checksums damaged in the chunk the
// cancellation happens in (its collection's last): eachImageRecord keeps
// the sink's error, reads on, returns the collection's *ImageError
// (stream.go:363), and FoldEach returns that error as it is when the
// context is done (stream.go:159), where it should return the
// cancellation (cmd/root.go:97 then prints the damage instead of exiting
// quietly as interrupted).
func TestReview27CancelIsNotDamage(t *testing.T) {
	l := newChainLog(t)
	smallChunks(l.r)
	img, at := r27OneImage(t, l)
	chunks := l.r.DB.Collection(img.Coll)
	headers := l.r.DB.Collection(collImages)
	a := img.Colls[0]
	if a.Name != "a" || a.Chunks < 3 {
		t.Fatalf("collection a in %d chunks, want 3 or more", a.Chunks)
	}
	lastID := imageChunkID(a.First + a.Chunks - 1)
	var last imageChunkDoc2
	if err := chunks.FindOne(context.Background(), bson.D{{Key: "_id", Value: lastID}}).Decode(&last); err != nil {
		t.Fatal(err)
	}
	setLast := func(data []byte) {
		if _, err := chunks.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: lastID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: data}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Which documents of a the last chunk holds: those after the first
	// ones a stream of the intact image gives before reading it.
	var all streamed
	if _, err := l.r.FoldEach(context.Background(), l.main, at, "a", all.sink()); err != nil {
		t.Fatal(err)
	}
	for _, checked := range []bool{true, false} {
		if !checked {
			if _, err := headers.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: img.ID}},
				bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, damaged := range []bool{false, true} {
			if damaged {
				b := append([]byte(nil), last.Data...)
				b[len(b)-3] ^= 1 // inside the last document's padding
				setLast(b)
			}
			// Cancel on each document of a in turn.
			for n := 1; n <= len(all.lines); n++ {
				label := fmt.Sprintf("checked %v, damaged %v, cancelled on document %d of a", checked, damaged, n)
				ctx, cancel := context.WithCancel(context.Background())
				var got streamed
				sink := got.sink()
				seen := 0
				sink.Doc = func(c string, d bson.Raw) error {
					if c == "a" {
						if seen++; seen == n {
							cancel()
							return fmt.Errorf("insert: %w", ctx.Err())
						}
					}
					return nil
				}
				_, err := l.r.FoldEach(ctx, l.main, at, "", sink)
				cancel()
				var ie *ImageError
				if !errors.Is(err, context.Canceled) || errors.As(err, &ie) || got.resets != 0 {
					t.Fatalf("%s: %v (an image error: %v), %d resets; want the cancellation", label, err, errors.As(err, &ie), got.resets)
				}
			}
			if damaged {
				setLast(last.Data)
			}
		}
	}
}

// A checked image damaged in its last chunk of a, after its first chunks
// were given: the sink's own failure on any document of a (given from
// the image, or from the fold the stream starts again from) fails the
// stream, with no reset.
func TestReview27SinkFailureAcrossRestart(t *testing.T) {
	l := newChainLog(t)
	smallChunks(l.r)
	img, at := r27OneImage(t, l)
	chunks := l.r.DB.Collection(img.Coll)
	a := img.Colls[0]
	lastID := imageChunkID(a.First + a.Chunks - 1)
	var last imageChunkDoc2
	if err := chunks.FindOne(context.Background(), bson.D{{Key: "_id", Value: lastID}}).Decode(&last); err != nil {
		t.Fatal(err)
	}
	var all streamed
	if _, err := l.r.FoldEach(context.Background(), l.main, at, "a", all.sink()); err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), last.Data...)
	b[len(b)/2] ^= 1
	if _, err := chunks.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: lastID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: b}}}}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("the sink's own failure")
	for n := 1; n <= len(all.lines); n++ {
		var got streamed
		sink := got.sink()
		seen := 0
		sink.Doc = func(c string, d bson.Raw) error {
			if c == "a" {
				if seen++; seen == n {
					return boom
				}
			}
			return nil
		}
		if _, err := l.r.FoldEach(context.Background(), l.main, at, "", sink); !errors.Is(err, boom) || got.resets != 0 {
			t.Fatalf("a sink failing on document %d of a: %v, %d resets", n, err, got.resets)
		}
	}
}

package wal

import (
	"bytes"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An image's stream is cut into chunks no larger than imageChunk, also
// when one document is larger than a chunk, and the joined chunks decode
// to the same state, in the same order.
func TestImageChunks(t *testing.T) {
	st := NewState()
	sizes := []int{10, imageChunk + 100, 3 * imageChunk, 20, imageChunk - 50}
	for i, n := range sizes {
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(len(sizes) - i)}, {Key: "s", Value: strings.Repeat("x", n)}})
		e, err := PutEntry("c", doc)
		if err != nil {
			t.Fatal(err)
		}
		e.LSN = int64(i + 1)
		st.Apply(&e)
	}
	chunks, docs, _ := encodeImage(st)
	total := 0
	for i, c := range chunks {
		if len(c) > imageChunk || (i < len(chunks)-1 && len(c) != imageChunk) {
			t.Fatalf("chunk %d of %d holds %d bytes (at most %d, all but the last full)", i, len(chunks), len(c), imageChunk)
		}
		total += len(c)
	}
	if docs != int64(len(sizes)) || len(chunks) < 5 {
		t.Fatalf("%d documents in %d chunks", docs, len(chunks))
	}
	got := NewState()
	if err := decodeImage(got, bytes.Join(chunks, nil), ""); err != nil {
		t.Fatal(err)
	}
	want := st.Docs("c")
	have := got.Docs("c")
	if len(have) != len(want) {
		t.Fatalf("%d documents decoded, want %d", len(have), len(want))
	}
	for i := range want {
		if !bytes.Equal(have[i], want[i]) {
			t.Fatalf("document %d differs", i)
		}
	}
	if err := decodeImage(NewState(), bytes.Join(chunks, nil)[:total-1], ""); err == nil {
		t.Fatal("a truncated stream decoded")
	}
}

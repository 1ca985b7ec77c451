package wal

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// fsck reports an image whose header's checksum of a chunk does not
// match the chunk (the header damaged, the data intact): a streamed read
// passes the image over for it, as it passes over a damaged chunk. The
// same image without chunk checksums is intact, and so is one whose
// every chunk was rewritten with the same data. A stream over the image
// while its header is wrong gives the fold (from the image read whole:
// LoadImage checks the collections' checksums, not the chunks').
func TestReview27VerifyImagesChunkSums(t *testing.T) {
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	img, at := r27OneImage(t, l)
	tls := map[string]bool{l.main: true}
	headers := l.r.DB.Collection(collImages)
	setSums := func(sums []byte) {
		t.Helper()
		if _, err := headers.UpdateOne(ctx, bson.D{{Key: "_id", Value: img.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "chunk_sums", Value: sums}}}}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(label string, want ...string) {
		t.Helper()
		problems, _, err := l.r.VerifyImages(ctx, tls, false)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if strings.Join(problems, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: fsck says %q, want %q", label, problems, want)
		}
	}
	plain := *l.r
	plain.NoImages = true
	want, err := plain.Fold(ctx, l.main, at, "")
	if err != nil {
		t.Fatal(err)
	}
	check("intact")
	for n := 0; n < img.Chunks; n++ {
		bad := append([]byte(nil), img.ChunkSums...)
		bad[n*32+7] ^= 1
		setSums(bad)
		check(fmt.Sprintf("sum of chunk %d wrong", n), fmt.Sprintf("image %s@%d: chunk %d does not match its checksum", l.main, img.LSN, n))
		var got streamed
		sink := got.sink()
		sink.Reset = nil
		if _, err := l.r.FoldEach(ctx, l.main, at, "", sink); err != nil || strings.Join(got.lines, "\n") != strings.Join(folded(want), "\n") {
			t.Fatalf("sum of chunk %d wrong: stream %v, %s", n, err, firstDiff(got.lines, folded(want)))
		}
	}
	setSums(img.ChunkSums)
	check("restored")
	if _, err := headers.UpdateOne(ctx, bson.D{{Key: "_id", Value: img.ID}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	check("without chunk checksums")
	setSums(img.ChunkSums)
	chunks := l.r.DB.Collection(img.Coll)
	for n := 0; n < img.Chunks; n++ {
		var d imageChunkDoc2
		if err := chunks.FindOne(ctx, bson.D{{Key: "_id", Value: imageChunkID(n)}}).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if _, err := chunks.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d); err != nil {
			t.Fatal(err)
		}
	}
	check("chunks rewritten")
	// A header whose chunk checksums are not one per chunk: read as an
	// image without them (right, only not streamed into a first build),
	// and reported.
	setSums(img.ChunkSums[:len(img.ChunkSums)-32])
	problems, _, err := l.r.VerifyImages(ctx, tls, false)
	wantMsg := fmt.Sprintf("image %s@%d: its header holds %d bytes of chunk checksums for %d chunks", l.main, img.LSN, len(img.ChunkSums)-32, img.Chunks)
	if err != nil || len(problems) != 1 || problems[0] != wantMsg {
		t.Fatalf("chunk checksums one short: fsck %v %q, want %q", err, problems, wantMsg)
	}
}

// A checked image whose header's checksum of a collection is wrong (its
// chunks' own are right): every document of the collection is passed on,
// checked, before the collection's checksum fails; the stream starts
// again and passes over all of them, then gives the documents created
// above the image and the indexes, once. fsck reports the image.
func TestReview27CollectionSumWrong(t *testing.T) {
	l := newChainLog(t)
	smallChunks(l.r)
	ctx := context.Background()
	img, at := r27OneImage(t, l)
	plain := *l.r
	plain.NoImages = true
	headers := l.r.DB.Collection(collImages)
	for i := range img.Colls {
		for _, field := range []string{"sum", "bytes"} {
			colls := append([]ImageColl(nil), img.Colls...)
			if field == "sum" {
				colls[i].Sum = strings.Repeat("0", 64)
			} else {
				colls[i].Bytes++
			}
			if _, err := headers.UpdateOne(ctx, bson.D{{Key: "_id", Value: img.ID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "colls", Value: colls}}}}); err != nil {
				t.Fatal(err)
			}
			for _, coll := range []string{"", img.Colls[i].Name} {
				want, err := plain.Fold(ctx, l.main, at, coll)
				if err != nil {
					t.Fatal(err)
				}
				var got streamed
				sink := got.sink()
				sink.Reset = nil
				if _, err := l.r.FoldEach(ctx, l.main, at, coll, sink); err != nil || strings.Join(got.lines, "\n") != strings.Join(folded(want), "\n") {
					t.Fatalf("collection %s's %s wrong, %q: %v, %s", img.Colls[i].Name, field, coll, err, firstDiff(got.lines, folded(want)))
				}
			}
			problems, _, err := l.r.VerifyImages(ctx, map[string]bool{l.main: true}, false)
			want := fmt.Sprintf(`image %s@%d: the chunks of collection %q do not match its checksum`, l.main, img.LSN, img.Colls[i].Name)
			if err != nil || len(problems) != 1 || problems[0] != want {
				t.Fatalf("collection %s's %s wrong: fsck %v %q", img.Colls[i].Name, field, err, problems)
			}
		}
	}
}

package commit

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// A commit takes an image when it crosses a multiple of ImageEvery and has
// grown enough past the nearest image. A nearest image whose chunks were
// dropped is passed over by reads, so it must not hold the next image
// back: before, a broken image of 30 documents kept the commit reaching
// LSN 50 from taking one.
func TestBrokenImageDoesNotHoldTheNextBack(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	r.ImageEvery = 10
	w := New().Open(r, b)
	insert := func(from, n int) {
		t.Helper()
		var docs []bson.Raw
		for i := from; i < from+n; i++ {
			docs = append(docs, d1(fmt.Sprintf("d%03d", i)))
		}
		if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	insert(0, 30) // LSN 1..30: an image of 30 documents at 30
	near, err := r.NearestImage(ctx, b.Timeline, 30)
	if err != nil || near == nil || near.LSN != 30 {
		t.Fatalf("image after the first commit: %+v, %v", near, err)
	}
	insert(30, 10) // LSN 31..40: 10 past an image of 30 documents, no image
	if img, _ := r.NearestImage(ctx, b.Timeline, 40); img == nil || img.LSN != 30 {
		t.Fatalf("nearest image at 40: %+v, want the one at 30", img)
	}
	if err := r.DB.Collection(near.Coll).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	insert(40, 10) // LSN 41..50: the image at 30 is broken, so one at 50
	if img, err := r.NearestImage(ctx, b.Timeline, 50); err != nil || img == nil || img.LSN != 50 {
		t.Fatalf("nearest image at 50: %+v, %v; want a new one at 50", img, err)
	}
}

package workdb_test

import (
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// What held (passes): over an image whose collection spans several
// chunks (records cut across chunk boundaries), intact, damaged in its
// last chunk with chunk checksums (the stream resumes mid-collection
// from the log) and without them (Reset), with the scan's documents in
// memory and in the spools' files, the streamed comparison lists exactly
// what diffState lists, and Changes too.
func TestReview32DiffKeptOverAMultiChunkImage(t *testing.T) {
	t.Parallel()
	for _, damage := range []string{"intact", "checked", "unchecked", "checked over an older image"} {
		t.Run(damage, func(t *testing.T) {
			t.Parallel()
			h := newR7(t)
			var docs []bson.D
			for i := 0; i < 3000; i++ {
				docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "p", Value: strings.Repeat(fmt.Sprint(i%10), 1500+i%700)}})
			}
			h.insert("a", docs...)
			h.insert("b", docs[:20]...)
			if damage == "checked over an older image" {
				h.image()
				// Between the images: keys deleted and put again (they
				// come into being again: later in the order), updated,
				// new ones.
				for _, id := range []int32{1, 700, 1400} {
					h.del("a", id)
					h.insert("a", bson.D{{Key: "_id", Value: id}, {Key: "again", Value: true}})
				}
				h.set("a", int32(5), bson.D{{Key: "v", Value: "between"}})
				h.insert("a", bson.D{{Key: "_id", Value: "between"}})
				h.del("b", int32(4))
			}
			img := h.image()
			if len(img.Colls) == 0 || img.Colls[0].Chunks < 2 {
				t.Fatalf("image of %d chunks", img.Chunks)
			}
			h.set("a", int32(10), bson.D{{Key: "v", Value: "committed"}})
			h.del("a", int32(2999))
			h.insert("a", bson.D{{Key: "_id", Value: "late"}})
			if _, _, _, err := h.w.CreateIndex(h.ctx, "a", h.raw(bson.D{{Key: "v", Value: 1}}), workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
			a := h.w.DB.Collection("a")
			for _, id := range []int32{0, 1500, 2998} {
				if _, err := a.UpdateOne(h.ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "app", Value: true}}}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := a.DeleteOne(h.ctx, bson.D{{Key: "_id", Value: int32(2000)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.InsertOne(h.ctx, bson.D{{Key: "_id", Value: int64(2000)}}); err != nil {
				t.Fatal(err)
			}
			if err := a.Indexes().DropOne(h.ctx, "v_1"); err != nil {
				t.Fatal(err)
			}
			if err := h.w.DB.Collection("b").Drop(h.ctx); err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "unchecked":
				if _, err := h.r.DB.Collection("images").UpdateOne(h.ctx, bson.D{{Key: "_id", Value: img.ID}},
					bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
					t.Fatal(err)
				}
				r26Damage(h, img, "a")
			case "checked", "checked over an older image":
				r26Damage(h, img, "a")
			}
			head := h.head()
			n := 0
			fs, err := h.r.FoldEach(h.ctx, h.b.Timeline, head, "", wal.StateSink{
				Doc:   func(string, bson.Raw) error { n++; return nil },
				Index: func(string, bson.Raw) error { return nil },
				Reset: func() error { n = 0; return nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			if streamed := fs.Image != nil && fs.Image.ID == img.ID; streamed != (damage == "intact") || n != map[bool]int{false: 3000 + 20, true: 3001 + 19}[damage == "checked over an older image"] {
				t.Fatalf("%s: the stream used the image: %v, %d documents", damage, streamed, n)
			}
			want, err := h.w.Review32DiffState(h.ctx, head)
			if err != nil {
				t.Fatal(err)
			}
			if wantN := map[bool]int{false: 6 + 20, true: 6 + 19}[damage == "checked over an older image"]; len(want) != wantN {
				t.Fatalf("diffState lists %d changes:\n%s", len(want), strings.Join(r32Lines(want), "\n"))
			}
			for _, spool := range []int{4 << 20, 5000} {
				ctx := workdb.WithReadMemory(h.ctx, workdb.ReadMemory{Spool: spool})
				got, _, err := h.w.Review32DiffKept(ctx, head)
				if err != nil {
					t.Fatal(err)
				}
				if same, _ := r32Same(got, want); !same {
					t.Fatalf("spool %d: diffKept\n%s\nwant\n%s", spool, strings.Join(r32Lines(got), "\n"), strings.Join(r32Lines(want), "\n"))
				}
				ch, _, err := h.w.Changes(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if same, _ := r32Same(ch, want); !same {
					t.Fatalf("spool %d: Changes differ", spool)
				}
			}
		})
	}
}

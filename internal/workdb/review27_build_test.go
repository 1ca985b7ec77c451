package workdb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// r27Chunk rewrites chunk n of img: a byte flipped in its middle.
func r27Chunk(h *r7, img *wal.Image, n int) {
	h.t.Helper()
	id := fmt.Sprintf("%08d", n)
	chunks := h.r.DB.Collection(img.Coll)
	var d struct {
		Data []byte `bson:"data"`
	}
	if err := chunks.FindOne(h.ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		h.t.Fatal(err)
	}
	d.Data[len(d.Data)/2] ^= 0x21
	if _, err := chunks.UpdateOne(h.ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: d.Data}}}}); err != nil {
		h.t.Fatal(err)
	}
}

func r27Coll(h *r7, img *wal.Image, name string) wal.ImageColl {
	h.t.Helper()
	for _, ic := range img.Colls {
		if ic.Name == name {
			return ic
		}
	}
	h.t.Fatalf("image has no collection %s", name)
	return wal.ImageColl{}
}

// r27Docs lists db's documents of each collection in natural order (the
// marker's left out), without the application's.
func r27Docs(h *r7, db *mongo.Database, app string) (string, int) {
	h.t.Helper()
	names, err := db.ListCollectionNames(h.ctx, bson.D{})
	if err != nil {
		h.t.Fatal(err)
	}
	var b strings.Builder
	apps := 0
	for _, n := range sortedNames(names) {
		if n == workdb.MarkerCollection {
			continue
		}
		cur, err := db.Collection(n).Find(h.ctx, bson.D{})
		if err != nil {
			h.t.Fatal(err)
		}
		for cur.Next(h.ctx) {
			if id, _ := cur.Current.Lookup("_id").StringValueOK(); id == app {
				apps++
				continue
			}
			fmt.Fprintf(&b, "d %s %x\n", n, []byte(cur.Current))
		}
		_ = cur.Close(h.ctx)
	}
	return b.String(), apps
}

// Two images on the way to the head: the nearer one (with chunk
// checksums) damaged in the second chunk of collection a (its first
// chunk's documents given, held in the batch) or of b (a went into the
// database and the application wrote to it; b's first chunk given); the
// older one with chunk checksums or without (written before them),
// intact or damaged too.
// Build, with an application writing to a as soon as the first batch
// went in, keeps the application's document and holds every document of
// the state once, in the fold's order; Rebuild and a view hold the fold's
// documents, in its order, and the marker's fingerprint is the
// database's.
func TestReview27BuildOverTwoImages(t *testing.T) {
	t.Parallel()
	type cs struct {
		where                      string
		olderChecked, olderDamaged bool
	}
	var cases []cs
	// Two of the eight combinations (each case writes about 11 MB of
	// documents: all eight took 43 s): the newer image damaged in a, the
	// older one without chunk checksums and damaged (the build ends on
	// the log, passing over what went in); damaged in b after a went in
	// whole, the older one checked and intact (the build resumes there).
	cases = []cs{{"a", false, true}, {"b", true, false}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("newer damaged in %s, older checked %v damaged %v", c.where, c.olderChecked, c.olderDamaged), func(t *testing.T) {
			h := newR7(t)
			big := strings.Repeat("B", 90<<10)
			var docs []bson.D
			for i := 0; i < 60; i++ {
				docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "p", Value: big}})
			}
			h.insert("a", docs[:30]...)
			h.insert("b", bson.D{{Key: "_id", Value: "b1"}}, bson.D{{Key: "_id", Value: "b2"}})
			h.insert("b", docs[:30]...)
			keys := h.raw(bson.D{{Key: "v", Value: 1}})
			if _, _, _, err := h.w.CreateIndex(h.ctx, "b", keys, workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
			older := h.image()
			h.insert("a", docs[30:]...)
			h.del("a", int32(2))
			h.set("a", int32(40), bson.D{{Key: "v", Value: "forty"}})
			h.insert("c", bson.D{{Key: "_id", Value: "c1"}})
			newer := h.image()
			h.del("a", int32(41))
			h.insert("a", bson.D{{Key: "_id", Value: int32(2)}, {Key: "v", Value: "again"}})
			h.insert("0", bson.D{{Key: "_id", Value: "zero"}})

			ic := r27Coll(h, newer, c.where)
			if ic.Chunks < 2 {
				t.Fatalf("collection %s of the newer image in %d chunks, want 2 or more", c.where, ic.Chunks)
			}
			r27Chunk(h, newer, ic.First+1)
			if !c.olderChecked {
				if _, err := h.r.DB.Collection("images").UpdateOne(h.ctx, bson.D{{Key: "_id", Value: older.ID}},
					bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
					t.Fatal(err)
				}
			}
			if c.olderDamaged {
				r27Chunk(h, older, r27Coll(h, older, "b").First)
			}

			hd, err := h.r.Head(h.ctx, h.b.Timeline)
			if err != nil {
				t.Fatal(err)
			}
			plain := *h.r
			plain.NoImages = true
			st, err := plain.Fold(h.ctx, h.b.Timeline, hd.LSN, "")
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, coll := range st.Collections() {
				for _, d := range st.Docs(coll) {
					fmt.Fprintf(&want, "d %s %x\n", coll, []byte(d))
				}
			}
			const app = "written by the application"
			check := func(label string, db *mongo.Database, m *workdb.Marker, wantApps int) {
				t.Helper()
				got, apps := r27Docs(h, db, app)
				if got != want.String() || apps != wantApps {
					t.Fatalf("%s: %d application documents (want %d); documents differ from the fold: %d bytes of listing, want %d",
						label, apps, wantApps, len(got), want.Len())
				}
				if !strings.Contains(r26Contents(h, db), "i b ") {
					t.Fatalf("%s: the index on b is missing", label)
				}
				if m != nil {
					scan, err := workdb.ScanSums(h.ctx, db)
					if err != nil {
						t.Fatal(err)
					}
					if !scan.Equal(m.Sums) {
						t.Fatalf("%s: marker's fingerprint %v, the database's %v", label, m.Sums, scan)
					}
				}
			}

			// Build: an application writes to a once its first batch is in.
			if err := h.w.Drop(h.ctx); err != nil {
				t.Fatal(err)
			}
			wrote := false
			ctx := workdb.WithProgress(h.ctx, func(what string, n int) {
				if wrote || n <= 0 || !strings.HasPrefix(what, "rebuilding") {
					return
				}
				wrote = true
				if _, err := h.w.DB.Collection("a").InsertOne(context.Background(), h.raw(bson.D{{Key: "_id", Value: app}})); err != nil {
					t.Errorf("application's insert: %v", err)
				}
			})
			if _, err := h.w.Build(ctx, hd.Slot); err != nil {
				t.Fatalf("Build: %v", err)
			}
			if !wrote {
				t.Fatal("the application never wrote")
			}
			check("Build", h.w.DB, nil, 1)

			m, err := h.w.Rebuild(h.ctx, hd.Slot, "")
			if err != nil {
				t.Fatal(err)
			}
			check("Rebuild", h.w.DB, m, 0)
			v, err := workdb.OpenView(h.ctx, h.r, h.b.Timeline, hd.LSN)
			if err != nil {
				t.Fatal(err)
			}
			check("view", v.DB, nil, 0)
		})
	}
}

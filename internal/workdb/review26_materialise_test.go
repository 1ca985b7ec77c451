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

// r26History writes a history over an image: collections a and b (b with
// an index) imaged, then changes above the image (a key deleted and put
// again, one updated in place, one deleted, new keys, an index dropped
// and created again, a collection only above the image).
func r26History(h *r7) *wal.Image {
	t := h.t
	var docs []bson.D
	for i := 0; i < 40; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: i}, {Key: "p", Value: strings.Repeat("q", 200)}})
	}
	h.insert("a", docs...)
	h.insert("b", docs[:30]...)
	keys := h.raw(bson.D{{Key: "v", Value: 1}})
	if _, _, _, err := h.w.CreateIndex(h.ctx, "b", keys, workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	img := h.image()
	h.del("a", int32(3))
	h.insert("a", bson.D{{Key: "_id", Value: int32(3)}, {Key: "v", Value: "again"}})
	h.set("a", int32(5), bson.D{{Key: "v", Value: "five"}})
	h.del("a", int32(7))
	h.insert("a", bson.D{{Key: "_id", Value: int32(100)}}, bson.D{{Key: "_id", Value: int32(101)}})
	if _, _, err := h.w.DropIndex(h.ctx, "b", "v_1", wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.w.CreateIndex(h.ctx, "b", keys, workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	h.insert("c", bson.D{{Key: "_id", Value: "x"}})
	return img
}

// r26Damage cuts the last chunk of collection coll of img short: its
// first records read, the last never completes, the checksum fails at
// the end of the collection's chunks.
func r26Damage(h *r7, img *wal.Image, coll string) {
	h.t.Helper()
	for _, ic := range img.Colls {
		if ic.Name != coll {
			continue
		}
		id := fmt.Sprintf("%08d", ic.First+ic.Chunks-1)
		chunks := h.r.DB.Collection(img.Coll)
		var d struct {
			Data []byte `bson:"data"`
		}
		if err := chunks.FindOne(h.ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
			h.t.Fatal(err)
		}
		if _, err := chunks.UpdateOne(h.ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: d.Data[:len(d.Data)-5]}}}}); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	h.t.Fatalf("image has no collection %s", coll)
}

// r26Contents lists db's documents in natural order and its indexes, by
// collection (the marker's left out).
func r26Contents(h *r7, db *mongo.Database) string {
	h.t.Helper()
	names, err := db.ListCollectionNames(h.ctx, bson.D{})
	if err != nil {
		h.t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range sortedNames(names) {
		if n == workdb.MarkerCollection {
			continue
		}
		cur, err := db.Collection(n).Find(h.ctx, bson.D{})
		if err != nil {
			h.t.Fatal(err)
		}
		for cur.Next(h.ctx) {
			fmt.Fprintf(&b, "d %s %x\n", n, []byte(cur.Current))
		}
		_ = cur.Close(h.ctx)
		specs, err := workdb.ListIndexes(h.ctx, db, n)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, s := range specs {
			fmt.Fprintf(&b, "i %s %x\n", n, []byte(workdb.PortableIndexSpec(s)))
		}
	}
	return b.String()
}

func sortedNames(ns []string) []string {
	out := append([]string(nil), ns...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A rebuild streamed from an image found damaged in its second collection
// (after the first went into the database) drops what it wrote and builds
// again without it: the database holds the fold's documents in the fold's
// order, once each, the indexes, and a marker whose fingerprint is the
// database's. The same for the undamaged image, and for a view (find --at).
func TestReview26RebuildFromDamagedImage(t *testing.T) {
	h := newR7(t)
	img := r26History(h)
	plain := *h.r
	plain.NoImages = true
	hd, err := h.r.Head(h.ctx, h.b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	st, err := plain.Fold(h.ctx, h.b.Timeline, hd.LSN, "")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, c := range st.Collections() {
		for _, d := range st.Docs(c) {
			fmt.Fprintf(&want, "d %s %x\n", c, []byte(d))
		}
	}
	check := func(label string, db *mongo.Database, m *workdb.Marker) {
		t.Helper()
		got := r26Contents(h, db)
		var docs strings.Builder
		for _, line := range strings.SplitAfter(got, "\n") {
			if strings.HasPrefix(line, "d ") {
				docs.WriteString(line)
			}
		}
		if docs.String() != want.String() {
			t.Fatalf("%s: documents differ from the fold:\n%s\nwant\n%s", label, docs.String(), want.String())
		}
		if !strings.Contains(got, "i b ") {
			t.Fatalf("%s: the index on b is missing:\n%s", label, got)
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
	m, err := h.w.Rebuild(h.ctx, hd.Slot, "")
	if err != nil {
		t.Fatal(err)
	}
	check("intact image", h.w.DB, m)
	intact := r26Contents(h, h.w.DB)

	r26Damage(h, img, "b")
	m, err = h.w.Rebuild(h.ctx, hd.Slot, "")
	if err != nil {
		t.Fatal(err)
	}
	check("damaged image", h.w.DB, m)
	if got := r26Contents(h, h.w.DB); got != intact {
		t.Fatalf("the database built over a damaged image differs from the one built over the intact image:\n%s\nwant\n%s", got, intact)
	}
	v, err := workdb.OpenView(h.ctx, h.r, h.b.Timeline, hd.LSN)
	if err != nil {
		t.Fatal(err)
	}
	check("view", v.DB, nil)
}

// Build (keep) never drops: an application that writes to the working
// database while argon builds it keeps its work (Build adopts the
// database, or says ErrFilled). When the image the build streams from
// turns out damaged after a collection went in, materialise's Reset drops
// that collection, and the application's document with it.
func TestReview26BuildKeepsApplicationWrites(t *testing.T) {
	for _, c := range []struct{ damaged, checked bool }{{false, true}, {true, true}, {false, false}, {true, false}} {
		damaged := c.damaged
		// checked: the image's chunks have checksums of their own (as
		// images have since they were streamed); an image written before
		// is not streamed into a database an application may write to.
		t.Run(fmt.Sprintf("damaged image %v, chunk checksums %v", damaged, c.checked), func(t *testing.T) {
			h := newR7(t)
			img := r26History(h)
			if !c.checked {
				if _, err := h.r.DB.Collection("images").UpdateOne(h.ctx, bson.D{{Key: "_id", Value: img.ID}},
					bson.D{{Key: "$unset", Value: bson.D{{Key: "chunk_sums", Value: ""}}}}); err != nil {
					t.Fatal(err)
				}
			}
			if damaged {
				r26Damage(h, img, "b")
			}
			hd, err := h.r.Head(h.ctx, h.b.Timeline)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.w.Drop(h.ctx); err != nil {
				t.Fatal(err)
			}
			app := h.raw(bson.D{{Key: "_id", Value: "written by the application"}})
			wrote := false
			ctx := workdb.WithProgress(h.ctx, func(what string, n int) {
				if wrote || n <= 0 || !strings.HasPrefix(what, "rebuilding") {
					return
				}
				// The first batch of a went in: an application writes to a.
				wrote = true
				if _, err := h.w.DB.Collection("a").InsertOne(context.Background(), app); err != nil {
					t.Errorf("application's insert: %v", err)
				}
			})
			_, err = h.w.Build(ctx, hd.Slot)
			if !wrote {
				t.Fatal("the application never wrote")
			}
			n, cerr := h.w.DB.Collection("a").CountDocuments(h.ctx, bson.D{{Key: "_id", Value: "written by the application"}})
			if cerr != nil {
				t.Fatal(cerr)
			}
			if n != 1 {
				t.Fatalf("the application's document is gone after Build (Build returned %v): the build dropped collection a on its reset", err)
			}
		})
	}
}

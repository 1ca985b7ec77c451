package merge

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/diff"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// Image snapshots never change a result: over a random history with forks
// (one of them from the middle of another branch's history), merges,
// index changes and commits large enough to spill their entries, with
// images taken by commits (every few entries) and by hand at random LSNs
// (also inside a commit's range), a fold at every LSN of every branch
// gives exactly what a fold from the root gives: the same documents in the
// same order, byte for byte, and the same indexes. An image whose chunks
// are gone is passed over, and gc drops chunks no header names.
func TestImagesNeverChangeAResult(t *testing.T) {
	t.Parallel()
	srv, r, mainB := waltest.Project(t)
	ctx := context.Background()
	r.ImageEvery = 40
	p := commit.New()
	rng := rand.New(rand.NewPCG(7, 8))
	next := int32(0)
	type branch struct {
		b   *wal.Branch
		w   *workdb.Branch
		ids []int32
	}
	insert := func(br *branch, n int) {
		docs := make([]bson.Raw, n)
		for i := range docs {
			docs[i], _ = bson.Marshal(bson.D{{Key: "_id", Value: next}, {Key: "v", Value: rng.Int32N(1000)}})
			br.ids = append(br.ids, next)
			next++
		}
		coll := []string{"a", "b"}[rng.IntN(2)]
		if _, err := br.w.Insert(ctx, coll, docs, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	modify := func(br *branch) {
		if len(br.ids) == 0 {
			return
		}
		id := br.ids[rng.IntN(len(br.ids))]
		f, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		m := workdb.Modification{Filter: f, Delete: rng.IntN(3) == 0}
		if !m.Delete {
			m.Update, _ = bson.Marshal(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: rng.Int32N(1000)}, {Key: "w", Value: next}}}})
		}
		for _, coll := range []string{"a", "b"} {
			if _, err := br.w.Modify(ctx, coll, m, workdb.Limits{}, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	index := func(br *branch) {
		keys, _ := bson.Marshal(bson.D{{Key: "v", Value: 1}})
		if _, _, _, err := br.w.CreateIndex(ctx, "a", keys, workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
			if _, _, err := br.w.DropIndex(ctx, "a", "v_1", wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	head := func(b *wal.Branch) diff.Point {
		h, err := r.Head(ctx, b.Timeline)
		if err != nil {
			t.Fatal(err)
		}
		return diff.Point{TL: b.Timeline, LSN: h.LSN}
	}
	mergeInto := func(to, from *branch) {
		ours := head(to.b)
		plan, err := Merge(ctx, r, ours, head(from.b), Theirs)
		if err != nil {
			t.Fatal(err)
		}
		puts := make([]workdb.Put, len(plan.Changes))
		for i, c := range plan.Changes {
			puts[i] = workdb.Put{Coll: c.Coll, Index: c.Index, ID: c.ID, Doc: c.Doc}
		}
		if _, _, err := to.w.ApplyPuts(ctx, puts, ours.LSN, wal.CommitInfo{Message: "merge", MergeOf: MergeOf(head(from.b))}); err != nil {
			t.Fatal(err)
		}
		to.ids = append(to.ids, from.ids...)
	}
	fork := func(name string, from *branch, at int64) *branch {
		b, err := r.CreateBranch(ctx, "p", name, from.b, at)
		if err != nil {
			t.Fatal(err)
		}
		return &branch{b: b, w: p.Open(r, b), ids: append([]int32(nil), from.ids...)}
	}
	step := func(br *branch) {
		switch rng.IntN(10) {
		case 0:
			insert(br, 65+rng.IntN(10)) // spilled: more than 64 entries
		case 1:
			index(br)
		case 2, 3, 4:
			modify(br)
		default:
			insert(br, 1+rng.IntN(4))
		}
	}
	main := &branch{b: mainB, w: p.Open(r, mainB)}
	insert(main, 20)
	feat := fork("feature", main, -1)
	var grand *branch
	for round := 0; round < 5; round++ {
		for i := 0; i < 8; i++ {
			step(main)
			step(feat)
			if grand != nil {
				step(grand)
			}
		}
		if round == 1 {
			// From the middle of feature's history.
			h := head(feat.b).LSN
			grand = fork("grand", feat, h-int64(rng.IntN(5)))
		}
		mergeInto(main, feat)
		if grand != nil && round%2 == 0 {
			mergeInto(feat, grand)
		}
	}
	branches := []*branch{main, feat, grand}
	// Images by hand at random LSNs of every branch, some inside a
	// commit's range.
	for i := 0; i < 12; i++ {
		br := branches[rng.IntN(len(branches))]
		lsn := 1 + rng.Int64N(head(br.b).LSN)
		if _, err := r.TakeImage(ctx, "p", br.b.Timeline, lsn); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := r.Images(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	auto := 0
	for _, im := range imgs {
		if im.Time.IsZero() || im.Sum == "" || im.Chunks < 1 {
			t.Fatalf("image header %+v", im)
		}
	}
	auto = len(imgs) - 12
	if auto < 3 {
		t.Fatalf("commits took %d images; want at least 3 (ImageEvery %d)", auto, r.ImageEvery)
	}

	compare := func(what string) {
		t.Helper()
		fromImage := 0
		for _, br := range branches {
			h := head(br.b).LSN
			// LSNs at and just above images, the head, the empty state,
			// and some at random.
			var near []int64
			for _, im := range imgs {
				near = append(near, im.LSN, im.LSN+1)
			}
			rng.Shuffle(len(near), func(i, j int) { near[i], near[j] = near[j], near[i] })
			pick := map[int64]bool{0: true, h: true}
			// 8 of them and 3 at random in the README's suite, 16 and 6
			// at the nightly size (internal/testsize).
			for _, l := range near[:min(testsize.Pick(8, 16), len(near))] {
				pick[min(l, h)] = true
			}
			for i := 0; i < testsize.Pick(3, 6); i++ {
				pick[rng.Int64N(h+1)] = true
			}
			var lsns []int64
			for l := range pick {
				lsns = append(lsns, l)
			}
			slices.Sort(lsns)
			// The fold without images, once: a replay from the root that
			// stops at each picked LSN.
			want := wal.NewState()
			check := func(lsn int64) {
				for _, coll := range []string{"", "a"} {
					got, fs, err := r.FoldWithStats(ctx, br.b.Timeline, lsn, coll)
					if err != nil {
						t.Fatal(err)
					}
					if fs.Image != nil {
						fromImage++
						if fs.Image.LSN > lsn {
							t.Fatalf("%s@%d: started from an image at %d", br.b.Name, lsn, fs.Image.LSN)
						}
					}
					if d := stateDifference(got, want, coll); d != "" {
						t.Fatalf("%s: %s@%d (collection %q, image %+v): %s", what, br.b.Name, lsn, coll, fs.Image, d)
					}
				}
			}
			i := 0
			if err := r.EachEntry(ctx, br.b.Timeline, 0, h, "", func(e *wal.Entry) error {
				for ; i < len(lsns) && lsns[i] < e.LSN; i++ {
					check(lsns[i])
				}
				want.Apply(e)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for ; i < len(lsns); i++ {
				check(lsns[i])
			}
		}
		t.Logf("%s: %d folds started from an image", what, fromImage)
		if fromImage < 40 {
			t.Fatalf("%s: only %d folds started from an image", what, fromImage)
		}
	}
	compare("with images")

	// The base values diff and merge read for many keys start from images
	// too, with the same result.
	var allKeys [][]byte
	for id := int32(0); id < next; id++ {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		allKeys = append(allKeys, wal.KeyOf(bson.Raw(raw).Lookup("_id")))
	}
	r.Scans = true
	plain := *r
	plain.NoImages = true
	fromImage := 0
	for _, br := range branches {
		for _, lsn := range []int64{head(br.b).LSN, imgs[len(imgs)-1].LSN + 1, imgs[0].LSN} {
			lsn = min(lsn, head(br.b).LSN)
			for _, coll := range []string{"a", "b"} {
				got, _, err := r.LatestAtOrBelow(ctx, br.b.Timeline, lsn, coll, allKeys, false)
				if err != nil {
					t.Fatal(err)
				}
				want, _, err := plain.LatestAtOrBelow(ctx, br.b.Timeline, lsn, coll, allKeys, false)
				if err != nil {
					t.Fatal(err)
				}
				for k, e := range want {
					if e.Op == wal.OpDel {
						delete(want, k)
					}
				}
				for k, e := range got {
					if e.Op == wal.OpDel {
						delete(got, k)
					} else if w := want[k]; w != nil && e.LSN != w.LSN {
						fromImage++
					}
				}
				if len(got) != len(want) {
					t.Fatalf("%s@%d %s: %d live keys at or below, want %d", br.b.Name, lsn, coll, len(got), len(want))
				}
				for k, e := range want {
					if g := got[k]; g == nil || g.Op != e.Op || !bytes.Equal(g.Doc, e.Doc) {
						t.Fatalf("%s@%d %s: key %x is %+v, want %+v", br.b.Name, lsn, coll, k, g, e)
					}
				}
			}
		}
	}
	if fromImage == 0 {
		t.Fatal("no base value came from an image")
	}
	r.Scans = false

	// An image whose chunks are gone is passed over.
	victim := imgs[len(imgs)/2]
	if err := srv.Client.Database(srv.DB).Collection(victim.Coll).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadImage(ctx, &victim, ""); err == nil {
		t.Fatal("an image without its chunks loaded")
	}
	got, fs, err := r.FoldWithStats(ctx, victim.TL, victim.LSN, "")
	if err != nil {
		t.Fatal(err)
	}
	if fs.Image != nil && fs.Image.ID == victim.ID {
		t.Fatal("a fold started from an image without its chunks")
	}
	for _, im := range imgs {
		// An older image on the way is used instead, not the root.
		if im.TL == victim.TL && im.LSN < victim.LSN && (fs.Image == nil || fs.Image.LSN < im.LSN) {
			t.Fatalf("a fold at %d passed over the image at %d (started from %+v)", victim.LSN, im.LSN, fs.Image)
		}
	}
	want, err := plain.Fold(ctx, victim.TL, victim.LSN, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := stateDifference(got, want, ""); d != "" {
		t.Fatalf("with an image's chunks dropped: %s", d)
	}

	// Imaging that state again replaces the broken image.
	again, err := r.TakeImage(ctx, "p", victim.TL, victim.LSN)
	if err != nil || again.Token == victim.Token {
		t.Fatalf("image taken again: %+v, %v", again, err)
	}
	if _, err := r.LoadImage(ctx, again, ""); err != nil {
		t.Fatal(err)
	}
	imgs, err = r.Images(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}

	// fsck finds an image whose chunks hold another state (here: another
	// image's, with a matching checksum).
	tls := map[string]bool{mainB.Timeline: true, feat.b.Timeline: true, grand.b.Timeline: true}
	var other wal.Image
	// The chunks of the image tampered with below: once its header is
	// gone they are young orphans, which gc leaves alone for an hour.
	tampered := imgs[0].Coll
	for _, im := range imgs {
		if im.ID != imgs[0].ID && im.Docs != imgs[0].Docs {
			other = im
		}
	}
	if _, err := srv.Client.Database(srv.DB).Collection("images").UpdateOne(ctx, bson.D{{Key: "_id", Value: imgs[0].ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "coll", Value: other.Coll}, {Key: "chunks", Value: other.Chunks}, {Key: "sum", Value: other.Sum}, {Key: "colls", Value: other.Colls}, {Key: "chunk_sums", Value: other.ChunkSums}}}}); err != nil {
		t.Fatal(err)
	}
	problems, _, err := r.VerifyImages(ctx, tls, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{
		fmt.Sprintf("image %s@%d differs from a fold of the log", imgs[0].TL, imgs[0].LSN),
	}; fmt.Sprint(problems) != fmt.Sprint(want) {
		t.Fatalf("fsck found %q, want %q", problems, want)
	}
	if _, repaired, err := r.VerifyImages(ctx, tls, true); err != nil || len(repaired) != 1 {
		t.Fatalf("fsck --repair: %q, %v", repaired, err)
	}
	before := len(imgs)
	imgs, err = r.Images(ctx, "p")
	if err != nil || len(imgs) != before-1 {
		t.Fatalf("after fsck --repair: %d images, %v; want %d", len(imgs), err, before-1)
	}
	for _, im := range imgs {
		if _, err := r.LoadImage(ctx, &im, ""); err != nil {
			t.Fatalf("after fsck --repair: %v", err)
		}
	}

	// gc keeps named images and drops chunks no header names.
	// Chunks an image write may still be adding to (a token younger than
	// an hour) are left alone.
	orphan := "image_" + victim.TL + "_000000000001_deadbeef"
	young := "image_" + victim.TL + "_000000000002_" + bson.NewObjectID().Hex()
	for _, name := range []string{orphan, young} {
		if _, err := srv.Client.Database(srv.DB).Collection(name).InsertOne(ctx, bson.D{{Key: "_id", Value: 0}}); err != nil {
			t.Fatal(err)
		}
	}
	n, orphans, err := r.DropImages(ctx, func(*wal.Image) bool { return true })
	if err != nil || n != 0 || orphans != 1 {
		t.Fatalf("gc keeping images: dropped %d images, %d orphans, %v; want 0, 1", n, orphans, err)
	}
	if names, _ := srv.Client.Database(srv.DB).ListCollectionNames(ctx, bson.D{{Key: "name", Value: young}}); len(names) != 1 {
		t.Fatalf("gc dropped chunks an image write may still be adding to")
	}
	if err := srv.Client.Database(srv.DB).Collection(young).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	n, _, err = r.DropImages(ctx, nil)
	if err != nil || n != len(imgs) {
		t.Fatalf("gc --images: dropped %d images, %v; want %d", n, err, len(imgs))
	}
	names, err := srv.Client.Database(srv.DB).ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if len(name) > 6 && name[:6] == "image_" && name != tampered {
			t.Fatalf("collection %s left after gc --images", name)
		}
	}
}

// stateDifference says how a state differs from want ("" when they are
// equal): collections, documents in order, byte for byte, and indexes.
// When coll is not empty, a holds that collection only.
func stateDifference(a, want *wal.State, coll string) string {
	b := want
	colls := b.Collections()
	if coll != "" {
		colls = slices.DeleteFunc(colls, func(c string) bool { return c != coll })
	}
	if fmt.Sprint(a.Collections()) != fmt.Sprint(colls) {
		return fmt.Sprintf("collections %v, want %v", a.Collections(), colls)
	}
	for _, c := range colls {
		for _, list := range [][2][]bson.Raw{{a.Docs(c), b.Docs(c)}, {a.Indexes(c), b.Indexes(c)}} {
			x, y := list[0], list[1]
			if len(x) != len(y) {
				return fmt.Sprintf("%s: %d documents, want %d", c, len(x), len(y))
			}
			for i := range x {
				if !bytes.Equal(x[i], y[i]) {
					return fmt.Sprintf("%s: item %d is %s, want %s", c, i, x[i], y[i])
				}
			}
		}
	}
	return ""
}

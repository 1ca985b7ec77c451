package workdb_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// One insert of three 1.2 MiB documents and one 13 MiB document: every
// stored chunk stays under MongoDB's 16 MiB document limit (found by a
// review: the commit was one chunk of 17.3 MiB).
func TestLargeDocumentsFitTheirChunks(t *testing.T) {
	srv, r, main := waltest.Project(t)
	ctx := context.Background()
	w := commit.New().Open(r, main)
	w.ScanReads = srv.Embedded || srv.FerretDB
	mid := strings.Repeat("x", 1200<<10)
	var docs []bson.Raw
	for i := 0; i < 3; i++ {
		d, _ := bson.Marshal(bson.D{{Key: "_id", Value: i}, {Key: "s", Value: mid}})
		docs = append(docs, d)
	}
	d, _ := bson.Marshal(bson.D{{Key: "_id", Value: 99}, {Key: "s", Value: strings.Repeat("y", 13<<20)}})
	docs = append(docs, d)
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "m"}); err != nil {
		t.Fatalf("insert of 4 valid documents: %v", err)
	}
	// The embedded engine does not enforce the 16 MiB limit; MongoDB does
	// ("object to insert too large"): the sizes are checked here.
	cur, err := srv.Client.Database(srv.DB).Collection("entries").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for cur.Next(ctx) {
		if n := len(cur.Current); n > 16<<20 {
			t.Errorf("entries document %v is %d bytes: over MongoDB's 16 MiB document limit", cur.Current.Lookup("_id"), n)
		}
	}
}

// fsck --repair reports the number of entries it deleted, not of the
// chunks that held them (found by a review), and deletes every entry of a
// writer that can no longer commit, not only its chunks that start at or
// below the head.
func TestFsckRepairCountsEntries(t *testing.T) {
	srv, r, main := waltest.Project(t)
	ctx := context.Background()
	p := commit.New()
	w := p.Open(r, main)
	w.ScanReads = srv.Embedded || srv.FerretDB
	var docs []bson.Raw
	for i := 0; i < 200; i++ {
		d, _ := bson.Marshal(bson.D{{Key: "_id", Value: i}})
		docs = append(docs, d)
	}
	if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{Message: "m"}); err != nil {
		t.Fatal(err)
	}
	// A writer that lost: 150 entries at LSNs 1..150 under its token.
	var dead []wal.Entry
	for i := 0; i < 150; i++ {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1000 + i}})
		e, _ := wal.PutEntry("c", raw)
		e.TL, e.LSN, e.Token = main.Timeline, int64(i+1), "dead"
		dead = append(dead, e)
	}
	if _, err := r.SpillEntries(ctx, "p", dead); err != nil {
		t.Fatal(err)
	}
	// Another that lost after writing 1,500 entries from LSN 101: two
	// chunks, the second starting above the head (200). It can never
	// commit (the head moved past its base), so both go.
	// And one whose base is the head (LSNs 201..250): it may still be
	// writing, so it stays.
	series := func(token string, from, n int) {
		t.Helper()
		var es []wal.Entry
		for i := 0; i < n; i++ {
			raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: 5000 + from + i}})
			e, _ := wal.PutEntry("c", raw)
			e.TL, e.LSN, e.Token = main.Timeline, int64(from+i), token
			es = append(es, e)
		}
		if _, err := r.SpillEntries(ctx, "p", es); err != nil {
			t.Fatal(err)
		}
	}
	series("dead2", 101, 1500)
	series("pending", 201, 50)
	open := func(b *wal.Branch) *workdb.Branch { return p.Open(r, b) }
	rep, err := p.Fsck(ctx, r, "p", open, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("timeline %s: 1700 log entries of writers that did not commit (invisible; 1650 of writers that can no longer commit)", main.Timeline); !slices.Contains(rep.Notes, want) {
		t.Errorf("fsck notes %q, want %q", rep.Notes, want)
	}
	rep, err = p.Fsck(ctx, r, "p", open, true)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, s := range rep.Repaired {
		if strings.Contains(s, "deleted") {
			deleted++
			if !strings.HasSuffix(s, ": deleted 1650 entries of writers that can no longer commit") {
				t.Errorf("repair says %q; 1650 entries were deleted", s)
			}
		}
	}
	if deleted != 1 {
		t.Errorf("fsck --repair reported %q, want one deletion of 1650 entries", rep.Repaired)
	}
	rep, err = p.Fsck(ctx, r, "p", open, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("timeline %s: 50 log entries of writers that did not commit (invisible; 0 of writers that can no longer commit)", main.Timeline); !slices.Contains(rep.Notes, want) {
		t.Errorf("after the repair, fsck notes %q, want %q", rep.Notes, want)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("after the repair: problems %v", rep.Problems)
	}
}

// Reads across chunk boundaries, several emit calls, two collections and
// a fork inside a spilled commit's range.
func TestChunkBoundariesAndFork(t *testing.T) {
	t.Parallel()
	srv, r, main := waltest.Project(t)
	ctx := context.Background()
	r.NoImages = true
	p := commit.New()
	w := p.Open(r, main)
	w.ScanReads = srv.Embedded || srv.FerretDB
	mk := func(prefix string, from, n int) []bson.Raw {
		var out []bson.Raw
		for i := from; i < from+n; i++ {
			d, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.D{{Key: "p", Value: prefix}, {Key: "i", Value: int32(i)}}}, {Key: "v", Value: i}})
			out = append(out, d)
		}
		return out
	}
	// LSNs 1..37 inline in "a".
	if _, err := w.Insert(ctx, "a", mk("a", 0, 37), wal.CommitInfo{Message: "1"}); err != nil {
		t.Fatal(err)
	}
	// LSNs 38..2537 spilled in "a", emitted 700 at a time.
	n := 0
	if _, err := w.InsertStream(ctx, "a", func() ([]bson.Raw, error) {
		if n >= 2500 {
			return nil, nil
		}
		k := min(700, 2500-n)
		d := mk("a", 37+n, k)
		n += k
		return d, nil
	}, wal.CommitInfo{Message: "2"}, nil); err != nil {
		t.Fatal(err)
	}
	// LSNs 2538..4037 in "b".
	if _, err := w.Insert(ctx, "b", mk("b", 0, 1500), wal.CommitInfo{Message: "3"}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{37, 38, 737, 1037, 1038, 1437, 1438, 2137, 2537, 2538, 3537, 3538, 4037} {
		st, err := r.Fold(ctx, main.Timeline, at, "")
		if err != nil {
			t.Fatal(err)
		}
		wa, wb := min(at, 2537), max(0, at-2537)
		if st.Len("a") != int(wa) || st.Len("b") != int(wb) {
			t.Errorf("fold at %d: a=%d b=%d, want %d %d", at, st.Len("a"), st.Len("b"), wa, wb)
		}
		sta, err := r.Fold(ctx, main.Timeline, at, "a")
		if err != nil {
			t.Fatal(err)
		}
		if sta.Len("a") != int(wa) {
			t.Errorf("fold of a at %d: %d, want %d", at, sta.Len("a"), wa)
		}
	}
	key := func(prefix string, i int) []byte {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.D{{Key: "p", Value: prefix}, {Key: "i", Value: int32(i)}}}})
		return wal.KeyOf(bson.Raw(raw).Lookup("_id"))
	}
	for _, i := range []int{36, 37, 999, 1000, 1001, 1036, 1037, 1999, 2499} {
		for _, at := range []int64{int64(i), int64(i + 1), 4037} {
			got, _, err := r.LatestAtOrBelow(ctx, main.Timeline, at, "a", [][]byte{key("a", i)}, false)
			if err != nil {
				t.Fatal(err)
			}
			e := got[string(key("a", i))]
			if at >= int64(i+1) && (e == nil || e.LSN != int64(i+1)) {
				t.Errorf("latest of a%d at %d: %+v", i, at, e)
			}
			if at < int64(i+1) && e != nil {
				t.Errorf("latest of a%d at %d: %+v, want none", i, at, e.LSN)
			}
		}
	}
	// A fork inside the spilled commit (LSN 1500), then a commit on it.
	child, err := r.CreateBranch(ctx, "p", "child", main, 1500)
	if err != nil {
		t.Fatal(err)
	}
	cw := p.Open(r, child)
	cw.ScanReads = w.ScanReads
	if _, err := cw.Insert(ctx, "a", mk("c", 0, 1200), wal.CommitInfo{Message: "c"}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{1000, 1500, 1501, 2500, 2700} {
		st, err := r.Fold(ctx, child.Timeline, at, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := int(at); st.Len("a") != want || st.Len("b") != 0 {
			t.Errorf("child fold at %d: a=%d b=%d, want %d 0", at, st.Len("a"), st.Len("b"), want)
		}
	}
	count := 0
	if err := r.EntriesBack(ctx, child.Timeline, 2700, func(e *wal.Entry) bool { count++; return true }); err != nil {
		t.Fatal(err)
	}
	if count != 2700 {
		t.Errorf("EntriesBack from the child's head: %d entries, want 2700", count)
	}
	count = 0
	if err := r.EntriesBack(ctx, main.Timeline, 4037, func(e *wal.Entry) bool { count++; return true }); err != nil {
		t.Fatal(err)
	}
	if count != 4037 {
		t.Errorf("EntriesBack from main's head: %d entries, want 4037", count)
	}
	for _, k := range []int{1499, 1500} { // LSN 1500 and 1501 on main
		got, _, err := r.LatestAtOrBelow(ctx, child.Timeline, 2700, "a", [][]byte{key("a", k)}, false)
		if err != nil {
			t.Fatal(err)
		}
		if e := got[string(key("a", k))]; (k == 1499) != (e != nil) {
			t.Errorf("latest of a%d on the child: %+v", k, e)
		}
	}
	// A writer that lost, over LSNs 1000..1999 of main and the child.
	for _, tl := range []string{main.Timeline, child.Timeline} {
		var dead []wal.Entry
		for i := 1000; i < 2000; i++ {
			raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.D{{Key: "p", Value: "a"}, {Key: "i", Value: int32(i + 5000)}}}})
			e, _ := wal.PutEntry("a", raw)
			e.TL, e.LSN, e.Token = tl, int64(i), "dead"
			dead = append(dead, e)
		}
		if _, err := r.SpillEntries(ctx, "p", dead); err != nil {
			t.Fatal(err)
		}
	}
	for _, scans := range []bool{false, true} {
		r.Scans = scans
		for _, c := range []struct {
			tl   string
			at   int64
			want int
			a    int
		}{{main.Timeline, 4037, 4037, 2537}, {child.Timeline, 2700, 2700, 2700}, {child.Timeline, 1999, 1999, 1999}} {
			count = 0
			if err := r.EntriesBack(ctx, c.tl, c.at, func(e *wal.Entry) bool {
				if e.Token == "dead" {
					t.Errorf("uncommitted entry visible at %d", e.LSN)
				}
				count++
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if count != c.want {
				t.Errorf("scans=%v EntriesBack %s@%d: %d, want %d", scans, c.tl, c.at, count, c.want)
			}
			st, err := r.Fold(ctx, c.tl, c.at, "a")
			if err != nil {
				t.Fatal(err)
			}
			if st.Len("a") != c.a {
				t.Errorf("scans=%v fold %s@%d: %d", scans, c.tl, c.at, st.Len("a"))
			}
		}
		var keys [][]byte
		for i := 0; i < 300; i++ {
			keys = append(keys, key("a", 900+i), key("a", 5900+i))
		}
		got, _, err := r.LatestAtOrBelow(ctx, child.Timeline, 2700, "a", keys, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 300 {
			t.Errorf("scans=%v LatestAtOrBelow: %d keys found, want 300", scans, len(got))
		}
	}
	_, problems, err := r.Check(ctx, "p")
	if err != nil || len(problems) != 0 {
		t.Fatalf("fsck: %v %v", problems, err)
	}
}

package workdb_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/testsize"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// r7 is a project for review 7's tests of reads over an image's view.
type r7 struct {
	t   *testing.T
	ctx context.Context
	srv *enginetest.Server
	r   *wal.Repo
	b   *wal.Branch
	w   *workdb.Branch
}

func newR7(t *testing.T) *r7 {
	t.Helper()
	srv, r, b := waltest.Project(t)
	w := commit.New().Open(r, b)
	w.ScanReads = srv.Embedded || srv.FerretDB
	return &r7{t: t, ctx: context.Background(), srv: srv, r: r, b: b, w: w}
}

func (h *r7) on(b *wal.Branch) *r7 {
	w := commit.New().Open(h.r, b)
	w.ScanReads = h.w.ScanReads
	return &r7{t: h.t, ctx: h.ctx, srv: h.srv, r: h.r, b: b, w: w}
}

func r7raw(t testing.TB, d any) bson.Raw {
	t.Helper()
	out, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *r7) raw(d any) bson.Raw { return r7raw(h.t, d) }

func (h *r7) insert(coll string, docs ...bson.D) {
	h.t.Helper()
	var raws []bson.Raw
	for _, d := range docs {
		raws = append(raws, h.raw(d))
	}
	if _, err := h.w.Insert(h.ctx, coll, raws, wal.CommitInfo{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *r7) modify(coll string, m workdb.Modification) {
	h.t.Helper()
	if _, err := h.w.Modify(h.ctx, coll, m, workdb.Limits{}, wal.CommitInfo{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *r7) set(coll string, id any, set bson.D) {
	h.t.Helper()
	h.modify(coll, workdb.Modification{Filter: h.raw(bson.D{{Key: "_id", Value: id}}), Update: h.raw(bson.D{{Key: "$set", Value: set}})})
}

func (h *r7) del(coll string, id any) {
	h.t.Helper()
	h.modify(coll, workdb.Modification{Filter: h.raw(bson.D{{Key: "_id", Value: id}}), Delete: true})
}

func (h *r7) head() int64 {
	h.t.Helper()
	hd, err := h.r.Head(h.ctx, h.b.Timeline)
	if err != nil {
		h.t.Fatal(err)
	}
	return hd.LSN
}

func (h *r7) image() *wal.Image {
	h.t.Helper()
	img, err := h.r.TakeImage(h.ctx, "p", h.b.Timeline, h.head())
	if err != nil {
		h.t.Fatal(err)
	}
	return img
}

type r7Read struct {
	name string
	q    workdb.Query
}

type r7Answer struct {
	docs     []bson.Raw
	count    int64
	err      string
	cerr     string
	fellBack bool
}

func (a r7Answer) String() string {
	var s []string
	for _, d := range a.docs {
		s = append(s, d.String())
	}
	return fmt.Sprintf("count %d err %q cerr %q docs [%s]", a.count, a.err, a.cerr, strings.Join(s, ", "))
}

func (a r7Answer) same(b r7Answer) bool {
	if a.count != b.count || a.err != b.err || a.cerr != b.cerr || len(a.docs) != len(b.docs) {
		return false
	}
	for i := range a.docs {
		if !bytes.Equal(a.docs[i], b.docs[i]) {
			return false
		}
	}
	return true
}

// readOne reads q on coll at (tl, lsn) with fresh readers (Find, then
// Count of its filter). After a read that materialised the state's own
// view (a fallback), every view is dropped, so that the next read at that
// LSN is not answered by it.
func (h *r7) readOne(r *wal.Repo, tl string, lsn int64, coll string, q workdb.Query) r7Answer {
	var a r7Answer
	v := workdb.OpenCollViews(r, tl, lsn)
	v.Built = func(c string, l int64) {
		if l == lsn {
			a.fellBack = true
		}
	}
	docs, err := v.Find(h.ctx, coll, q)
	if err != nil {
		a.err = "error"
		h.t.Logf("find %v", err)
	}
	a.docs = docs
	v2 := workdb.OpenCollViews(r, tl, lsn)
	v2.Built = v.Built
	if a.count, err = v2.Count(h.ctx, coll, q.Filter); err != nil {
		a.cerr = "error"
	}
	if a.fellBack && !r.NoImages {
		h.dropViews()
	}
	return a
}

func (h *r7) dropViews() {
	h.t.Helper()
	if _, err := workdb.DropViews(h.ctx, h.r); err != nil {
		h.t.Fatal(err)
	}
}

// compare reads every read at every LSN over images, then (every view
// dropped) with images off, and reports each read that differs. It
// returns how many reads were answered over an image's view.
func (h *r7) compare(tl string, lsns []int64, colls []string, reads []r7Read) (overlaid, differ int) {
	h.t.Helper()
	type key struct {
		lsn  int64
		coll string
		name string
	}
	got := map[key]r7Answer{}
	// With two LSNs or more, the README's suite reads each collection and
	// read at every other LSN, in turn (each pair at one LSN at least);
	// the nightly size reads all (internal/testsize).
	stride := 1
	if len(lsns) > 1 {
		stride = testsize.Stride(2)
	}
	for li, lsn := range lsns {
		for ki, coll := range colls {
			for ri, rd := range reads {
				if (li+ki+ri)%stride != 0 {
					continue
				}
				a := h.readOne(h.r, tl, lsn, coll, rd.q)
				if !a.fellBack {
					overlaid++
				} else if testing.Verbose() {
					h.t.Logf("%s at %d, %s: fell back", coll, lsn, rd.name)
				}
				got[key{lsn, coll, rd.name}] = a
				if a.err != "" || a.cerr != "" {
					h.t.Logf("%s at %d, %s: the read fails (find %q, count %q)", coll, lsn, rd.name, a.err, a.cerr)
				}
			}
		}
	}
	h.noScratch()
	h.dropViews()
	plain := *h.r
	plain.NoImages = true
	for _, lsn := range lsns {
		for _, coll := range colls {
			for _, rd := range reads {
				g, ok := got[key{lsn, coll, rd.name}]
				if !ok {
					continue
				}
				want := h.readOne(&plain, tl, lsn, coll, rd.q)
				if !g.same(want) {
					differ++
					h.t.Errorf("%s at %d, %s (over image: %v):\n  got  %s\n  want %s", coll, lsn, rd.name, !g.fellBack, g, want)
				}
			}
		}
	}
	h.dropViews()
	return overlaid, differ
}

// noScratch fails when a scratch database is left.
func (h *r7) noScratch() {
	h.t.Helper()
	names, err := h.r.Client.ListDatabaseNames(h.ctx, bson.D{})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, h.r.DatabasePrefix()+"-scratch-") {
			h.t.Errorf("scratch database %s left behind", n)
		}
	}
}

func (h *r7) lsnRange(from, to int64) []int64 {
	var out []int64
	for l := from; l <= to; l++ {
		out = append(out, l)
	}
	return out
}

package workdb_test

import (
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/workdb"
)

// r9 extends review 7's harness for review 9's tests of the bases reads
// are laid over (earlier reads' views, whole-state views, images).
type r9 struct{ *r7 }

func newR9(t *testing.T) *r9 { return &r9{newR7(t)} }

func (h *r9) plain() *wal.Repo {
	p := *h.r
	p.NoImages = true
	return &p
}

// view materialises coll's own view at (tl, lsn) (an earlier read).
func (h *r9) view(tl string, lsn int64, coll string) {
	h.t.Helper()
	if _, err := workdb.OpenCollViews(h.plain(), tl, lsn).Find(h.ctx, coll, workdb.Query{Limit: 1}); err != nil {
		h.t.Fatal(err)
	}
}

// wholeView materialises the whole state at (tl, lsn) (collections --at).
func (h *r9) wholeView(tl string, lsn int64) *workdb.View {
	h.t.Helper()
	v, err := workdb.OpenView(h.ctx, h.r, tl, lsn)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// dropOwn removes the record and database of coll's own view at (tl, lsn).
func (h *r9) dropOwn(tl string, lsn int64, coll string) {
	h.t.Helper()
	id := fmt.Sprintf("%s:%012d/%s", tl, lsn, coll)
	var rec struct {
		DB string `bson:"db"`
	}
	views := h.r.DB.Collection("views")
	if err := views.FindOne(h.ctx, bson.D{{Key: "_id", Value: id}}).Decode(&rec); err != nil {
		h.t.Fatalf("view %s: %v", id, err)
	}
	if _, err := views.DeleteOne(h.ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.r.Client.Database(rec.DB).Drop(h.ctx); err != nil {
		h.t.Fatal(err)
	}
}

type r9Point struct {
	tl   string
	name string
	lsn  int64
}

func (p r9Point) String() string { return fmt.Sprintf("%s@%d", p.name, p.lsn) }

// readAll reads every read of coll at every point over whatever views
// exist (a read that falls back has its own view dropped again, so the
// views the test made stay the only bases), then, every view dropped,
// each with images and overlays off, and reports each difference. It
// returns how many reads were answered without materialising.
func (h *r9) readAll(points []r9Point, colls []string, reads []r7Read) (overlaid int) {
	h.t.Helper()
	type key struct {
		p    r9Point
		coll string
		name string
	}
	got := map[key]r7Answer{}
	for _, p := range points {
		for _, coll := range colls {
			for _, rd := range reads {
				var a r7Answer
				var built []string
				v := workdb.OpenCollViews(h.r, p.tl, p.lsn)
				v.Built = func(c string, l int64) { built = append(built, fmt.Sprintf("%s@%d", c, l)) }
				docs, err := v.Find(h.ctx, coll, rd.q)
				if err != nil {
					a.err = "error"
					h.t.Logf("%s %s %s: find: %v", p, coll, rd.name, err)
				}
				a.docs = docs
				v2 := workdb.OpenCollViews(h.r, p.tl, p.lsn)
				v2.Built = v.Built
				if a.count, err = v2.Count(h.ctx, coll, rd.q.Filter); err != nil {
					a.cerr = "error"
				}
				for _, b := range built {
					if b == fmt.Sprintf("%s@%d", coll, p.lsn) {
						a.fellBack = true
					}
				}
				if a.fellBack {
					h.dropOwn(p.tl, p.lsn, coll)
				} else {
					overlaid++
				}
				if len(built) > 0 && testing.Verbose() {
					h.t.Logf("%s %s %s: materialised %s", p, coll, rd.name, strings.Join(built, " "))
				}
				got[key{p, coll, rd.name}] = a
			}
		}
	}
	h.noScratch()
	h.dropViews()
	plain := h.plain()
	for _, p := range points {
		for _, coll := range colls {
			for _, rd := range reads {
				var want r7Answer
				docs, err := workdb.OpenCollViews(plain, p.tl, p.lsn).Find(h.ctx, coll, rd.q)
				if err != nil {
					want.err = "error"
				}
				want.docs = docs
				if want.count, err = workdb.OpenCollViews(plain, p.tl, p.lsn).Count(h.ctx, coll, rd.q.Filter); err != nil {
					want.cerr = "error"
				}
				g := got[key{p, coll, rd.name}]
				if !g.same(want) {
					h.t.Errorf("%s %s %s (overlaid: %v):\n  got  %s\n  want %s", p, coll, rd.name, !g.fellBack, g, want)
				}
			}
		}
	}
	h.dropViews()
	return overlaid
}

func (h *r9) reads() []r7Read {
	return []r7Read{
		{"all", workdb.Query{}},
		{"v lt 50", workdb.Query{Filter: h.raw(bson.D{{Key: "v", Value: bson.D{{Key: "$lt", Value: int32(50)}}}})}},
		{"skip 2 limit 5", workdb.Query{Skip: 2, Limit: 5}},
	}
}

func (h *r9) docs(from, to int32) []bson.D {
	var out []bson.D
	for i := from; i < to; i++ {
		out = append(out, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}})
	}
	return out
}

package diff

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

func raw(t testing.TB, d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFields(t *testing.T) {
	a := raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: int32(1)}, {Key: "sub", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: "a"}}},
		{Key: "arr", Value: bson.A{1, 2}}, {Key: "gone", Value: true}})
	b := raw(t, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1.0}, {Key: "sub", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: "b"}}},
		{Key: "arr", Value: bson.A{1, 2, 3}}, {Key: "new", Value: "v"}})
	var got []string
	for _, f := range Fields(a, b) {
		got = append(got, fmt.Sprintf("%s:%v>%v", f.Path, f.From.Type, f.To.Type))
	}
	want := []string{"n:32-bit integer>double", "sub.y:string>string", "arr:array>array", "gone:boolean>invalid", "new:invalid>string"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	if len(Fields(a, a)) != 0 {
		t.Fatal("a document differs from itself")
	}
}

type env struct {
	r    *wal.Repo
	main *wal.Branch
	p    *commit.Protocol
}

func setup(t *testing.T) *env {
	_, r, main := waltest.Project(t)
	return &env{r: r, main: main, p: commit.New()}
}

func (e *env) head(t *testing.T, b *wal.Branch) Point {
	h, err := e.r.Head(context.Background(), b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	return Point{TL: b.Timeline, LSN: h.LSN}
}

// naive compares two full folds: the reference Between must agree with.
func naive(t *testing.T, r *wal.Repo, a, b Point) map[string]string {
	ctx := context.Background()
	fa, err := r.Fold(ctx, a.TL, a.LSN, "")
	if err != nil {
		t.Fatal(err)
	}
	fb, err := r.Fold(ctx, b.TL, b.LSN, "")
	if err != nil {
		t.Fatal(err)
	}
	docs := func(st *wal.State) map[string]bson.Raw {
		m := map[string]bson.Raw{}
		for _, c := range st.Collections() {
			for _, d := range st.Docs(c) {
				m[c+"/"+d.Lookup("_id").String()] = d
			}
		}
		return m
	}
	da, db := docs(fa), docs(fb)
	out := map[string]string{}
	for k, d := range da {
		switch o, ok := db[k]; {
		case !ok:
			out[k] = Removed
		case !bytes.Equal(o, d):
			out[k] = Modified
		}
	}
	for k := range db {
		if _, ok := da[k]; !ok {
			out[k] = Added
		}
	}
	return out
}

// Random histories on three branches forked at different points: the
// diff of every pair of states (heads and past points) equals the
// comparison of two full folds.
func TestBetweenMatchesFolds(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	branches := []*wal.Branch{e.main}
	var points []Point
	for op := 0; op < 120; op++ {
		b := branches[rng.IntN(len(branches))]
		w := e.p.Open(e.r, b)
		id := int32(rng.IntN(30))
		filter := raw(t, bson.D{{Key: "_id", Value: id}})
		switch k := rng.IntN(10); {
		case k < 4:
			_, _ = w.Insert(ctx, "c", []bson.Raw{raw(t, bson.D{{Key: "_id", Value: id}, {Key: "v", Value: rng.IntN(5)}, {Key: "s", Value: bson.D{{Key: "x", Value: op}}}})}, wal.CommitInfo{})
		case k < 7:
			if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: filter, Update: raw(t, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: op}}}})}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
		case k < 9:
			if _, err := w.Modify(ctx, "c", workdb.Modification{Filter: filter, Delete: true}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
		default:
			if len(branches) < 3 {
				nb, err := e.r.CreateBranch(ctx, "p", fmt.Sprintf("b%d", op), b, -1)
				if err != nil {
					t.Fatal(err)
				}
				branches = append(branches, nb)
			}
		}
		if op%15 == 0 {
			points = append(points, e.head(t, b))
		}
	}
	for _, b := range branches {
		points = append(points, e.head(t, b))
	}
	for i, a := range points {
		for j, b := range points {
			changes, _, err := Between(ctx, e.r, a, b, "")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, c := range changes {
				if !c.Index {
					got[c.Coll+"/"+c.ID.String()] = c.Kind
				}
			}
			want := naive(t, e.r, a, b)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("points %d and %d (%+v, %+v): diff %v, folds say %v", i, j, a, b, got, want)
			}
		}
	}
}

// Diffing a branch with a one-document change against its parent reads a
// handful of entries, not the data: the changed entry, and that key's
// entry below the fork point. Counted, not timed.
func TestCostFollowsChange(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{5000, 1} {
		t.Run(fmt.Sprintf("commits-of-%d", batch), func(t *testing.T) {
			e := setup(t)
			ctx := context.Background()
			w := e.p.Open(e.r, e.main)
			const n = 5000
			docs := make([]bson.Raw, 0, n)
			for i := 0; i < n; i++ {
				docs = append(docs, raw(t, bson.D{{Key: "_id", Value: fmt.Sprintf("d%05d", i)}, {Key: "v", Value: i}}))
			}
			if batch == 1 {
				docs = docs[:200] // 200 commits of one document each
				for _, d := range docs {
					if _, err := w.Insert(ctx, "c", []bson.Raw{d}, wal.CommitInfo{}); err != nil {
						t.Fatal(err)
					}
				}
			} else if _, err := w.Insert(ctx, "c", docs, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
			b, err := e.r.CreateBranch(ctx, "p", "f", e.main, -1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.p.Open(e.r, b).Modify(ctx, "c", workdb.Modification{Filter: raw(t, bson.D{{Key: "_id", Value: "d00042"}}),
				Update: raw(t, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: -1}}}})}, workdb.Limits{}, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
			changes, st, err := Between(ctx, e.r, e.head(t, e.main), e.head(t, b), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 1 || changes[0].Kind != Modified || len(changes[0].Fields) != 1 || changes[0].Fields[0].Path != "v" {
				t.Fatalf("changes %+v", changes)
			}
			if st.EntriesRead > 3 {
				t.Fatalf("read %d entries for a one-document change", st.EntriesRead)
			}
			t.Logf("%d entries read", st.EntriesRead)
		})
	}
}

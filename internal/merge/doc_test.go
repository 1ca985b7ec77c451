package merge

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/diff"
)

func mk(t testing.TB, d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randDoc makes a small document from rng: a few fields, some nested,
// values of a few types (int32 and double 1 among them).
func randDoc(rng *rand.Rand, depth int) bson.D {
	keys := []string{"a", "b", "c", "d"}
	d := bson.D{}
	if depth == 0 {
		d = append(d, bson.E{Key: "_id", Value: int32(1)})
	}
	for _, k := range keys {
		switch rng.IntN(6) {
		case 0:
			continue
		case 1:
			d = append(d, bson.E{Key: k, Value: int32(rng.IntN(3))})
		case 2:
			d = append(d, bson.E{Key: k, Value: float64(rng.IntN(3))})
		case 3:
			d = append(d, bson.E{Key: k, Value: fmt.Sprint(rng.IntN(3))})
		case 4:
			d = append(d, bson.E{Key: k, Value: bson.A{rng.IntN(2)}})
		default:
			if depth < 2 {
				d = append(d, bson.E{Key: k, Value: randDoc(rng, depth+1)})
			}
		}
	}
	return d
}

// mutate changes some of d's fields (or none).
func mutate(rng *rand.Rand, base bson.D) bson.D {
	out := bson.D{}
	for _, e := range base {
		if e.Key == "_id" {
			out = append(out, e)
			continue
		}
		switch rng.IntN(5) {
		case 0: // removed
		case 1:
			out = append(out, bson.E{Key: e.Key, Value: int32(7 + rng.IntN(2))})
		case 2:
			if sub, ok := e.Value.(bson.D); ok {
				out = append(out, bson.E{Key: e.Key, Value: mutate(rng, sub)})
				continue
			}
			out = append(out, e)
		default:
			out = append(out, e)
		}
	}
	if rng.IntN(3) == 0 {
		out = append(out, bson.E{Key: "z" + fmt.Sprint(rng.IntN(2)), Value: "new"})
	}
	return out
}

func paths(cs []Conflict) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Path)
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}

// The merge laws, on random documents:
// merge(b, x, b) = x; merge(b, b, y) = y; merge(b, x, x) = x; conflicts
// are symmetric in the two sides; a merge without conflicts holds every
// field change of both sides (diffing it against each side shows only the
// other side's changes).
func TestDocsLaws(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		bd := randDoc(rng, 0)
		b := mk(t, bd)
		x := mk(t, mutate(rng, bd))
		y := mk(t, mutate(rng, bd))
		if got, cs := Docs(b, x, b, Refuse); !bytes.Equal(got, x) || len(cs) > 0 {
			t.Fatalf("merge(b, x, b) != x: %v %v", bson.Raw(got), cs)
		}
		if got, cs := Docs(b, b, y, Refuse); !bytes.Equal(got, y) || len(cs) > 0 {
			t.Fatalf("merge(b, b, y) != y: %v %v", bson.Raw(got), cs)
		}
		if got, cs := Docs(b, x, x, Refuse); !bytes.Equal(got, x) || len(cs) > 0 {
			t.Fatalf("merge(b, x, x) != x")
		}
		mxy, cxy := Docs(b, x, y, Refuse)
		_, cyx := Docs(b, y, x, Refuse)
		if paths(cxy) != paths(cyx) {
			t.Fatalf("conflicts not symmetric: %s vs %s", paths(cxy), paths(cyx))
		}
		if len(cxy) > 0 {
			continue
		}
		// Every change of x is in the merge: the merge differs from x only
		// where y changed the base.
		changedBy := func(side bson.Raw) map[string]bool {
			m := map[string]bool{}
			for _, f := range diff.Fields(b, side) {
				m[f.Path] = true
			}
			return m
		}
		cx, cy := changedBy(x), changedBy(y)
		for _, f := range diff.Fields(x, mxy) {
			if !covered(cy, f.Path) {
				t.Fatalf("merge lost x's change at %s\nbase %v\nx %v\ny %v\nmerge %v", f.Path, b, x, y, bson.Raw(mxy))
			}
		}
		for _, f := range diff.Fields(y, mxy) {
			if !covered(cx, f.Path) {
				t.Fatalf("merge lost y's change at %s\nbase %v\nx %v\ny %v\nmerge %v", f.Path, b, x, y, bson.Raw(mxy))
			}
		}
	}
}

// covered reports whether path, or a path above or below it, is in m.
func covered(m map[string]bool, path string) bool {
	for p := range m {
		if p == path || len(p) > len(path) && p[:len(path)+1] == path+"." || len(path) > len(p) && path[:len(p)+1] == p+"." {
			return true
		}
	}
	return false
}

// Deleted on one side and changed on the other, or added on both with
// different content, is a conflict of the whole document.
func TestDocsWholeConflicts(t *testing.T) {
	b := mk(t, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 1}})
	x := mk(t, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 2}})
	if got, cs := Docs(b, nil, x, Refuse); got != nil || len(cs) != 1 || cs[0].Path != "" {
		t.Fatalf("delete vs change: %v %v", got, cs)
	}
	if got, cs := Docs(b, nil, x, Theirs); !bytes.Equal(got, x) || len(cs) != 1 {
		t.Fatalf("delete vs change, theirs: %v %v", got, cs)
	}
	if got, cs := Docs(nil, b, x, Refuse); !bytes.Equal(got, b) || len(cs) != 1 {
		t.Fatalf("both added: %v %v", got, cs)
	}
	if got, cs := Docs(b, nil, nil, Refuse); got != nil || len(cs) != 0 {
		t.Fatalf("both deleted: %v %v", got, cs)
	}
}

// FuzzDocs checks the laws on documents the fuzzer builds from bytes.
func FuzzDocs(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(7), uint64(99))
	f.Fuzz(func(t *testing.T, s1, s2 uint64) {
		rng := rand.New(rand.NewPCG(s1, s2))
		bd := randDoc(rng, 0)
		b := mk(t, bd)
		x := mk(t, mutate(rng, bd))
		y := mk(t, mutate(rng, bd))
		if got, _ := Docs(b, x, b, Refuse); !bytes.Equal(got, x) {
			t.Fatal("merge(b, x, b) != x")
		}
		if got, _ := Docs(b, b, y, Refuse); !bytes.Equal(got, y) {
			t.Fatal("merge(b, b, y) != y")
		}
		m, cs := Docs(b, x, y, Refuse)
		if len(cs) == 0 {
			if _, err := bson.Raw(m).Elements(); err != nil {
				t.Fatalf("merge is not a document: %v", err)
			}
		}
	})
}

// A change of field order alone on their side is merged (review40: it
// was dropped, with no conflict, when ours changed another field):
// theirs' order, then the fields only ours has. When ours moved the
// fields too, or only ours did, ours' order stays, then what only
// theirs adds. Values merge as before in every case.
func TestDocsKeepTheirOrderWhenOnlyTheyMovedFields(t *testing.T) {
	e := func(k string, v any) bson.E { return bson.E{Key: k, Value: v} }
	for _, tc := range []struct {
		name               string
		base, ours, theirs bson.D
		want               bson.D
	}{
		{"they reorder, we add", bson.D{e("_id", 1), e("a", 1), e("b", 2)}, bson.D{e("_id", 1), e("a", 1), e("b", 2), e("c", 3)},
			bson.D{e("_id", 1), e("b", 2), e("a", 1)}, bson.D{e("_id", 1), e("b", 2), e("a", 1), e("c", 3)}},
		{"they reorder and add, we change", bson.D{e("_id", 1), e("a", 1), e("b", 2)}, bson.D{e("_id", 1), e("a", 5), e("b", 2)},
			bson.D{e("_id", 1), e("d", 4), e("b", 2), e("a", 1)}, bson.D{e("_id", 1), e("d", 4), e("b", 2), e("a", 5)}},
		{"they reorder, we remove", bson.D{e("_id", 1), e("a", 1), e("b", 2), e("c", 3)}, bson.D{e("_id", 1), e("a", 1), e("c", 3)},
			bson.D{e("_id", 1), e("c", 3), e("b", 2), e("a", 1)}, bson.D{e("_id", 1), e("c", 3), e("a", 1)}},
		{"we reorder, they add", bson.D{e("_id", 1), e("a", 1), e("b", 2)}, bson.D{e("_id", 1), e("b", 2), e("a", 1)},
			bson.D{e("_id", 1), e("a", 1), e("b", 2), e("c", 3)}, bson.D{e("_id", 1), e("b", 2), e("a", 1), e("c", 3)}},
		{"both reorder", bson.D{e("_id", 1), e("a", 1), e("b", 2), e("c", 3)}, bson.D{e("_id", 1), e("c", 3), e("a", 1), e("b", 2), e("x", 0)},
			bson.D{e("_id", 1), e("b", 2), e("a", 1), e("c", 3)}, bson.D{e("_id", 1), e("c", 3), e("a", 1), e("b", 2), e("x", 0)}},
	} {
		got, cs := Docs(mk(t, tc.base), mk(t, tc.ours), mk(t, tc.theirs), Refuse)
		if len(cs) != 0 {
			t.Errorf("%s: %d conflicts, want none", tc.name, len(cs))
		}
		if want := mk(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s: merged %s, want %s", tc.name, got, bson.Raw(want))
		}
	}
}

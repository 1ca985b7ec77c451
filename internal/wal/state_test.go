package wal

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustPut(t testing.TB, coll string, d bson.D) Entry {
	t.Helper()
	raw, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	e, err := PutEntry(coll, raw)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func idValue(t testing.TB, v any) bson.RawValue {
	t.Helper()
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	return bson.Raw(raw).Lookup("_id")
}

// randomHistory makes n entries over a few collections and keys, with
// keys of several BSON types that compare equal as numbers but are
// different keys (int32 1, int64 1, double 1, string "1").
func randomHistory(t testing.TB, rng *rand.Rand, n int) []Entry {
	keys := []any{int32(1), int64(1), 1.0, "1", int32(2), bson.D{{Key: "b", Value: 1}, {Key: "a", Value: 2}}, bson.D{{Key: "a", Value: 2}, {Key: "b", Value: 1}}}
	colls := []string{"a", "b"}
	out := make([]Entry, n)
	for i := range out {
		coll := colls[rng.IntN(len(colls))]
		key := keys[rng.IntN(len(keys))]
		if rng.IntN(4) == 0 {
			out[i] = DelEntry(coll, idValue(t, key))
		} else {
			out[i] = mustPut(t, coll, bson.D{{Key: "_id", Value: key}, {Key: "v", Value: rng.Int32()}, {Key: "z", Value: int64(i)}, {Key: "a", Value: "x"}})
		}
		out[i].LSN = int64(i + 1)
	}
	return out
}

func fold(entries []Entry) *State {
	st := NewState()
	for i := range entries {
		st.Apply(&entries[i])
	}
	return st
}

func stateBytes(st *State) []byte {
	var buf bytes.Buffer
	for _, c := range st.Collections() {
		fmt.Fprintf(&buf, "[%s]", c)
		for _, d := range st.Docs(c) {
			buf.Write(d)
		}
	}
	return buf.Bytes()
}

// The same prefix of the log always folds to the same bytes.
func TestFoldDeterministic(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		h := randomHistory(t, rng, 200)
		for _, n := range []int{0, 1, 17, 100, 200} {
			a, b := stateBytes(fold(h[:n])), stateBytes(fold(h[:n]))
			if !bytes.Equal(a, b) {
				t.Fatalf("seed %d prefix %d: two folds differ", seed, n)
			}
		}
	}
}

// The fold agrees with a plain model: last write per (collection, exact
// key) wins, deletes remove, and documents keep their exact bytes.
func TestFoldMatchesModel(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 2))
		h := randomHistory(t, rng, 300)
		model := map[string]map[string][]byte{}
		for _, e := range h {
			m := model[e.Coll]
			if m == nil {
				m = map[string][]byte{}
				model[e.Coll] = m
			}
			if e.Op == OpDel {
				delete(m, string(e.KeyBytes))
			} else {
				m[string(e.KeyBytes)] = e.Doc
			}
		}
		st := fold(h)
		for coll, m := range model {
			if st.Len(coll) != len(m) {
				t.Fatalf("seed %d: %s has %d documents, model %d", seed, coll, st.Len(coll), len(m))
			}
			for _, d := range st.Docs(coll) {
				id := d.Lookup("_id")
				if want := m[string(KeyOf(id))]; !bytes.Equal(want, d) {
					t.Fatalf("seed %d: %s %v: got %v want %v", seed, coll, id, d, bson.Raw(want))
				}
			}
		}
	}
}

// int32 1, int64 1 and double 1 are three documents, not one; nested _id
// field order matters.
func TestFoldKeysAreExactBSON(t *testing.T) {
	h := []Entry{
		mustPut(t, "c", bson.D{{Key: "_id", Value: int32(1)}}),
		mustPut(t, "c", bson.D{{Key: "_id", Value: int64(1)}}),
		mustPut(t, "c", bson.D{{Key: "_id", Value: 1.0}}),
		mustPut(t, "c", bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 2}}}}),
		mustPut(t, "c", bson.D{{Key: "_id", Value: bson.D{{Key: "b", Value: 2}, {Key: "a", Value: 1}}}}),
	}
	for i := range h {
		h[i].LSN = int64(i + 1)
	}
	if got := fold(h).Len("c"); got != 5 {
		t.Fatalf("got %d documents, want 5", got)
	}
	del := DelEntry("c", idValue(t, int64(1)))
	del.LSN = 6
	st := fold(append(h, del))
	if got := st.Len("c"); got != 4 {
		t.Fatalf("after deleting int64 1: %d documents, want 4", got)
	}
	for _, d := range st.Docs("c") {
		if d.Lookup("_id").Type == bson.TypeInt64 {
			t.Fatal("int64 1 survived its delete")
		}
	}
}

// Documents are listed in the order their keys came into being; an update
// keeps a document's place, a delete and re-insert moves it to the end.
func TestFoldOrder(t *testing.T) {
	h := []Entry{
		mustPut(t, "c", bson.D{{Key: "_id", Value: "a"}}),
		mustPut(t, "c", bson.D{{Key: "_id", Value: "b"}}),
		mustPut(t, "c", bson.D{{Key: "_id", Value: "c"}}),
		mustPut(t, "c", bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: 2}}),
		DelEntry("c", idValue(t, "b")),
		mustPut(t, "c", bson.D{{Key: "_id", Value: "b"}, {Key: "v", Value: 3}}),
	}
	for i := range h {
		h[i].LSN = int64(i + 1)
	}
	var got []string
	for _, d := range fold(h).Docs("c") {
		got = append(got, d.Lookup("_id").StringValue())
	}
	if fmt.Sprint(got) != "[a c b]" {
		t.Fatalf("order %v, want [a c b]", got)
	}
}

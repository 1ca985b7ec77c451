// Package diff compares two states of the log: documents added, removed
// and modified, with field-level changes, and index definitions. Between
// states with a common history it reads only the entries written on
// either side since their common point and, for keys changed on one side
// only, the latest entry of those keys before it: the cost follows the
// change, not the data.
package diff

import (
	"bytes"
	"context"
	"sort"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
)

// Point is a committed state: timeline TL at LSN LSN.
type Point struct {
	TL  string
	LSN int64
	// Slot, when not nil, is where the point's history starts in the log
	// (a slot of TL or of one of its ancestors): BRANCH~N below a commit
	// that changed nothing has that commit's LSN, and only the slot
	// leaves it out (see refs.Point's SlotN). It changes no state.
	Slot *wal.Slot
}

// Change kinds.
const (
	Added    = "added"
	Removed  = "removed"
	Modified = "modified"
)

// Change is one document or index that differs between two states.
type Change struct {
	Coll string
	Kind string
	// Index is set for an index definition: ID is then its name.
	Index bool
	ID    bson.RawValue
	// From and To are the document (or index specification) in each
	// state; nil where it does not exist.
	From, To bson.Raw
	// Fields lists, for a modified document, each changed field by dotted
	// path, in the order of From then the fields To adds.
	Fields []Field
}

// Field is one changed field of a modified document. From or To is the
// zero value (Type 0) where the field does not exist.
type Field struct {
	Path     string
	From, To bson.RawValue
}

// Stats says what a diff read, for tests and benchmarks.
type Stats struct {
	// Common is the LSN up to which both states share their history.
	Common int64
	// EntriesRead counts the log entries read.
	EntriesRead int
}

// Common returns the LSN up to which the histories of a and b are the
// same: their paths through the timeline tree agree from the root up to
// it.
func Common(ctx context.Context, r *wal.Repo, a, b Point) (int64, error) {
	sa, err := r.Segments(ctx, a.TL, 0, a.LSN)
	if err != nil {
		return 0, err
	}
	sb, err := r.Segments(ctx, b.TL, 0, b.LSN)
	if err != nil {
		return 0, err
	}
	var c int64
	for i := 0; i < len(sa) && i < len(sb) && sa[i].TL == sb[i].TL; i++ {
		c = min(sa[i].To, sb[i].To)
		if sa[i].To != sb[i].To {
			break
		}
	}
	return c, nil
}

type side map[string]*wal.Entry

func key(coll string, index bool, kb []byte) string {
	if index {
		return coll + "\x00i\x00" + string(kb)
	}
	return coll + "\x00d\x00" + string(kb)
}

func isIndex(op string) bool { return op == wal.OpIndex || op == wal.OpDropIndex }

// Between returns the changes from state a to state b, sorted by
// collection, then indexes after documents, then key. When coll is not
// empty, only that collection is compared.
func Between(ctx context.Context, r *wal.Repo, a, b Point, coll string) ([]Change, Stats, error) {
	c, err := Common(ctx, r, a, b)
	if err != nil {
		return nil, Stats{}, err
	}
	st := Stats{Common: c}
	changed := func(p Point) (side, error) {
		s := side{}
		err := r.EachEntry(ctx, p.TL, c, p.LSN, coll, func(e *wal.Entry) error {
			st.EntriesRead++
			cp := *e
			s[key(e.Coll, isIndex(e.Op), e.KeyBytes)] = &cp
			return nil
		})
		return s, err
	}
	ca, err := changed(a)
	if err != nil {
		return nil, st, err
	}
	cb, err := changed(b)
	if err != nil {
		return nil, st, err
	}
	// Keys changed on one side only: their value on the other side is
	// their value at the common point.
	type want struct {
		coll  string
		index bool
		keys  [][]byte
	}
	needs := map[string]*want{}
	for _, s := range []struct{ mine, other side }{{ca, cb}, {cb, ca}} {
		for k, e := range s.mine {
			if _, ok := s.other[k]; ok {
				continue
			}
			g := e.Coll + "\x00" + strconv.FormatBool(isIndex(e.Op))
			if needs[g] == nil {
				needs[g] = &want{coll: e.Coll, index: isIndex(e.Op)}
			}
			needs[g].keys = append(needs[g].keys, e.KeyBytes)
		}
	}
	base := side{}
	if c > 0 {
		for _, w := range needs {
			got, read, err := r.LatestAtOrBelow(ctx, a.TL, c, w.coll, w.keys, w.index)
			if err != nil {
				return nil, st, err
			}
			st.EntriesRead += read
			for kb, e := range got {
				base[key(w.coll, w.index, []byte(kb))] = e
			}
		}
	}
	value := func(mine side, k string) (bson.Raw, *wal.Entry) {
		e, ok := mine[k]
		if !ok {
			e = base[k]
		}
		if e == nil || e.Op == wal.OpDel || e.Op == wal.OpDropIndex {
			return nil, e
		}
		return bson.Raw(e.Doc), e
	}
	keys := map[string]bool{}
	for k := range ca {
		keys[k] = true
	}
	for k := range cb {
		keys[k] = true
	}
	var out []Change
	for k := range keys {
		va, ea := value(ca, k)
		vb, eb := value(cb, k)
		ref := ea
		if ref == nil {
			ref = eb
		}
		if ref == nil || bytes.Equal(va, vb) {
			continue
		}
		ch := Change{Coll: ref.Coll, Index: isIndex(ref.Op), ID: wal.KeyValue(ref.KeyBytes), From: va, To: vb}
		switch {
		case va == nil:
			ch.Kind = Added
		case vb == nil:
			ch.Kind = Removed
		default:
			ch.Kind = Modified
			ch.Fields = Fields(va, vb)
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.Coll != y.Coll {
			return x.Coll < y.Coll
		}
		if x.Index != y.Index {
			return !x.Index
		}
		return compareKeys(x.ID, y.ID) < 0
	})
	return out, st, nil
}

// compareKeys orders _id values: numbers by value, then by type and bytes.
func compareKeys(a, b bson.RawValue) int {
	na, oka := number(a)
	nb, okb := number(b)
	if oka && okb && na != nb {
		if na < nb {
			return -1
		}
		return 1
	}
	if a.Type != b.Type {
		return int(a.Type) - int(b.Type)
	}
	if a.Type == bson.TypeString {
		return bytes.Compare([]byte(a.StringValue()), []byte(b.StringValue()))
	}
	return bytes.Compare(a.Value, b.Value)
}

func number(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32()), true
	case bson.TypeInt64:
		return float64(v.Int64()), true
	case bson.TypeDouble:
		return v.Double(), true
	}
	return 0, false
}

// Fields lists the fields that differ between two documents by dotted
// path: embedded documents are compared field by field, arrays and all
// other values as whole values, type included (int32 1 and double 1.0
// differ). Fields appear in a's order, then those only b has in b's order.
func Fields(a, b bson.Raw) []Field {
	var out []Field
	fields(&out, "", a, b)
	return out
}

func fields(out *[]Field, prefix string, a, b bson.Raw) {
	ea, _ := a.Elements()
	eb, _ := b.Elements()
	inB := map[string]bson.RawValue{}
	for _, e := range eb {
		inB[e.Key()] = e.Value()
	}
	seen := map[string]bool{}
	for _, e := range ea {
		k, va := e.Key(), e.Value()
		seen[k] = true
		path := prefix + k
		vb, ok := inB[k]
		switch {
		case !ok:
			*out = append(*out, Field{Path: path, From: va})
		case va.Type == bson.TypeEmbeddedDocument && vb.Type == bson.TypeEmbeddedDocument:
			fields(out, path+".", va.Document(), vb.Document())
		case va.Type != vb.Type || !bytes.Equal(va.Value, vb.Value):
			*out = append(*out, Field{Path: path, From: va, To: vb})
		}
	}
	for _, e := range eb {
		if !seen[e.Key()] {
			*out = append(*out, Field{Path: prefix + e.Key(), To: e.Value()})
		}
	}
}

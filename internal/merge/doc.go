// Package merge is argon's three-way merge: of documents field by field,
// of collections key by key, and of two states of the log against their
// merge base.
package merge

import (
	"bytes"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Conflict is one field (or a whole document or index, Path "") changed
// differently on both sides. A zero Base, Ours or Theirs (Type 0) means
// absent.
type Conflict struct {
	Coll   string
	ID     bson.RawValue
	Index  bool
	Path   string
	Base   bson.RawValue
	Ours   bson.RawValue
	Theirs bson.RawValue
}

// Resolution picks a side for every conflict.
type Resolution int

// Resolutions.
const (
	Refuse Resolution = iota // report conflicts, merge nothing
	Ours                     // keep our value
	Theirs                   // take their value
)

// Settle is the resolution the --ours and --theirs flags ask for (at most
// one of them is set).
func Settle(ours, theirs bool) Resolution {
	switch {
	case ours:
		return Ours
	case theirs:
		return Theirs
	}
	return Refuse
}

func same(a, b bson.RawValue) bool {
	return a.Type == b.Type && bytes.Equal(a.Value, b.Value)
}

func docValue(d bson.Raw) bson.RawValue {
	if d == nil {
		return bson.RawValue{}
	}
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d}
}

// Docs merges document versions ours and theirs against base (any may be
// nil: absent). Fields changed on one side only are taken from that side;
// fields changed on both sides to the same value are kept; embedded
// documents present as documents on all three sides merge field by field;
// anything else changed differently on both sides is a conflict, settled
// by res (Refuse leaves it as ours and reports it). The result keeps ours'
// field order, then the fields only theirs adds, in theirs' order; when
// theirs alone changed the order of the fields the base had (BSON keeps
// field order, and argon counts a reordered document as changed), it
// keeps theirs' order, then the fields only ours adds. A nil result means
// the document is deleted.
func Docs(base, ours, theirs bson.Raw, res Resolution) (bson.Raw, []Conflict) {
	b, o, t := docValue(base), docValue(ours), docValue(theirs)
	switch {
	case same(o, t):
		return ours, nil
	case same(o, b):
		return theirs, nil
	case same(t, b):
		return ours, nil
	case ours == nil || theirs == nil || (base == nil):
		// Deleted on one side and changed on the other, or added on both
		// with different content.
		c := Conflict{Base: b, Ours: o, Theirs: t}
		if res == Theirs {
			return theirs, []Conflict{c}
		}
		return ours, []Conflict{c}
	}
	d, conflicts := fields("", base, ours, theirs, res)
	out, err := bson.Marshal(d)
	if err != nil {
		return ours, []Conflict{{Base: b, Ours: o, Theirs: t}}
	}
	return out, conflicts
}

func lookup(d bson.Raw, key string) (bson.RawValue, bool) {
	v, err := d.LookupErr(key)
	return v, err == nil
}

func fields(prefix string, base, ours, theirs bson.Raw, res Resolution) (bson.D, []Conflict) {
	var out bson.D
	var conflicts []Conflict
	eo, _ := ours.Elements()
	et, _ := theirs.Elements()
	eb, _ := base.Elements()
	inOurs := map[string]bool{}
	for _, e := range eo {
		inOurs[e.Key()] = true
	}
	add := func(key string, v bson.RawValue) {
		if v.Type != 0 {
			out = append(out, bson.E{Key: key, Value: v})
		}
	}
	merge1 := func(key string, bv, ov, tv bson.RawValue) {
		switch {
		case same(ov, tv), same(tv, bv):
			add(key, ov)
		case same(ov, bv):
			add(key, tv)
		case bv.Type == bson.TypeEmbeddedDocument && ov.Type == bson.TypeEmbeddedDocument && tv.Type == bson.TypeEmbeddedDocument:
			sub, cs := fields(prefix+key+".", bv.Document(), ov.Document(), tv.Document(), res)
			conflicts = append(conflicts, cs...)
			raw, err := bson.Marshal(sub)
			if err != nil {
				add(key, ov)
				return
			}
			add(key, bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw})
		default:
			conflicts = append(conflicts, Conflict{Path: prefix + key, Base: bv, Ours: ov, Theirs: tv})
			if res == Theirs {
				add(key, tv)
			} else {
				add(key, ov)
			}
		}
	}
	if !reordered(eb, eo) && reordered(eb, et) {
		// Theirs alone moved the base's fields: its order, then what
		// only ours has (review40: the order was dropped, without a
		// conflict, when ours changed another field).
		inTheirs := map[string]bool{}
		for _, e := range et {
			k := e.Key()
			inTheirs[k] = true
			bv, _ := lookup(base, k)
			ov, _ := lookup(ours, k)
			merge1(k, bv, ov, e.Value())
		}
		for _, e := range eo {
			k := e.Key()
			if inTheirs[k] {
				continue
			}
			bv, _ := lookup(base, k)
			merge1(k, bv, e.Value(), bson.RawValue{})
		}
		return out, conflicts
	}
	for _, e := range eo {
		k := e.Key()
		bv, _ := lookup(base, k)
		tv, _ := lookup(theirs, k)
		merge1(k, bv, e.Value(), tv)
	}
	// Fields ours does not have: added by theirs, or removed by ours.
	for _, e := range et {
		k := e.Key()
		if inOurs[k] {
			continue
		}
		bv, _ := lookup(base, k)
		merge1(k, bv, bson.RawValue{}, e.Value())
	}
	// Fields only the base had: removed on both sides, nothing to do. A
	// base field ours removed and theirs kept unchanged is handled above
	// (same(tv, bv) keeps ours' absence).
	return out, conflicts
}

// reordered reports whether side lists the fields it shares with base in
// another order than base does.
func reordered(base, side []bson.RawElement) bool {
	pos := make(map[string]int, len(base))
	for i, e := range base {
		pos[e.Key()] = i
	}
	last := -1
	for _, e := range side {
		i, ok := pos[e.Key()]
		if !ok {
			continue
		}
		if i < last {
			return true
		}
		last = i
	}
	return false
}

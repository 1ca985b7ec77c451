package wal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ValueKey is a string that two _id values share exactly when MongoDB
// takes them as the same value for a unique index: their bytes, except
// that numbers of any type compare by value (0, 0.0 and the 64-bit 0 are
// one _id), inside documents and arrays too. KeyOf tells them apart by
// type; ValueKey does not.
func ValueKey(v bson.RawValue) string {
	var b strings.Builder
	writeEqualityKey(&b, v, false)
	return b.String()
}

// writeEqualityKey writes ValueKey's key of v, or with ferret ferretKey's.
func writeEqualityKey(b *strings.Builder, v bson.RawValue, ferret bool) {
	if ferret {
		v = FerretValue(v)
	}
	switch v.Type {
	case bson.TypeInt32:
		b.WriteString("n")
		b.WriteString(strconv.FormatInt(int64(v.Int32()), 10))
	case bson.TypeInt64:
		b.WriteString("n")
		b.WriteString(strconv.FormatInt(v.Int64(), 10))
	case bson.TypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			b.WriteString("fnan")
			return
		case math.IsInf(f, 0):
			b.WriteString(map[bool]string{true: "f-inf", false: "finf"}[f < 0])
			return
		}
		// Its exact value (-0.0 is 0; 0.1 is not the decimal 0.1).
		b.WriteString("n")
		b.WriteString(new(big.Rat).SetFloat64(f).RatString())
	case bson.TypeDecimal128:
		// Exact too, so that NumberDecimal("2") is the 2 it equals.
		d, _ := v.Decimal128OK()
		r, ok := new(big.Rat).SetString(d.String())
		if !ok { // NaN, Infinity, -Infinity
			b.WriteString(map[string]string{"NaN": "fnan", "Infinity": "finf", "-Infinity": "f-inf"}[d.String()])
			return
		}
		b.WriteString("n")
		b.WriteString(r.RatString())
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		open, end := "{", "}"
		if v.Type == bson.TypeArray {
			open, end = "[", "]"
		}
		elems, err := bson.Raw(v.Value).Elements()
		if err != nil {
			writeBytes(b, v)
			return
		}
		b.WriteString(open)
		for _, el := range elems {
			if v.Type == bson.TypeEmbeddedDocument {
				b.WriteString(strconv.Quote(el.Key()))
				b.WriteString(":")
			}
			writeEqualityKey(b, el.Value(), ferret)
			b.WriteString(",")
		}
		b.WriteString(end)
	default:
		writeBytes(b, v)
	}
}

func writeBytes(b *strings.Builder, v bson.RawValue) {
	b.WriteString("t")
	b.WriteString(strconv.Itoa(int(v.Type)))
	b.WriteString(":")
	b.WriteString(hex.EncodeToString(v.Value))
}

// EqualIDsAt describes each set of documents of a state whose _ids are
// different BSON but equal by value (ValueKey: the 32- and 64-bit 2 and
// 2.0, say), by collection: MongoDB keeps one document per value, so a
// state holding both cannot be materialised (its insert fails on a
// duplicate key). argon refuses the writes that could commit such a
// state; fsck reports any it finds.
//
// With ferret set (the engine is FerretDB), _ids that engine's unique
// index takes for one are grouped too: an ObjectId and its hex string, a
// date and the integer of its milliseconds (FerretDB v1.24.2; the writes'
// own check is workdb's engineEqualIDs).
//
// It streams the state of timeline tl at LSN lsn from the log (FoldEach),
// holding each document's _id, not the state.
func (r *Repo) EqualIDsAt(ctx context.Context, tl string, lsn int64, ferret bool) ([]string, error) {
	e := newEqualIDs(ferret)
	_, err := r.FoldEach(ctx, tl, lsn, "", StateSink{
		Doc: func(coll string, doc bson.Raw) error {
			id := doc.Lookup("_id")
			id.Value = bytes.Clone(id.Value)
			e.add(coll, id)
			return nil
		},
		Index: func(string, bson.Raw) error { return nil },
		Reset: func() error {
			*e = *newEqualIDs(ferret)
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return e.report(), nil
}

// equalIDs groups the _ids of each collection by the value key the engine
// compares them by, in the order they came.
type equalIDs struct {
	key    func(bson.RawValue) string
	groups map[string]map[string][]bson.RawValue
	order  map[string][]string
}

func newEqualIDs(ferret bool) *equalIDs {
	key := ValueKey
	if ferret {
		key = ferretKey
	}
	return &equalIDs{key: key, groups: map[string]map[string][]bson.RawValue{}, order: map[string][]string{}}
}

func (e *equalIDs) add(coll string, id bson.RawValue) {
	g := e.groups[coll]
	if g == nil {
		g = map[string][]bson.RawValue{}
		e.groups[coll] = g
	}
	k := e.key(id)
	if _, ok := g[k]; !ok {
		e.order[coll] = append(e.order[coll], k)
	}
	g[k] = append(g[k], id)
}

// report describes every group of more than one _id, collections by name.
func (e *equalIDs) report() []string {
	colls := make([]string, 0, len(e.groups))
	for c := range e.groups {
		colls = append(colls, c)
	}
	sort.Strings(colls)
	var out []string
	for _, coll := range colls {
		groups := e.groups[coll]
		for _, k := range e.order[coll] {
			ids := groups[k]
			if len(ids) < 2 {
				continue
			}
			how := "are equal by value"
			shown := make([]string, len(ids))
			for i, id := range ids {
				shown[i] = id.String()
				if ValueKey(id) != ValueKey(ids[0]) {
					how = "are one value to FerretDB's unique index"
				}
			}
			out = append(out, fmt.Sprintf("collection %s holds %d documents whose _ids %s: %s", coll, len(ids), how, strings.Join(shown, ", ")))
		}
	}
	return out
}

// ferretKey is ValueKey, but for the _ids FerretDB's unique index takes
// for another value (measured on the embedded engine: the second insert
// of each pair fails on a duplicate key), at the top level and inside
// document _ids alike: an ObjectId is keyed as its hex string, a date as
// the integer of its milliseconds, binary data of any subtype as its
// base64 string, a timestamp as the integer of its 64 bits.
func ferretKey(id bson.RawValue) string {
	var b strings.Builder
	writeEqualityKey(&b, id, true)
	return b.String()
}

// FerretValue is the value FerretDB's unique indexes take v for (on _id
// and on any other field).
func FerretValue(v bson.RawValue) bson.RawValue {
	var x any
	switch v.Type {
	case bson.TypeObjectID:
		x = v.ObjectID().Hex()
	case bson.TypeDateTime:
		x = v.DateTime()
	case bson.TypeBinary:
		_, data := v.Binary()
		x = base64.StdEncoding.EncodeToString(data)
	case bson.TypeTimestamp:
		t, i := v.Timestamp()
		x = int64(uint64(t)<<32 | uint64(i))
	default:
		return v
	}
	t, b, err := bson.MarshalValue(x)
	if err != nil {
		return v
	}
	return bson.RawValue{Type: t, Value: b}
}

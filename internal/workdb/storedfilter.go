package workdb

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// EngineFilter is filter as the engine of lim must be sent it. FerretDB v1
// stores an _id that is a document with its own nested _id first (and
// -0.0 as 0.0: see withStoredID), and compares documents field by field
// in order, so a filter naming such an _id as it was inserted matched
// nothing there, where MongoDB finds the document (issue 7). The _id
// values of the filter (top level, in $and, $or and $nor, and the
// operands of the comparisons, also under $not) are sent in the stored
// form; the rest is left as it is. On MongoDB (lim.Engine empty) the filter is
// unchanged.
func EngineFilter(filter bson.Raw, lim Limits) (bson.Raw, error) {
	if lim.Engine == "" || filter == nil {
		return filter, nil
	}
	out, changed, err := storedFilter(filter)
	if err != nil || !changed {
		return filter, err
	}
	return out, nil
}

// EngineDocument is doc (a replacement) as the engine of lim must be sent
// it: its _id in the stored form (see withStoredID).
func EngineDocument(doc bson.Raw, lim Limits) (bson.Raw, error) {
	if lim.Engine == "" {
		return doc, nil
	}
	return withStoredID(doc)
}

func storedFilter(filter bson.Raw) (bson.Raw, bool, error) {
	elems, err := filter.Elements()
	if err != nil {
		return nil, false, err
	}
	changed := false
	out := make([][]byte, len(elems))
	for i, el := range elems {
		v := el.Value()
		switch el.Key() {
		case "_id":
			nv, c := storedIDCondition(v)
			v, changed = nv, changed || c
		case "$and", "$or", "$nor":
			if v.Type == bson.TypeArray {
				vals, err := v.Array().Values()
				if err != nil {
					return nil, false, err
				}
				parts := make([]bsoncore.Value, len(vals))
				any := false
				for j, pv := range vals {
					parts[j] = bsoncore.Value{Type: bsoncore.Type(pv.Type), Data: pv.Value}
					if pv.Type != bson.TypeEmbeddedDocument {
						continue
					}
					sub, c, err := storedFilter(pv.Document())
					if err != nil {
						return nil, false, err
					}
					if c {
						parts[j].Data, any = sub, true
					}
				}
				if any {
					v = bson.RawValue{Type: bson.TypeArray, Value: bsoncore.BuildArray(nil, parts...)}
					changed = true
				}
			}
		}
		out[i] = element(el.Key(), v)
	}
	return bson.Raw(bsoncore.BuildDocument(nil, out...)), changed, nil
}

// storedIDCondition is the condition v on _id with its values in the
// stored form: v itself when it is a value, the operands of the
// comparisons ($eq, $ne, $gt, $gte, $lt, $lte, $in, $nin) when it is an
// operator document, and the same under $not.
func storedIDCondition(v bson.RawValue) (bson.RawValue, bool) {
	if v.Type != bson.TypeEmbeddedDocument {
		sv := storedValue(v)
		return sv, !sameValue(sv, v)
	}
	elems, err := v.Document().Elements()
	if err != nil || len(elems) == 0 || !strings.HasPrefix(elems[0].Key(), "$") {
		sv := storedValue(v)
		return sv, !sameValue(sv, v)
	}
	changed := false
	out := make([][]byte, len(elems))
	for i, el := range elems {
		ov := el.Value()
		switch el.Key() {
		case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
			sv := storedValue(ov)
			if !sameValue(sv, ov) {
				ov, changed = sv, true
			}
		case "$not":
			if ov.Type == bson.TypeEmbeddedDocument {
				if sv, c := storedIDCondition(ov); c {
					ov, changed = sv, true
				}
			}
		case "$in", "$nin":
			if ov.Type == bson.TypeArray {
				sv := storedValue(ov) // an array: each element
				if !sameValue(sv, ov) {
					ov, changed = sv, true
				}
			}
		}
		out[i] = element(el.Key(), ov)
	}
	if !changed {
		return v, false
	}
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: bsoncore.BuildDocument(nil, out...)}, true
}

func sameValue(a, b bson.RawValue) bool {
	return a.Type == b.Type && string(a.Value) == string(b.Value)
}

package workdb

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/wal"
)

// CheckUnique finds, without writing anything, a document of puts that
// would break a unique index of the working database (or one the puts
// create): against another document of puts, or against a document the
// puts leave in place. It answers what ApplyPuts would find out by
// writing, for merge --dry-run; nil when none would.
//
// It reads one query per unique index of each collection the puts write
// (an $or of the written documents' keys, in chunks), never one per
// document. Keys are compared as MongoDB's unique indexes compare them:
// numbers by value whatever their type; a missing field as null. Indexes
// with a partialFilterExpression are not checked (the server still
// enforces them when the merge is written).
func (w *Branch) CheckUnique(ctx context.Context, puts []Put) (*DuplicateKeyError, error) {
	type written struct {
		id  bson.RawValue
		doc bson.Raw
	}
	docs := map[string][]written{}
	touched := map[string]map[string]bool{} // collection -> keys of _ids the puts write or delete
	var colls []string
	for _, p := range puts {
		if _, ok := touched[p.Coll]; !ok {
			touched[p.Coll] = map[string]bool{}
			colls = append(colls, p.Coll)
		}
		if p.Index {
			continue // (its collection's unique indexes are checked)
		}
		touched[p.Coll][string(wal.KeyOf(p.ID))] = true
		if p.Doc != nil {
			docs[p.Coll] = append(docs[p.Coll], written{p.ID, p.Doc})
		}
	}
	for _, coll := range colls {
		specs, whole, err := uniqueAfter(ctx, w, coll, puts)
		if err != nil {
			return nil, err
		}
		for _, spec := range specs {
			name, _ := spec.Lookup("name").StringValueOK()
			keyDoc, ok := spec.Lookup("key").DocumentOK()
			if !ok {
				continue
			}
			elems, err := keyDoc.Elements()
			if err != nil {
				return nil, err
			}
			paths := make([]string, len(elems))
			for i, e := range elems {
				paths[i] = e.Key()
			}
			sparse, _ := spec.Lookup("sparse").BooleanOK()
			owner := map[string]written{} // key tuple -> the put document holding it
			var clauses []bson.D
			for _, d := range docs[coll] {
				tuple, clause, indexed := uniqueKey(d.doc, paths, sparse, w.Repo.FerretDB)
				if !indexed {
					continue
				}
				if other, dup := owner[tuple]; dup && !other.id.Equal(d.id) {
					return duplicateOf(coll, name, d.id, other.id, clause), nil
				}
				owner[tuple] = d
				clauses = append(clauses, clause)
			}
			proj := bson.D{{Key: "_id", Value: 1}}
			for _, p := range paths {
				proj = append(proj, bson.E{Key: p, Value: 1})
			}
			// The documents holding any of the written keys: by an $or
			// of them, 500 at a time; on FerretDB, which reads the whole
			// collection for any such query, by one read of it.
			// A unique index the puts create or redefine judges every
			// document of the collection, not only the ones they write:
			// one read of it all.
			var filters []bson.D
			if whole[name] || w.ScanReads && len(clauses) > 0 {
				filters = append(filters, bson.D{})
			}
			for start := 0; start < len(clauses) && !w.ScanReads && !whole[name]; start += 500 {
				or := bson.A{}
				for _, c := range clauses[start:min(start+500, len(clauses))] {
					or = append(or, c)
				}
				filters = append(filters, bson.D{{Key: "$or", Value: or}})
			}
			for _, filter := range filters {
				cur, err := w.DB.Collection(coll).Find(ctx, filter, options.Find().SetProjection(proj))
				if err != nil {
					return nil, err
				}
				for cur.Next(ctx) {
					id := cur.Current.Lookup("_id")
					if touched[coll][string(wal.KeyOf(id))] {
						continue // changed or deleted by the puts themselves
					}
					tuple, clause, indexed := uniqueKey(cur.Current, paths, sparse, w.Repo.FerretDB)
					if d, dup := owner[tuple]; indexed && dup {
						_ = cur.Close(ctx)
						return duplicateOf(coll, name, d.id, id, clause), nil
					}
					if indexed && whole[name] {
						owner[tuple] = written{id: id}
					}
				}
				err = cur.Err()
				_ = cur.Close(ctx)
				if err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, nil
}

// uniqueAfter lists the unique indexes coll has once the index puts are
// applied, partial ones excepted, and which of them the puts create or
// redefine (by name).
func uniqueAfter(ctx context.Context, w *Branch, coll string, puts []Put) ([]bson.Raw, map[string]bool, error) {
	specs, err := listIndexes(ctx, w.DB, coll)
	if err != nil {
		return nil, nil, err
	}
	whole := map[string]bool{}
	byName := map[string]bson.Raw{}
	var order []string
	for _, s := range specs {
		n, _ := s.Lookup("name").StringValueOK()
		byName[n] = s
		order = append(order, n)
	}
	for _, p := range puts {
		if !p.Index || p.Coll != coll {
			continue
		}
		n := p.ID.StringValue()
		old, ok := byName[n]
		if !ok {
			order = append(order, n)
		}
		if p.Doc != nil && (old == nil || !bytes.Equal(indexSpec(old), indexSpec(p.Doc))) {
			whole[n] = true
		}
		byName[n] = p.Doc // nil: dropped
	}
	var out []bson.Raw
	for _, n := range order {
		s := byName[n]
		if s == nil {
			continue
		}
		if u, _ := s.Lookup("unique").BooleanOK(); !u {
			continue
		}
		if _, err := s.LookupErr("partialFilterExpression"); err == nil {
			continue
		}
		out = append(out, s)
	}
	return out, whole, nil
}

// uniqueKey returns doc's key for a unique index on paths, as a
// comparable string, and the filter that finds documents with that key;
// indexed is false for a sparse index and a document with none of the
// fields, and with ferret (the embedded engine, FerretDB over SQLite) for
// a document missing any of them: measured there, such a document never
// collides with another (MongoDB takes a missing field for null).
func uniqueKey(doc bson.Raw, paths []string, sparse, ferret bool) (tuple string, filter bson.D, indexed bool) {
	var b strings.Builder
	has := false
	for _, p := range paths {
		v, err := doc.LookupErr(strings.Split(p, ".")...)
		if err != nil {
			if ferret {
				return "", nil, false
			}
			b.WriteString("null|")
			filter = append(filter, bson.E{Key: p, Value: nil})
			continue
		}
		has = true
		if ferret {
			// FerretDB's unique indexes compare values as their JSON
			// text: a date and the integer of its milliseconds, say,
			// are one key there (wal.FerretValue).
			v = wal.FerretValue(v)
		}
		b.WriteString(comparable(v))
		b.WriteByte('|')
		filter = append(filter, bson.E{Key: p, Value: v})
	}
	return b.String(), filter, has || !sparse
}

// comparable renders v so that values a unique index holds equal render
// the same: numbers by value, null and missing alike.
func comparable(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		var f float64
		switch v.Type {
		case bson.TypeInt32:
			f = float64(v.Int32())
		case bson.TypeInt64:
			if i := v.Int64(); i > 1<<53 || i < -(1<<53) {
				return "l" + strconv.FormatInt(i, 10) // beyond exact doubles
			}
			f = float64(v.Int64())
		default:
			f = v.Double()
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return "l" + strconv.FormatInt(int64(f), 10)
		}
		return "d" + strconv.FormatFloat(f, 'g', -1, 64)
	case bson.TypeNull, bson.TypeUndefined:
		return "null"
	}
	return fmt.Sprintf("%02x:%x", byte(v.Type), v.Value)
}

func duplicateOf(coll, index string, id, other bson.RawValue, key bson.D) *DuplicateKeyError {
	js, _ := bson.MarshalExtJSON(key, false, false)
	return &DuplicateKeyError{Coll: coll, ID: id, Indexes: []string{index},
		Msg: fmt.Sprintf("the merged document _id %s would break unique index %s: _id %s already has %s", FormatValue(id), index, FormatValue(other), js)}
}

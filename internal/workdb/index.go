package workdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
)

// IndexOptions are the options argon index create takes.
type IndexOptions struct {
	Name   string
	Unique bool
}

// IndexExistsError reports an index name already taken on a collection
// by another index.
type IndexExistsError struct{ Coll, Name string }

func (e *IndexExistsError) Error() string {
	return fmt.Sprintf("index %q already exists on collection %s with other keys or options", e.Name, e.Coll)
}

// IndexNotFoundError reports an index that does not exist.
type IndexNotFoundError struct{ Coll, Name string }

func (e *IndexNotFoundError) Error() string {
	return fmt.Sprintf("index %q not found on collection %s", e.Name, e.Coll)
}

// createFromSpec creates an index from the specification the server
// reported for it (minus its version and namespace), with every option it
// carries.
func createFromSpec(ctx context.Context, db *mongo.Database, coll string, spec bson.Raw) error {
	return db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{indexSpec(spec)}}}).Err()
}

// listIndexes returns the index specifications of coll, _id's excepted,
// by name (engines list them in different orders).
func listIndexes(ctx context.Context, db *mongo.Database, coll string) ([]bson.Raw, error) {
	cur, err := db.Collection(coll).Indexes().List(ctx)
	if err != nil {
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == 26 { // NamespaceNotFound
			return nil, nil
		}
		return nil, err
	}
	defer cur.Close(ctx)
	var out []bson.Raw
	for cur.Next(ctx) {
		if name, _ := cur.Current.Lookup("name").StringValueOK(); name == "_id_" {
			continue
		}
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := out[i].Lookup("name").StringValueOK()
		b, _ := out[j].Lookup("name").StringValueOK()
		return a < b
	})
	return out, cur.Err()
}

func findSpec(specs []bson.Raw, name string) bson.Raw {
	for _, s := range specs {
		if n, _ := s.Lookup("name").StringValueOK(); n == name {
			return s
		}
	}
	return nil
}

// CreateIndex creates an index on coll as one commit. The server builds it
// (and refuses a unique index the data violates); the log records the
// specification the server reports.
func (w *Branch) CreateIndex(ctx context.Context, coll string, keys bson.Raw, opts IndexOptions, info wal.CommitInfo) (bson.Raw, *wal.Commit, int64, error) {
	var spec bson.Raw
	var name string
	cm, head, err := w.write(ctx, info, nil, func(ctx context.Context) ([]wal.Entry, error) {
		before, err := listIndexes(ctx, w.DB, coll)
		if err != nil {
			return nil, err
		}
		name = opts.Name
		if name == "" {
			name = defaultIndexName(keys)
		}
		if old := findSpec(before, name); old != nil {
			// The same index again is nothing to do, as MongoDB's
			// createIndexes answers it; another under the name is refused.
			if !sameIndex(old, keys, opts.Unique) {
				return nil, &IndexExistsError{Coll: coll, Name: name}
			}
			// Unless an application created it and did not commit it:
			// this write would not record it either.
			if !w.cleanAtStart {
				raw, _ := bson.Marshal(bson.D{{Key: "n", Value: name}})
				key := wal.KeyOf(bson.Raw(raw).Lookup("n"))
				got, _, err := w.Repo.LatestAtOrBelow(ctx, w.TL, w.base, coll, [][]byte{key}, true)
				if err != nil {
					return nil, err
				}
				if e := got[string(key)]; e == nil || e.Op != wal.OpIndex || !bytes.Equal(e.Doc, old) {
					return nil, fmt.Errorf("index %q on collection %s is an application's uncommitted change: record it with `argon commit`, or discard it with `argon restore`", name, coll)
				}
			}
			spec = old
			return nil, nil
		}
		// Any other index of coll an application changed: refused too,
		// before anything is created (see refuseIndexChangesIn).
		if err := w.refuseIndexChangesIn(ctx, coll); err != nil {
			return nil, err
		}
		d := bson.D{{Key: "key", Value: keys}, {Key: "name", Value: name}}
		if opts.Unique {
			d = append(d, bson.E{Key: "unique", Value: true})
		}
		raw, err := bson.Marshal(d)
		if err != nil {
			return nil, err
		}
		w.touchIndex(coll, name)
		if err := w.announceTouched(ctx); err != nil {
			return nil, err
		}
		if err := createFromSpec(ctx, w.DB, coll, raw); err != nil {
			return nil, err
		}
		after, err := listIndexes(ctx, w.DB, coll)
		if err != nil {
			return nil, err
		}
		if spec = findSpec(after, name); spec == nil {
			return nil, fmt.Errorf("index %q was not created", name)
		}
		w.changedIndex(coll, nil, spec)
		e, err := wal.IndexEntry(coll, spec)
		return []wal.Entry{e}, err
	})
	return spec, cm, head, err
}

// DropIndex drops the index called name on coll as one commit.
func (w *Branch) DropIndex(ctx context.Context, coll, name string, info wal.CommitInfo) (*wal.Commit, int64, error) {
	if name == "_id_" {
		return nil, 0, fmt.Errorf("cannot drop index _id_ on collection %s: every collection keeps its _id index", coll)
	}
	return w.write(ctx, info, nil, func(ctx context.Context) ([]wal.Entry, error) {
		if err := w.refuseIndexChangesIn(ctx, coll); err != nil {
			return nil, err
		}
		specs, err := listIndexes(ctx, w.DB, coll)
		if err != nil {
			return nil, err
		}
		spec := findSpec(specs, name)
		if spec == nil {
			return nil, &IndexNotFoundError{Coll: coll, Name: name}
		}
		w.touchIndex(coll, name)
		if err := w.announceTouched(ctx); err != nil {
			return nil, err
		}
		if err := w.DB.Collection(coll).Indexes().DropOne(ctx, name); err != nil {
			return nil, err
		}
		w.changedIndex(coll, spec, nil)
		return []wal.Entry{wal.DropIndexEntry(coll, name)}, nil
	})
}

// Indexes lists the indexes of coll at the branch's head (not _id's).
func (w *Branch) Indexes(ctx context.Context, coll string) ([]bson.Raw, error) {
	var out []bson.Raw
	err := w.Protocol.Read(ctx, w, func(*Marker) error {
		var err error
		out, err = listIndexes(ctx, w.DB, coll)
		return err
	})
	return out, err
}

// Indexes lists the indexes of coll in the view.
func (v *View) Indexes(ctx context.Context, coll string) ([]bson.Raw, error) {
	return listIndexes(ctx, v.DB, coll)
}

// defaultIndexName is MongoDB's default name: each key and its direction
// or type joined by underscores, like "age_1_name_-1".
func defaultIndexName(keys bson.Raw) string {
	elems, _ := keys.Elements()
	parts := make([]string, 0, 2*len(elems))
	for _, e := range elems {
		v := e.Value()
		var s string
		switch v.Type {
		case bson.TypeString:
			s = v.StringValue()
		case bson.TypeInt32:
			s = fmt.Sprint(v.Int32())
		case bson.TypeInt64:
			s = fmt.Sprint(v.Int64())
		case bson.TypeDouble:
			s = fmt.Sprint(int64(v.Double()))
		default:
			s = v.String()
		}
		parts = append(parts, e.Key(), s)
	}
	return strings.Join(parts, "_")
}

// explainDuplicate names what a duplicate-key error on inserting doc into
// c is about: its _id, or a unique index and the key values it already
// holds. It returns "" when it cannot tell.
func explainDuplicate(ctx context.Context, c *mongo.Collection, doc bson.Raw) string {
	id := doc.Lookup("_id")
	if n, err := c.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}}); err == nil && n > 0 {
		return "a document with _id " + FormatValue(id) + " already exists"
	}
	specs, err := listIndexes(ctx, c.Database(), c.Name())
	if err != nil {
		return ""
	}
	for _, spec := range specs {
		if u, _ := spec.Lookup("unique").BooleanOK(); !u {
			continue
		}
		keys, err := spec.Lookup("key").Document().Elements()
		if err != nil {
			continue
		}
		filter := bson.D{}
		shown := bson.D{}
		for _, k := range keys {
			v, err := doc.LookupErr(strings.Split(k.Key(), ".")...)
			var val any = nil
			if err == nil {
				val = v
			}
			filter = append(filter, bson.E{Key: k.Key(), Value: val})
			shown = append(shown, bson.E{Key: k.Key(), Value: val})
		}
		if n, err := c.CountDocuments(ctx, filter); err == nil && n > 0 {
			name, _ := spec.Lookup("name").StringValueOK()
			js, _ := bson.MarshalExtJSON(shown, false, false)
			return fmt.Sprintf("unique index %s already has %s (inserting _id %s)", name, js, FormatValue(id))
		}
	}
	return ""
}

// ListIndexes returns the index specifications of coll in db, _id's
// excepted, by name.
func ListIndexes(ctx context.Context, db *mongo.Database, coll string) ([]bson.Raw, error) {
	return listIndexes(ctx, db, coll)
}

// PortableIndexSpec is spec without the fields a server sets on its own
// (v, ns): what createIndexes takes anywhere.
func PortableIndexSpec(spec bson.Raw) bson.Raw { return indexSpec(spec) }

// sameIndex reports whether spec is an index on exactly keys (the same
// fields, order, directions and types) with the given uniqueness and no
// other option.
func sameIndex(spec, keys bson.Raw, unique bool) bool {
	if k, ok := spec.Lookup("key").DocumentOK(); !ok || !bytes.Equal(k, keys) {
		return false
	}
	elems, err := spec.Elements()
	if err != nil {
		return false
	}
	for _, e := range elems {
		switch e.Key() {
		case "v", "key", "name", "ns":
		case "unique":
			if u, ok := e.Value().BooleanOK(); !ok || u != unique {
				return false
			}
		default:
			return false
		}
	}
	if unique {
		u, ok := spec.Lookup("unique").BooleanOK()
		return ok && u
	}
	return true
}

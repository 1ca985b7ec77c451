package workdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
)

// Sums fingerprint the content of a working database, per collection: the
// XOR of a 128-bit hash of every document's bytes. XOR makes them cheap to
// keep up to date (a write XORs out the old document and XORs in the new)
// and independent of order. argon keeps the fingerprint of the committed
// head in the marker; a scan of the database that finds the same
// fingerprints proves (to 2^-128) that applications changed nothing, so
// status and checkout need not fold the log.
type Sums map[string]string

type sum [16]byte

func docSum(doc bson.Raw) sum {
	h := sha256.Sum256(doc)
	var s sum
	copy(s[:], h[:16])
	return s
}

func (s Sums) get(coll string) sum {
	var out sum
	if v, ok := s[coll]; ok {
		_, _ = hex.Decode(out[:], []byte(v))
	}
	return out
}

// toggle XORs doc into (or out of: XOR is its own inverse) coll's sum.
func (s Sums) toggle(coll string, doc bson.Raw) {
	cur, d := s.get(coll), docSum(doc)
	for i := range cur {
		cur[i] ^= d[i]
	}
	if cur == (sum{}) {
		delete(s, coll)
		return
	}
	s[coll] = hex.EncodeToString(cur[:])
}

func (s Sums) clone() Sums {
	out := make(Sums, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

func (s Sums) Equal(o Sums) bool {
	if len(s) != len(o) {
		return false
	}
	for k, v := range s {
		if o[k] != v {
			return false
		}
	}
	return true
}

// ScanSums computes the fingerprint of every collection in db, documents
// and indexes.
func ScanSums(ctx context.Context, db *mongo.Database) (Sums, error) {
	sums, _, err := scanSums(ctx, db, false, nil)
	return sums, err
}

// scanned is what a scan read of a working database, kept for the
// comparison with the log that follows when the scan finds the database
// changed, so that the comparison need not read it again. Between them,
// docs and same name every collection the scan listed.
type scanned struct {
	// docs holds the documents of each collection whose documents the
	// scan could not find unchanged, in spools (Docs) that share the
	// context's ReadMemory.Spool bytes of memory and keep the rest in
	// temporary files.
	docs map[string]*Docs
	// same names the collections whose documents have the committed
	// fingerprint: unchanged (to 2^-128, as a clean status), their
	// documents not kept.
	same map[string]bool
}

// Close lets go of the documents kept.
func (s *scanned) Close() {
	if s == nil {
		return
	}
	for _, d := range s.docs {
		d.Close()
	}
}

// scanSums is ScanSums; with keep, it also returns what it read (nil when
// it could not keep it: past the context's ReadMemory.Keep bytes, or when a temporary file
// could not be made or written; then a comparison reads the database
// again). With committed (the fingerprint of the committed state), a
// collection whose documents have their committed fingerprint is named
// in same, and its documents are let go of as soon as it is read.
func scanSums(ctx context.Context, db *mongo.Database, keep bool, committed Sums) (Sums, *scanned, error) {
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, nil, err
	}
	out := Sums{}
	var kept *scanned
	if keep {
		kept = &scanned{docs: map[string]*Docs{}, same: map[string]bool{}}
	}
	lim := readMemoryOf(ctx)
	shared := lim.Spool
	size := 0
	drop := func() {
		kept.Close()
		kept = nil
	}
	fail := func(err error) (Sums, *scanned, error) {
		kept.Close()
		return nil, nil, err
	}
	p := progressFor(ctx, "reading "+db.Name())
	defer p.Done()
	for _, name := range names {
		if name == MarkerCollection {
			continue
		}
		var d *Docs
		if kept != nil {
			d = &Docs{Spill: true, Shared: &shared, Strict: true}
			kept.docs[name] = d
		}
		collBytes := 0
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			return fail(err)
		}
		for cur.Next(ctx) {
			out.toggle(name, cur.Current)
			if d != nil {
				size += len(cur.Current)
				collBytes += len(cur.Current)
				if size > lim.Keep || d.Add(cur.Current) != nil {
					drop()
					d = nil
				}
			}
			if p.N++; p.N%1000 == 0 {
				p.Add(0)
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return fail(err)
		}
		if d != nil && committed != nil && out.get(name) == committed.get(name) {
			d.Close()
			size -= collBytes
			delete(kept.docs, name)
			kept.same[name] = true
		}
		specs, err := listIndexes(ctx, db, name)
		if err != nil {
			return fail(err)
		}
		for _, spec := range specs {
			out.toggleIndex(name, spec)
		}
	}
	return out, kept, nil
}

// stateSums is the fingerprint of a folded state, documents and indexes.
func stateSums(st *wal.State) Sums {
	out := Sums{}
	for _, coll := range st.Collections() {
		for _, d := range st.Docs(coll) {
			out.toggle(coll, d)
		}
		for _, spec := range st.Indexes(coll) {
			out.toggleIndex(coll, spec)
		}
	}
	return out
}

func encodeSum(s sum) string { return hex.EncodeToString(s[:]) }

// indexKey is where a collection's indexes are fingerprinted: collection
// names cannot hold '$', so it never meets a collection's own key (and a
// field name may hold one, past its first character).
func indexKey(coll string) string { return "idx$" + coll }

// indexSpec is the part of an index specification that defines it: the
// server's own fields (version, namespace) left out, the rest in order.
func indexSpec(spec bson.Raw) bson.Raw {
	elems, err := spec.Elements()
	if err != nil {
		return spec
	}
	var d bson.D
	for _, e := range elems {
		switch e.Key() {
		case "v", "ns":
			continue
		}
		d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
	}
	out, err := bson.Marshal(d)
	if err != nil {
		return spec
	}
	return out
}

// toggleIndex XORs an index specification into coll's index fingerprint.
func (s Sums) toggleIndex(coll string, spec bson.Raw) { s.toggle(indexKey(coll), indexSpec(spec)) }

// MarshalBSONValue stores the sums as an array of {c: collection, s: sum}
// documents, not as a document keyed by collection: collection names may
// hold '.', which the embedded engine refuses in field names (and it
// stores no nested arrays). nil is null.
func (s Sums) MarshalBSONValue() (byte, []byte, error) {
	if s == nil {
		return byte(bson.TypeNull), nil, nil
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make(bson.A, len(keys))
	for i, k := range keys {
		pairs[i] = bson.D{{Key: "c", Value: k}, {Key: "s", Value: s[k]}}
	}
	t, data, err := bson.MarshalValue(pairs)
	return byte(t), data, err
}

// UnmarshalBSONValue reads the sums as MarshalBSONValue writes them, or as
// a document keyed by collection (markers written before that).
func (s *Sums) UnmarshalBSONValue(typ byte, data []byte) error {
	v := bson.RawValue{Type: bson.Type(typ), Value: data}
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
		*s = nil
		return nil
	case bson.TypeEmbeddedDocument:
		out := Sums{}
		elems, err := v.Document().Elements()
		if err != nil {
			return err
		}
		for _, e := range elems {
			out[e.Key()] = e.Value().StringValue()
		}
		*s = out
		return nil
	case bson.TypeArray:
		out := Sums{}
		vals, err := v.Array().Values()
		if err != nil {
			return err
		}
		for _, pv := range vals {
			d, ok := pv.DocumentOK()
			if !ok {
				return fmt.Errorf("invalid sums entry %s", pv)
			}
			c, ok1 := d.Lookup("c").StringValueOK()
			sv, ok2 := d.Lookup("s").StringValueOK()
			if !ok1 || !ok2 {
				return fmt.Errorf("invalid sums entry %s", pv)
			}
			out[c] = sv
		}
		*s = out
		return nil
	}
	return fmt.Errorf("invalid sums of BSON type %s", v.Type)
}

package workdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

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
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	out := Sums{}
	p := progressFor(ctx, "reading "+db.Name())
	defer p.done()
	for _, name := range names {
		if name == MarkerCollection {
			continue
		}
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		for cur.Next(ctx) {
			out.toggle(name, cur.Current)
			if p.n++; p.n%1000 == 0 {
				p.add(0)
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, err
		}
		specs, err := listIndexes(ctx, db, name)
		if err != nil {
			return nil, err
		}
		for _, spec := range specs {
			out.toggleIndex(name, spec)
		}
	}
	return out, nil
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

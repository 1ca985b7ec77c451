package workdb

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/wal"
)

// UncommittedError refuses a CLI write that would change documents an
// application changed in the working database and did not commit: the
// write's commit would record their changes as its own (issue 7).
type UncommittedError struct {
	Branch string
	Coll   string
	IDs    []bson.RawValue
	// Index names an index an application created, dropped or redefined
	// (IDs is then empty).
	Index string
	// Indexes says that the indexes of Coll differ from the committed
	// ones, without naming which (refuseIndexChangesIn).
	Indexes bool
}

// refuseIndexChangesIn refuses a write on coll while the indexes of coll
// in the working database are not the committed ones at the write's base
// (their fingerprint against the base's): an application created, dropped
// or redefined one and did not commit, and the write would be evaluated
// on that uncommitted state. review31: an application dropped a committed
// unique index, a CLI insert of a duplicate went through and committed,
// and the committed state, unique index and duplicate together, could
// never be built again. Free while the database is known clean; one
// listIndexes otherwise; nothing when the base's fingerprint is unknown
// (a write right after a repair).
func (w *Branch) refuseIndexChangesIn(ctx context.Context, coll string) error {
	if w.baseSums == nil || w.knownClean() {
		return nil
	}
	specs, err := listIndexes(ctx, w.DB, coll)
	if err != nil {
		return err
	}
	now := Sums{}
	for _, spec := range specs {
		now.toggleIndex(coll, spec)
	}
	if now.get(indexKey(coll)) != w.baseSums.get(indexKey(coll)) {
		return &UncommittedError{Branch: w.Name, Coll: coll, Indexes: true}
	}
	return nil
}

func (e *UncommittedError) Error() string {
	if e.Indexes {
		return fmt.Sprintf("the indexes of %s have uncommitted changes in the working database of branch %s (an application created, dropped or changed one)", e.Coll, e.Branch)
	}
	if e.Index != "" {
		return fmt.Sprintf("index %s of %s has uncommitted changes in the working database of branch %s", e.Index, e.Coll, e.Branch)
	}
	if len(e.IDs) == 1 {
		return fmt.Sprintf("document %s of %s has uncommitted changes in the working database of branch %s", FormatValue(e.IDs[0]), e.Coll, e.Branch)
	}
	var ids []string
	for _, id := range e.IDs[:min(len(e.IDs), 5)] {
		ids = append(ids, FormatValue(id))
	}
	more := ""
	if len(e.IDs) > 5 {
		more = ", ..."
	}
	return fmt.Sprintf("%d documents of %s (_id %s%s) have uncommitted changes in the working database of branch %s", len(e.IDs), e.Coll, strings.Join(ids, ", "), more, e.Branch)
}

// refuseUncommitted checks, for a write holding the branch at its base,
// that docs (as the working database holds them, about to be changed) are
// committed: the newest entry of each at the base is a put of exactly
// these bytes. Otherwise an application changed them and did not commit,
// and the write is refused (UncommittedError) before it changes anything.
//
// On the embedded engine the check is free while the database's files are
// those a full scan found clean (DBFiles): then every document is
// committed. Otherwise it asks the log for the documents' keys
// (LatestAtOrBelow: their entries only, by key, on MongoDB).
func (w *Branch) refuseUncommitted(ctx context.Context, coll string, docs []bson.Raw) error {
	if len(docs) == 0 || w.knownClean() {
		return nil
	}
	keys := make([][]byte, len(docs))
	for i, d := range docs {
		keys[i] = wal.KeyOf(d.Lookup("_id"))
	}
	var committed func(i int) bson.Raw
	if w.Repo.Scans && len(docs) > foldKeys {
		// Many keys on an engine that scans: the collection's committed
		// state, folded once for the write (an import asks per batch).
		byKey, err := w.committedDocs(ctx, coll)
		if err != nil {
			return err
		}
		committed = func(i int) bson.Raw { return byKey[string(keys[i])] }
	} else {
		latest, _, err := w.Repo.LatestAtOrBelow(ctx, w.TL, w.base, coll, keys, false)
		if err != nil {
			return err
		}
		committed = func(i int) bson.Raw {
			if e := latest[string(keys[i])]; e != nil && e.Op == wal.OpPut {
				return e.Doc
			}
			return nil
		}
	}
	var ids []bson.RawValue
	for i, d := range docs {
		if was := committed(i); was == nil || !bytes.Equal(was, d) {
			ids = append(ids, d.Lookup("_id"))
		}
	}
	if len(ids) > 0 {
		sort.SliceStable(ids, func(i, j int) bool { return idLess(ids[i], ids[j]) })
		return &UncommittedError{Branch: w.Name, Coll: coll, IDs: ids}
	}
	return nil
}

// foldKeys is the most keys refuseUncommitted looks up in the log one by
// one on an engine that scans; past it, it folds the collection once per
// write (LatestAtOrBelow would read the history once per call).
const foldKeys = 256

// committedDocs returns coll's committed documents at the write's base,
// by key, folded once per write.
func (w *Branch) committedDocs(ctx context.Context, coll string) (map[string]bson.Raw, error) {
	if m, ok := w.folded[coll]; ok {
		return m, nil
	}
	st, err := w.Repo.Fold(ctx, w.TL, w.base, coll)
	if err != nil {
		return nil, err
	}
	m := map[string]bson.Raw{}
	for _, d := range st.Docs(coll) {
		m[string(wal.KeyOf(d.Lookup("_id")))] = d
	}
	if w.folded == nil {
		w.folded = map[string]map[string]bson.Raw{}
	}
	w.folded[coll] = m
	return m, nil
}

// refuseDeletedIDs refuses an insert of ids when the log holds one of
// them at the base and the working database does not: an application
// deleted that document and did not commit, and the insert would record
// its new document over that delete as a change of the committed one (on
// a clean branch the same insert fails with a duplicate key). Both go by
// value, as the server's unique index does: 2, 2.0 and the 64-bit 2 are
// one _id. It is free while the database is known clean; otherwise it asks
// the log for the keys, and the working database only for those the log
// holds.
func (w *Branch) refuseDeletedIDs(ctx context.Context, c *mongo.Collection, coll string, ids []bson.RawValue) error {
	held, err := w.committedIDs(ctx, coll, ids)
	if err != nil || len(held) == 0 {
		return err
	}
	ask := held
	if w.ScanReads {
		for _, id := range held {
			ask = append(ask, engineEqualIDs(id)...)
		}
	}
	cur, err := c.Find(ctx, idsFilter(ask), options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	there := map[string]bool{}
	for cur.Next(ctx) {
		there[equalityKey(cur.Current.Lookup("_id"))] = true
	}
	if err := cur.Close(ctx); err != nil {
		return err
	}
	var gone []bson.RawValue
	for _, id := range held {
		found := there[equalityKey(id)]
		if w.ScanReads {
			for _, v := range engineEqualIDs(id) {
				found = found || there[equalityKey(v)]
			}
		}
		if !found {
			gone = append(gone, id)
		}
	}
	// Those there fail the write on their duplicate key.
	return w.deletedError(coll, gone)
}

// committedIDs returns those of ids whose value the log holds a document
// of at the write's base (under any _id equal to it: 2, 2.0, the 64-bit
// 2); none while the working database is known clean (every committed
// document is there, and a write of one finds it).
func (w *Branch) committedIDs(ctx context.Context, coll string, ids []bson.RawValue) ([]bson.RawValue, error) {
	if len(ids) == 0 || w.cleanAtStart {
		return nil, nil
	}
	// The keys to look up: each _id's own and, for a number, those of the
	// other numeric types of the same value. An _id no list of keys
	// covers (a document or array holding numbers, a decimal, NaN) is
	// looked up in the collection's committed state, folded by value.
	var keys [][]byte
	owner := map[string]int{} // key -> index in ids
	fold := false
	for i, id := range ids {
		variants, ok := sameValueKeys(id)
		if !ok {
			fold = true
			break
		}
		if w.ScanReads {
			for _, v := range engineEqualIDs(id) {
				variants = append(variants, wal.KeyOf(v))
			}
		}
		for _, k := range variants {
			if _, dup := owner[string(k)]; !dup {
				owner[string(k)] = i
				keys = append(keys, k)
			}
		}
	}
	var held []bson.RawValue
	if fold || (w.Repo.Scans && len(ids) > foldKeys) {
		byKey, err := w.committedDocs(ctx, coll)
		if err != nil {
			return nil, err
		}
		byValue := make(map[string]bool, len(byKey))
		for k := range byKey {
			byValue[equalityKey(wal.KeyValue([]byte(k)))] = true
		}
		for _, id := range ids {
			found := byValue[equalityKey(id)]
			if w.ScanReads {
				for _, v := range engineEqualIDs(id) {
					found = found || byValue[equalityKey(v)]
				}
			}
			if found {
				held = append(held, id)
			}
		}
		return held, nil
	}
	latest, _, err := w.Repo.LatestAtOrBelow(ctx, w.TL, w.base, coll, keys, false)
	if err != nil {
		return nil, err
	}
	found := make([]bool, len(ids))
	for _, k := range keys {
		if e := latest[string(k)]; e != nil && e.Op == wal.OpPut {
			found[owner[string(k)]] = true
		}
	}
	for i, id := range ids {
		if found[i] {
			held = append(held, id)
		}
	}
	return held, nil
}

// sameValueKeys returns the log keys of every _id a unique index takes as
// id: its own, and for an int32, int64 or double, those of the others of
// the same value (0 and -0.0 too). ok is false for an _id that a list
// cannot cover: a document or an array (they may hold numbers), a
// decimal, NaN or an infinity.
func sameValueKeys(id bson.RawValue) (keys [][]byte, ok bool) {
	var f float64
	var n int64
	isInt := false
	switch id.Type {
	case bson.TypeEmbeddedDocument, bson.TypeArray, bson.TypeDecimal128:
		return nil, false
	case bson.TypeInt32:
		n, isInt = int64(id.Int32()), true
	case bson.TypeInt64:
		n, isInt = id.Int64(), true
	case bson.TypeDouble:
		f = id.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			n, isInt = int64(f), true
		}
	default:
		return [][]byte{wal.KeyOf(id)}, true
	}
	add := func(v any) {
		t, b, err := bson.MarshalValue(v)
		if err == nil {
			keys = append(keys, wal.KeyOf(bson.RawValue{Type: t, Value: b}))
		}
	}
	if !isInt {
		return [][]byte{wal.KeyOf(id)}, true // a fraction: doubles only
	}
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		add(int32(n))
	}
	add(n)
	if d := float64(n); int64(d) == n && d < 1<<63 {
		add(d)
		if n == 0 {
			add(math.Copysign(0, -1))
		}
	}
	return keys, true
}

// engineEqualIDs returns the _ids of other types that FerretDB's unique
// _id index takes as id (it compares the _id's JSON text, ARCHITECTURE
// "Facts measured"): an ObjectId and the string of its hex digits, a date
// and the integer of its milliseconds. (Binary data and its base64 string,
// a timestamp and an integer, and some doubles and integers of one text
// are alike there too, and not covered.)
func engineEqualIDs(id bson.RawValue) []bson.RawValue {
	val := func(v any) []bson.RawValue {
		t, b, err := bson.MarshalValue(v)
		if err != nil {
			return nil
		}
		return []bson.RawValue{{Type: t, Value: b}}
	}
	switch id.Type {
	case bson.TypeObjectID:
		return val(id.ObjectID().Hex())
	case bson.TypeString:
		if oid, err := bson.ObjectIDFromHex(id.StringValue()); err == nil && oid.Hex() == id.StringValue() {
			return val(oid)
		}
	case bson.TypeDateTime:
		ms := id.DateTime()
		out := val(ms)
		if ms >= math.MinInt32 && ms <= math.MaxInt32 {
			out = append(out, val(int32(ms))...)
		}
		return out
	case bson.TypeInt64:
		return val(bson.DateTime(id.Int64()))
	case bson.TypeInt32:
		return val(bson.DateTime(int64(id.Int32())))
	}
	return nil
}

// deletedError is the UncommittedError for documents the log holds and an
// application deleted from the working database; nil for none.
func (w *Branch) deletedError(coll string, gone []bson.RawValue) error {
	if len(gone) == 0 {
		return nil
	}
	sort.SliceStable(gone, func(i, j int) bool { return idLess(gone[i], gone[j]) })
	return &UncommittedError{Branch: w.Name, Coll: coll, IDs: gone}
}

// knownClean reports that the working database's files are byte for byte
// those a full scan found equal to the committed state, and remembers it
// for keepClean. It looks once per write, the first time it is asked,
// which each write does before it changes anything: the write's own
// changes later move the files.
func (w *Branch) knownClean() bool {
	if w.cleanChecked || w.Files == nil {
		return w.cleanAtStart
	}
	w.cleanChecked = true
	fp, err := w.Files.Fingerprint(w.DB.Name())
	w.cleanAtStart = err == nil && fp != "" && fp == w.Files.Clean(w.DB.Name())
	return w.cleanAtStart
}

// StartedClean reports whether the write in progress found the database's
// files clean when it began (knownClean).
func (w *Branch) StartedClean() bool { return w.cleanAtStart }

// RepairedClean is called when a write that began on clean files
// (StartedClean) failed and this process repaired every key it touched
// from the log under a new lease: the database holds exactly the
// committed state again, and its files are recorded clean when no one
// else can have written since (DBFiles.KeepClean decides), so that the
// next writes and status need not check it.
func (w *Branch) RepairedClean() {
	if w.Files != nil {
		_ = w.Files.KeepClean(w.DB.Name())
	}
	w.cleanAtStart, w.cleanChecked = false, false
}

// keepClean is called after a write committed: when the database was
// known clean before it, it holds exactly the committed state now, and
// its new files are recorded clean (only by a process that runs the
// engine itself: DBFiles.KeepClean), so that the next write and status
// need not check it again.
func (w *Branch) keepClean() {
	if w.cleanAtStart && w.Files != nil {
		_ = w.Files.KeepClean(w.DB.Name())
	}
	w.cleanAtStart, w.cleanChecked = false, false
}

// idLess orders _ids for messages: numbers by value, before anything else,
// which goes by its printed form.
func idLess(a, b bson.RawValue) bool {
	x, xok := a.AsFloat64OK()
	y, yok := b.AsFloat64OK()
	switch {
	case xok && yok:
		return x < y
	case xok != yok:
		return xok
	}
	return FormatValue(a) < FormatValue(b)
}

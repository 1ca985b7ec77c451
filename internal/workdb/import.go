package workdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/argon-db/argon/internal/wal"
)

// ImportMode says what an import does with a document whose _id the
// collection already holds (the names are mongoimport's).
type ImportMode string

const (
	// ImportInsert refuses it: the import fails, nothing is written.
	ImportInsert ImportMode = "insert"
	// ImportUpsert replaces the whole document.
	ImportUpsert ImportMode = "upsert"
	// ImportMerge sets the imported document's top-level fields in the
	// existing one and keeps the others (as a $set of each field would).
	ImportMerge ImportMode = "merge"
)

// ImportBatch is the next part of an import: documents of one collection,
// or (with Indexes) the index specifications of a collection, created
// once its documents are in.
type ImportBatch struct {
	Coll    string
	Docs    []bson.Raw
	Indexes []bson.Raw
}

// ImportResult reports an import, collection by collection.
type ImportResult struct {
	Inserted map[string]int
	Replaced map[string]int
	// Unchanged counts documents already there byte for byte: not
	// written, not logged.
	Unchanged map[string]int
	Indexes   map[string]int
	Commit    *wal.Commit
	Head      int64
}

// Documents is how many documents the import wrote in all.
func (r *ImportResult) Documents() int {
	n := 0
	for _, v := range r.Inserted {
		n += v
	}
	for _, v := range r.Replaced {
		n += v
	}
	return n
}

// Import writes what next returns (nil at the end) as one commit: all of
// it or none. Memory holds one batch and the _ids seen so far.
//
// Costs, on an engine where only string and ObjectId _id equality is
// indexed: into a collection that was empty when the import started, a
// batch is one insert; where documents may already exist, a batch is one
// read of the batch's _ids and, for those found, one delete, then one
// insert: a few queries per batch of up to batchSize documents, never one
// per document.
func (w *Branch) Import(ctx context.Context, next func() (*ImportBatch, error), mode ImportMode,
	info wal.CommitInfo, progress func(docs int)) (*ImportResult, error) {
	res := &ImportResult{Inserted: map[string]int{}, Replaced: map[string]int{}, Unchanged: map[string]int{}, Indexes: map[string]int{}}
	seen := map[string]map[string]bool{} // collection -> keys written so far
	empty := map[string]bool{}           // collection -> held nothing at the start
	done := 0
	pos := map[string]int{}               // documents of each collection so far, for errors
	wrote := map[string]map[string]bool{} // collection -> keys this import wrote
	// collection -> equalityKey -> the first _id of the input with it
	firstEqual := map[string]map[string]importedID{}
	w.cleanAtStart, w.cleanChecked = false, false
	cm, head, err := w.Protocol.Write(ctx, w, &info, nil, func(ctx context.Context, emit func([]wal.Entry) error) error {
		// Whether the database is known clean, looked at before the
		// import changes it (the checks of each batch rest on it).
		if w.Files != nil && w.Files.Clean(w.DB.Name()) != "" {
			w.knownClean()
		}
		// The keys are known only as they arrive; each batch touches and
		// announces the keys it writes before it writes them.
		for {
			b, err := next()
			if err != nil {
				return err
			}
			if b == nil {
				break
			}
			if _, ok := seen[b.Coll]; !ok {
				if err := w.refuseIndexChangesIn(ctx, b.Coll); err != nil {
					return err
				}
				seen[b.Coll] = map[string]bool{}
				wrote[b.Coll] = map[string]bool{}
				firstEqual[b.Coll] = map[string]importedID{}
				n, err := w.DB.Collection(b.Coll).CountDocuments(ctx, emptyDoc, options.Count().SetLimit(1))
				if err != nil {
					return err
				}
				empty[b.Coll] = n == 0
			}
			if b.Indexes != nil {
				n, err := w.importIndexes(ctx, b.Coll, b.Indexes, emit)
				if err != nil {
					return err
				}
				res.Indexes[b.Coll] += n
				continue
			}
			docs := b.Docs
			if w.ScanReads { // each _id as the engine stores it, as insert does
				for i := range docs {
					if docs[i], err = withStoredID(docs[i]); err != nil {
						return err
					}
				}
			}
			for len(docs) > 0 {
				// A batch stops before an _id it repeats, so that the
				// second one finds the first as its pre-image.
				n := min(len(docs), batchSize)
				inBatch := map[string]bool{}
				for i, d := range docs[:n] {
					id, err := d.LookupErr("_id")
					if err != nil {
						return &DocumentError{Index: pos[b.Coll] + i, Msg: "document has no _id"}
					}
					if id.Type == bson.TypeArray {
						return &DocumentError{Index: pos[b.Coll] + i, Msg: "_id cannot be an array"}
					}
					k := string(wal.KeyOf(id))
					// Two _ids MongoDB takes as one whose bytes differ
					// (0 and 0.0): one document to the server, two to
					// the log's keys. Refused, naming both.
					ek := equalityKey(id)
					if first, ok := firstEqual[b.Coll][ek]; !ok {
						firstEqual[b.Coll][ek] = importedID{key: k, id: id, pos: pos[b.Coll] + i}
					} else if first.key != k {
						return &DocumentError{Index: pos[b.Coll] + i, Msg: sameValueMessage(id, first.pos, first.id)}
					}
					if inBatch[k] {
						n = i
						break
					}
					inBatch[k] = true
				}
				ins, rep, err := w.importBatch(ctx, b.Coll, docs[:n], mode, seen[b.Coll], wrote[b.Coll], empty[b.Coll], pos[b.Coll], emit)
				if err != nil {
					return err
				}
				res.Inserted[b.Coll] += ins
				res.Replaced[b.Coll] += rep
				res.Unchanged[b.Coll] += n - ins - rep
				done += n
				pos[b.Coll] += n
				docs = docs[n:]
				if progress != nil {
					progress(done)
				}
			}
		}
		if info.Message == "" {
			into := fmt.Sprintf("%d collections", len(seen))
			if len(seen) == 1 {
				for c := range seen {
					into = c
				}
			}
			noun := "documents"
			if res.Documents() == 1 {
				noun = "document"
			}
			info.Message = fmt.Sprintf("import %d %s into %s", res.Documents(), noun, into)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.keepClean()
	res.Commit, res.Head = cm, head
	return res, nil
}

// importedID is an _id of an import's input: its key bytes, and the
// position of its document.
type importedID struct {
	key string
	id  bson.RawValue
	pos int
}

// importBatch writes one batch of distinct _ids into coll and emits the
// post-images. first is the input position of batch[0], for errors.
func (w *Branch) importBatch(ctx context.Context, coll string, batch []bson.Raw, mode ImportMode,
	seen, wrote map[string]bool, wasEmpty bool, first int, emit func([]wal.Entry) error) (inserted, replaced int, err error) {
	c := w.DB.Collection(coll)
	ids := make([]bson.RawValue, len(batch))
	keys := make([]string, len(batch))
	lookup := false
	for i, d := range batch {
		ids[i] = d.Lookup("_id")
		keys[i] = string(wal.KeyOf(ids[i]))
		if !wasEmpty || seen[keys[i]] {
			lookup = true
		}
	}
	// Pre-images, in one query for the batch.
	pre := map[string]bson.Raw{}
	if lookup {
		cur, err := c.Find(ctx, idsFilter(ids))
		if err != nil {
			return 0, 0, err
		}
		byValue := map[string]bson.Raw{}
		for cur.Next(ctx) {
			d := bson.Raw(append([]byte(nil), cur.Current...))
			pre[string(wal.KeyOf(d.Lookup("_id")))] = d
			byValue[equalityKey(d.Lookup("_id"))] = d
		}
		if err := cur.Err(); err != nil {
			return 0, 0, err
		}
		_ = cur.Close(ctx)
		// A document whose _id equals a stored one in value but not in
		// bytes (2 and the 64-bit 2) is that document, as the server's
		// unique index says: it keeps the stored _id, as an update by
		// _id would.
		for i, d := range batch {
			if _, ok := pre[keys[i]]; ok {
				continue
			}
			if old, ok := byValue[equalityKey(ids[i])]; ok {
				ids[i] = old.Lookup("_id")
				keys[i] = string(wal.KeyOf(ids[i]))
				if batch[i], err = replaceID(d, ids[i]); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	// The documents to write: new ones and changed ones. A document the
	// collection already holds byte for byte is left alone.
	var post []bson.Raw
	var postIDs []bson.RawValue
	var postKeys []string
	var replace []bson.RawValue
	for i, d := range batch {
		old, exists := pre[keys[i]]
		doc := d
		switch {
		case !exists:
		case mode == ImportInsert && seen[keys[i]]:
			return 0, 0, &DocumentError{Index: first + i, Msg: fmt.Sprintf("duplicate _id %s: an earlier document of the import has it too (use --mode upsert or merge to let the later one win)", FormatValue(ids[i]))}
		case mode == ImportInsert:
			return 0, 0, &DuplicateKeyError{Coll: coll, Msg: fmt.Sprintf("document %d: _id %s already exists in %s (use --mode upsert or merge to change existing documents)", first+i+1, FormatValue(ids[i]), coll)}
		case mode == ImportMerge:
			if doc, err = mergeFields(old, d); err != nil {
				return 0, 0, err
			}
		}
		if exists && bytes.Equal(old, doc) {
			seen[keys[i]] = true
			continue
		}
		if exists {
			replace = append(replace, ids[i])
		}
		post, postIDs, postKeys = append(post, doc), append(postIDs, ids[i]), append(postKeys, keys[i])
	}
	if len(post) == 0 {
		return 0, 0, nil
	}
	// A document this import did not write itself must be committed
	// before it is replaced: an application's uncommitted change is never
	// recorded as the import's (refuseUncommitted).
	var theirs []bson.Raw
	for _, k := range postKeys {
		if d, ok := pre[k]; ok && !wrote[k] {
			theirs = append(theirs, d)
		}
	}
	if err := w.refuseUncommitted(ctx, coll, theirs); err != nil {
		return 0, 0, err
	}
	// A new document over one the log holds: an application deleted
	// that one and did not commit (refuseDeletedIDs).
	var added []bson.RawValue
	for i, k := range postKeys {
		if _, ok := pre[k]; !ok && !wrote[k] {
			added = append(added, postIDs[i])
		}
	}
	if gone, err := w.committedIDs(ctx, coll, added); err != nil {
		return 0, 0, err
	} else if err := w.deletedError(coll, gone); err != nil {
		return 0, 0, err
	}
	// Touched before anything changes: a failure repairs them.
	for i, id := range postIDs {
		w.touch(coll, id)
		wrote[postKeys[i]] = true
	}
	if err := w.announceTouched(ctx); err != nil {
		return 0, 0, err
	}
	if len(replace) > 0 {
		if _, err := w.deleteIDs(ctx, c, replace); err != nil {
			return 0, 0, err
		}
	}
	anys := make([]any, len(post))
	for i := range post {
		anys[i] = post[i]
	}
	if _, err := c.InsertMany(ctx, anys, options.InsertMany().SetOrdered(true)); err != nil {
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
			// The documents it replaced were deleted by this write: they
			// stay touched whatever the error names.
			mine := map[string]bool{}
			for _, id := range replace {
				mine[string(wal.KeyOf(id))] = true
			}
			w.untouchForeign(ctx, c, coll, post, postIDs, bwe, mine)
			we := bwe.WriteErrors[0]
			if we.HasErrorCode(11000) || mongo.IsDuplicateKeyError(err) {
				why := explainDuplicate(ctx, c, post[we.Index])
				if why == "" {
					why = we.Message
				}
				return 0, 0, &DuplicateKeyError{Coll: coll, Msg: why}
			}
			return 0, 0, &DocumentError{Index: first + we.Index, Msg: we.Message}
		}
		return 0, 0, err
	}
	stored, err := w.readBack(ctx, c, postIDs, post)
	if err != nil {
		return 0, 0, err
	}
	entries := make([]wal.Entry, len(stored))
	for i, d := range stored {
		if entries[i], err = wal.PutEntry(coll, d); err != nil {
			return 0, 0, err
		}
		w.changed(coll, pre[postKeys[i]], d)
		seen[postKeys[i]] = true
	}
	return len(post) - len(replace), len(replace), emit(entries)
}

// replaceID returns doc with its _id's value replaced by id, in place.
func replaceID(doc bson.Raw, id bson.RawValue) (bson.Raw, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(doc)+len(id.Value))
	for _, el := range elems {
		if el.Key() == "_id" {
			out = bsoncore.AppendValueElement(out, "_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value})
			continue
		}
		out = append(out, el...)
	}
	return bson.Raw(bsoncore.BuildDocument(nil, out)), nil
}

// mergeFields returns old with each top-level field of add set: fields
// old has keep their place, new ones follow in add's order.
func mergeFields(old, add bson.Raw) (bson.Raw, error) {
	oldElems, err := old.Elements()
	if err != nil {
		return nil, err
	}
	addElems, err := add.Elements()
	if err != nil {
		return nil, err
	}
	set := map[string]bson.RawValue{}
	for _, e := range addElems {
		set[e.Key()] = e.Value()
	}
	var out bson.D
	for _, e := range oldElems {
		v := e.Value()
		if nv, ok := set[e.Key()]; ok {
			v = nv
			delete(set, e.Key())
		}
		out = append(out, bson.E{Key: e.Key(), Value: v})
	}
	for _, e := range addElems {
		if _, ok := set[e.Key()]; ok {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return bson.Marshal(out)
}

// importIndexes creates the given index specifications on coll where it
// has no index of that name, or one with another definition (replaced).
// It returns how many it created.
func (w *Branch) importIndexes(ctx context.Context, coll string, specs []bson.Raw, emit func([]wal.Entry) error) (int, error) {
	have, err := listIndexes(ctx, w.DB, coll)
	if err != nil {
		return 0, err
	}
	created := 0
	for _, spec := range specs {
		name, ok := spec.Lookup("name").StringValueOK()
		if !ok || name == "" {
			return created, fmt.Errorf("an index of %s has no name", coll)
		}
		if name == "_id_" {
			continue
		}
		old := findSpec(have, name)
		if old != nil && string(indexSpec(old)) == string(indexSpec(spec)) {
			continue // nothing changes: not touched
		}
		w.touchIndex(coll, name)
		if err := w.announceTouched(ctx); err != nil {
			return created, err
		}
		if old != nil {
			if err := w.DB.Collection(coll).Indexes().DropOne(ctx, name); err != nil {
				return created, err
			}
			w.changedIndex(coll, old, nil)
		}
		if err := createFromSpec(ctx, w.DB, coll, spec); err != nil {
			if isDuplicate(err) {
				return created, &DuplicateKeyError{Coll: coll, Msg: fmt.Sprintf("the imported documents break unique index %s", name), Indexes: []string{name}}
			}
			return created, fmt.Errorf("create index %s on %s: %w", name, coll, err)
		}
		after, err := listIndexes(ctx, w.DB, coll)
		if err != nil {
			return created, err
		}
		got := findSpec(after, name)
		if got == nil {
			return created, fmt.Errorf("index %q was not created on %s", name, coll)
		}
		w.changedIndex(coll, nil, got)
		e, err := wal.IndexEntry(coll, got)
		if err != nil {
			return created, err
		}
		if err := emit([]wal.Entry{e}); err != nil {
			return created, err
		}
		created++
	}
	return created, nil
}

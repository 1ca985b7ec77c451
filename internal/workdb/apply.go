package workdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/wal"
)

// Put is one key a write sets to a given value: a document (or, with
// Index, an index specification) to put, or, when Doc is nil, to delete.
type Put struct {
	Coll  string
	Index bool
	ID    bson.RawValue
	Doc   bson.Raw
}

// ApplyPuts writes puts as one commit (a merge): documents replaced or
// deleted by _id, indexes created or dropped, and the post-images logged
// as the server holds them. Unique indexes are enforced by the server: a
// violation fails the whole write, which is repaired from the log.
//
// The puts were planned against the branch's head at LSN base; if the
// head is elsewhere once the write holds the branch (another write came
// in between, or a fast-forward moved the branch), nothing is written and
// the error is a wal.MovedOnError: applying the plan would undo that
// write without a conflict.
func (w *Branch) ApplyPuts(ctx context.Context, puts []Put, base int64, info wal.CommitInfo) (*wal.Commit, int64, error) {
	tl := w.TL
	apply := w.putter(puts)
	return w.write(ctx, info, nil, func(ctx context.Context) ([]wal.Entry, error) {
		if w.TL != tl || w.base != base {
			return nil, &wal.MovedOnError{Branch: w.Name}
		}
		// Documents written into a collection whose indexes an
		// application changed would be evaluated on them; its index
		// puts are checked by name (refuseUncommittedIndexes).
		checked := map[string]bool{}
		for _, p := range puts {
			if !p.Index && !checked[p.Coll] {
				checked[p.Coll] = true
				if err := w.refuseIndexChangesIn(ctx, p.Coll); err != nil {
					return nil, err
				}
			}
		}
		return apply(ctx)
	})
}

// MovePuts fast-forwards the branch: puts bring its working database from
// its head, at LSN base, to the state at slot to (the root of a timeline
// forked where the branch moves to), and the branch moves onto that
// timeline (Protocol.Move). Nothing is logged: the history of to holds
// every entry already.
func (w *Branch) MovePuts(ctx context.Context, puts []Put, to *wal.Slot, base int64, action string, info wal.CommitInfo) error {
	apply := w.putter(puts)
	w.cleanAtStart, w.cleanChecked = false, false
	err := w.Protocol.Move(ctx, w, to, base, action, &info, func(ctx context.Context, _ func([]wal.Entry) error) error {
		if w.Files != nil && w.Files.Clean(w.DB.Name()) != "" {
			w.knownClean() // before anything changes, as Branch.write
		}
		_, err := apply(ctx)
		return err
	})
	if err == nil {
		w.keepClean()
	}
	return err
}

// putter returns the function that writes puts to the database and
// returns their entries: index drops first, then documents collection by
// collection, then index creations.
func (w *Branch) putter(puts []Put) func(ctx context.Context) ([]wal.Entry, error) {
	return func(ctx context.Context) ([]wal.Entry, error) {
		var entries []wal.Entry
		// Documents are grouped by collection; every collection's
		// pre-images are read and checked before anything changes.
		var colls []string
		byColl := map[string][]Put{}
		for _, p := range puts {
			if p.Index {
				continue
			}
			if _, ok := byColl[p.Coll]; !ok {
				colls = append(colls, p.Coll)
			}
			byColl[p.Coll] = append(byColl[p.Coll], p)
		}
		pres := make(map[string]map[string]bson.Raw, len(colls))
		for _, coll := range colls {
			pre, err := w.checkedPreImages(ctx, coll, byColl[coll])
			if err != nil {
				return nil, err
			}
			pres[coll] = pre
		}
		if err := w.refuseUncommittedIndexes(ctx, puts); err != nil {
			return nil, err
		}
		// Every key the puts may change is named in the lease before
		// anything changes: a writer killed part way is repaired key by
		// key (review33; the lease starts naming none).
		for _, p := range puts {
			if p.Index {
				w.touchIndex(p.Coll, p.ID.StringValue())
				continue
			}
			w.touch(p.Coll, p.ID)
			// The version it replaces goes by its own _id, which may be
			// another key of an equal value (1.0 for 1).
			if d, ok := pres[p.Coll][string(wal.KeyOf(p.ID))]; ok {
				if id := d.Lookup("_id"); !bytes.Equal(wal.KeyOf(id), wal.KeyOf(p.ID)) {
					w.touch(p.Coll, id)
				}
			}
		}
		if err := w.announceTouched(ctx); err != nil {
			return nil, err
		}
		// Index drops first and creations last, so that documents are
		// checked against the indexes the merged state has. An index
		// redefined under its name goes first too (a unique one that
		// stops being unique would refuse the documents), and is created
		// again last; its entry is the new specification's.
		for _, p := range puts {
			if !p.Index {
				continue
			}
			name := p.ID.StringValue()
			specs, err := listIndexes(ctx, w.DB, p.Coll)
			if err != nil {
				return nil, err
			}
			spec := findSpec(specs, name)
			if spec == nil || p.Doc != nil && bytes.Equal(indexSpec(spec), indexSpec(p.Doc)) {
				continue
			}
			if err := w.DB.Collection(p.Coll).Indexes().DropOne(ctx, name); err != nil {
				return nil, err
			}
			w.changedIndex(p.Coll, spec, nil)
			if p.Doc == nil {
				entries = append(entries, wal.DropIndexEntry(p.Coll, name))
			}
		}
		// Documents, collection by collection: every document the merge
		// changes or deletes is taken out, then the new versions go in,
		// so that a unique key moving from one document to another never
		// collides on the way (the end state is what the indexes judge).
		for _, coll := range colls {
			es, err := w.applyDocs(ctx, coll, byColl[coll], pres[coll])
			if err != nil {
				return nil, err
			}
			entries = append(entries, es...)
		}
		for _, p := range puts {
			if !p.Index || p.Doc == nil {
				continue
			}
			name := p.ID.StringValue()
			specs, err := listIndexes(ctx, w.DB, p.Coll)
			if err != nil {
				return nil, err
			}
			if old := findSpec(specs, name); old != nil {
				if err := w.DB.Collection(p.Coll).Indexes().DropOne(ctx, name); err != nil {
					return nil, err
				}
				w.changedIndex(p.Coll, old, nil)
			}
			if err := createFromSpec(ctx, w.DB, p.Coll, p.Doc); err != nil {
				if isDuplicate(err) {
					return nil, &DuplicateKeyError{Coll: p.Coll, Msg: fmt.Sprintf("the merged documents break unique index %s", name), Indexes: []string{name}}
				}
				return nil, err
			}
			after, err := listIndexes(ctx, w.DB, p.Coll)
			if err != nil {
				return nil, err
			}
			spec := findSpec(after, name)
			if spec == nil {
				return nil, fmt.Errorf("index %q was not created", name)
			}
			w.changedIndex(p.Coll, nil, spec)
			e, err := wal.IndexEntry(p.Coll, spec)
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		}
		return entries, nil
	}
}

// sortDeletesFirst orders puts with the deletes first: a delete of one
// spelling of an _id (2) and a put of another (2.0) are one document to
// the server, whose $in matches by value. In different batches, the put's
// batch read and deleted the stored 2 without logging its delete, and the
// delete's batch then deleted the new 2.0 (found by review, on the path
// MongoDB takes).
func sortDeletesFirst(puts []Put) []Put {
	puts = slices.Clone(puts)
	slices.SortStableFunc(puts, func(a, b Put) int {
		switch {
		case a.Doc == nil && b.Doc != nil:
			return -1
		case a.Doc != nil && b.Doc == nil:
			return 1
		}
		return 0
	})
	return puts
}

// checkedPreImages reads the documents of coll that puts replace or
// delete (preImages) and checks, changing nothing, that each is as the log
// holds it at the write's base, that no committed one is missing, and
// that no other document shares a put's _id by value (an application
// that deleted 2 and inserted 2.0): the puts were planned from the
// committed head, and an application's write since the command looked
// (before it held the branch) would be overwritten, or its delete lost,
// without a trace. It returns the pre-images by key.
func (w *Branch) checkedPreImages(ctx context.Context, coll string, puts []Put) (map[string]bson.Raw, error) {
	c := w.DB.Collection(coll)
	pre, others, err := w.preImages(ctx, c, puts)
	if err != nil {
		return nil, err
	}
	var docs []bson.Raw
	var missing []bson.RawValue
	for _, p := range puts {
		if d, ok := pre[string(wal.KeyOf(p.ID))]; ok {
			docs = append(docs, d)
		} else {
			missing = append(missing, p.ID)
		}
	}
	// A document under another spelling of a put's _id is never the
	// log's (a committed state holds one document per value): it is
	// refused as uncommitted.
	if err := w.refuseUncommitted(ctx, coll, append(docs, others...)); err != nil {
		return nil, err
	}
	if err := w.refuseDeletedIDs(ctx, c, coll, missing); err != nil {
		return nil, err
	}
	return pre, nil
}

// applyDocs writes the document puts of one collection, whose pre-images
// checkedPreImages read: every one of them deleted before the first new
// version goes in (a unique key moving from one document to another, in
// any two batches, never collides on the way: the end state is what the
// indexes judge), then one insert per batch, and the post-images as the
// server holds them.
func (w *Branch) applyDocs(ctx context.Context, coll string, puts []Put, pre map[string]bson.Raw) ([]wal.Entry, error) {
	c := w.DB.Collection(coll)
	var entries []wal.Entry
	puts = sortDeletesFirst(puts)
	ids := make([]bson.RawValue, len(puts))
	var old []bson.RawValue
	for i, p := range puts {
		ids[i] = p.ID
		if d, ok := pre[string(wal.KeyOf(p.ID))]; ok {
			old = append(old, d.Lookup("_id"))
		}
	}
	// Every old version out (their keys were touched and announced
	// before anything changed: putter).
	if len(old) > 0 {
		n, err := w.deleteIDs(ctx, c, old)
		if err != nil {
			return nil, err
		}
		if int(n) != len(old) {
			return nil, changedDuring(coll)
		}
	}
	for start := 0; start < len(puts); start += batchSize {
		batch := puts[start:min(start+batchSize, len(puts))]
		var docs []bson.Raw
		var docIDs []bson.RawValue
		for _, p := range batch {
			if p.Doc == nil {
				continue
			}
			doc, err := WithID(p.Doc)
			if err != nil {
				return nil, err
			}
			docs, docIDs = append(docs, doc), append(docIDs, p.ID)
		}
		if len(docs) > 0 {
			anys := make([]any, len(docs))
			for i := range docs {
				anys[i] = docs[i]
			}
			if _, err := c.InsertMany(ctx, anys, options.InsertMany().SetOrdered(true)); err != nil {
				var bwe mongo.BulkWriteException
				if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && isDuplicate(err) {
					return nil, duplicateOnChange(ctx, c, coll, docIDs[bwe.WriteErrors[0].Index], err)
				}
				return nil, err
			}
		}
		post, err := w.readBack(ctx, c, docIDs, docs)
		if err != nil {
			return nil, err
		}
		posts := map[string]bson.Raw{}
		for i, d := range post {
			if d == nil {
				return nil, fmt.Errorf("document with _id %s vanished from the working database during the write", FormatValue(docIDs[i]))
			}
			posts[string(wal.KeyOf(docIDs[i]))] = d
		}
		for _, p := range batch {
			k := string(wal.KeyOf(p.ID))
			before := pre[k]
			if p.Doc == nil {
				if before != nil {
					w.changed(coll, before, nil)
					entries = append(entries, wal.DelEntry(coll, p.ID))
				}
				continue
			}
			w.changed(coll, before, posts[k])
			e, err := wal.PutEntry(coll, posts[k])
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		}
	}
	return entries, nil
}

// preImages reads the documents that puts replace or delete: on FerretDB
// past scratchBatch puts with one scan of the collection (a $in of k ids
// costs a scan with k comparisons per document there: bulk.go), up to it
// by _id one at a time when every _id is a string or an ObjectId, else
// with one $in per batch. It returns them by key, and apart (others) those
// whose _id equals a put's by value under another spelling (the server's
// $in and unique index match by value). It changes nothing.
func (w *Branch) preImages(ctx context.Context, c *mongo.Collection, puts []Put) (pre map[string]bson.Raw, others []bson.Raw, err error) {
	want := make(map[string]bool, len(puts))
	byValue := make(map[string]bool, len(puts))
	for _, p := range puts {
		want[string(wal.KeyOf(p.ID))] = true
		byValue[equalityKey(p.ID)] = true
	}
	pre = map[string]bson.Raw{}
	seen := map[string]bool{}
	read := func(filter any) error {
		cur, err := c.Find(ctx, filter)
		if err != nil {
			return err
		}
		for cur.Next(ctx) {
			id := cur.Current.Lookup("_id")
			k := string(wal.KeyOf(id))
			switch {
			case want[k]:
				pre[k] = append(bson.Raw(nil), cur.Current...)
			case byValue[equalityKey(id)] && !seen[k]:
				seen[k] = true
				others = append(others, append(bson.Raw(nil), cur.Current...))
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		return err
	}
	if w.ScanReads && len(puts) > scratchBatch {
		return pre, others, read(emptyDoc)
	}
	if w.ScanReads && pointable(puts) {
		// There, a filter that is exactly {_id: string or ObjectId} is the
		// one lookup that uses an index: a few point reads beat a scan
		// (and no other spelling of such an _id exists).
		for _, p := range puts {
			raw, err := c.FindOne(ctx, bson.D{{Key: "_id", Value: p.ID}}).Raw()
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			pre[string(wal.KeyOf(p.ID))] = append(bson.Raw(nil), raw...)
		}
		return pre, others, nil
	}
	for start := 0; start < len(puts); start += batchSize {
		batch := puts[start:min(start+batchSize, len(puts))]
		ids := make([]bson.RawValue, len(batch))
		for i, p := range batch {
			ids[i] = p.ID
		}
		if err := read(idsFilter(ids)); err != nil {
			return nil, nil, err
		}
	}
	return pre, others, nil
}

// pointable reports whether every put's _id is a string or an ObjectId.
func pointable(puts []Put) bool {
	ids := make([]bson.RawValue, len(puts))
	for i, p := range puts {
		ids[i] = p.ID
	}
	return pointableIDs(ids)
}

// refuseUncommittedIndexes checks, changing nothing, that every index the
// puts create, redefine or drop is in the working database as the log
// holds it at the write's base: an index an application created, dropped
// or redefined since the command looked would be replaced without a trace
// (found by review). Free while the database is known clean.
func (w *Branch) refuseUncommittedIndexes(ctx context.Context, puts []Put) error {
	if w.knownClean() {
		return nil
	}
	have := map[string][]bson.Raw{}
	for _, p := range puts {
		if !p.Index {
			continue
		}
		specs, ok := have[p.Coll]
		if !ok {
			var err error
			if specs, err = listIndexes(ctx, w.DB, p.Coll); err != nil {
				return err
			}
			have[p.Coll] = specs
		}
		name := p.ID.StringValue()
		raw, _ := bson.Marshal(bson.D{{Key: "n", Value: name}})
		key := wal.KeyOf(bson.Raw(raw).Lookup("n"))
		got, _, err := w.Repo.LatestAtOrBelow(ctx, w.TL, w.base, p.Coll, [][]byte{key}, true)
		if err != nil {
			return err
		}
		var committed bson.Raw
		if e := got[string(key)]; e != nil && e.Op == wal.OpIndex {
			committed = e.Doc
		}
		cur := findSpec(specs, name)
		if (cur == nil) != (committed == nil) || cur != nil && !bytes.Equal(indexSpec(cur), indexSpec(committed)) {
			return &UncommittedError{Branch: w.Name, Coll: p.Coll, Index: name}
		}
	}
	return nil
}

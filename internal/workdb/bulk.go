package workdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
)

// Changes of many documents on FerretDB.
//
// Measured on the embedded engine (FerretDB v1.24.2 over SQLite), on a
// collection of n documents:
//
//   - every document a server-side update changes is written by a SQL
//     UPDATE whose WHERE clause does not match the expression of the
//     engine's _id index, so each one scans the table: an updateMany of k
//     documents costs k scans (2,000 documents: 16 s; 1,000: 4.5 s; 500:
//     1.1 s), unless argon has given the table its own index on that
//     expression (store.IndexIDs; then 0.5-1 ms a document, most of it
//     SQLite syncing its log once per document);
//   - a filter {_id: {$in: ids}} is evaluated document by document, each
//     against the whole list: on 50,000 documents a find or delete by
//     1,000 ids takes 5 s, by 10,000 ids 25-28 s, while a plain filter
//     scan takes 1.6 s.
//
// So argon drives the engine so that neither cost grows with the square
// of the data: the update operators are evaluated by the engine in a
// scratch database holding scratchBatch documents at a time (the quadratic
// part stays at scratchBatch), and the results are written back to the
// working database by one delete and ordered inserts: by _id when few
// documents changed, otherwise by the user's own filter, which selects
// exactly the documents already matched (the count is checked). On the
// embedded engine the scratch database is in an engine of the process's
// own whose files are never synced (store.Scratch): the evaluation then
// costs about half the engine's own updateMany, and the write-back, a
// few transactions, little (BenchmarkUpdateMany: 0.77-0.85 of the
// engine's updateMany, where running that updateMany itself cost
// 1.18-1.6).

// scratchBatch is how many documents one evaluation in the scratch
// database holds: small enough that the engine's per-document scan of the
// scratch collection costs less than the round trip.
const scratchBatch = 100

// maxDelete is the most documents one delete removes on FerretDB: the
// embedded engine deletes them with one SQL statement with a variable per
// document, and SQLite refuses more than 32,766 ("too many SQL
// variables"; measured with a delete of 40,000 documents).
var maxDelete = 20000

// fewIDs is the largest id list argon deletes by $in on FerretDB; above
// it, the user's filter (evaluated once per document) is cheaper.
var fewIDs = 200

// scratchPrefix starts the names of scratch databases of this repo.
func scratchPrefix(r *wal.Repo) string {
	return r.DatabasePrefix() + "-scratch-"
}

// evaluateUpdate returns what update makes of each of the documents pre
// (which the filter matched in the working database), in the same order,
// as the engine computes it: the engine applies the update to copies of
// them in a scratch database, scratchBatch at a time. The scratch database
// is dropped before it returns; one left by a crash is dropped by gc.
func (w *Branch) evaluateUpdate(ctx context.Context, filter, update bson.Raw, pre []bson.Raw) ([]bson.Raw, error) {
	if filter == nil {
		filter = emptyDoc
	}
	sc, drop, err := w.scratchCollection(ctx)
	if err != nil {
		return nil, err
	}
	defer drop()
	post := make([]bson.Raw, len(pre))
	p := progressFor(ctx, "updating")
	defer p.Done()
	for start := 0; start < len(pre); start += scratchBatch {
		batch := pre[start:min(start+scratchBatch, len(pre))]
		pos := make(map[string]int, len(batch))
		docs := make([]any, len(batch))
		for i, d := range batch {
			pos[string(wal.KeyOf(d.Lookup("_id")))] = start + i
			docs[i] = d
		}
		if _, err := sc.InsertMany(ctx, docs); err != nil {
			return nil, err
		}
		r, err := sc.UpdateMany(ctx, filter, update)
		if err != nil {
			return nil, err
		}
		if int(r.MatchedCount) != len(batch) {
			return nil, fmt.Errorf("the filter matched %d of %d documents it had matched in the working database; nothing was changed", r.MatchedCount, len(batch))
		}
		cur, err := sc.Find(ctx, emptyDoc)
		if err != nil {
			return nil, err
		}
		for cur.Next(ctx) {
			if i, ok := pos[string(wal.KeyOf(cur.Current.Lookup("_id")))]; ok {
				post[i] = append(bson.Raw(nil), cur.Current...)
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := sc.DeleteMany(ctx, emptyDoc); err != nil {
			return nil, err
		}
		p.Add(len(batch))
	}
	for i, d := range post {
		if d == nil {
			return nil, fmt.Errorf("the update changed the _id of the document with _id %s", FormatValue(pre[i].Lookup("_id")))
		}
	}
	return post, nil
}

// scratchCollection returns the empty collection evaluateUpdate works in,
// and what drops it: in the scratch engine when there is one, else in a
// scratch database of the working database's deployment, with an owner
// record so that gc drops one a crash left.
func (w *Branch) scratchCollection(ctx context.Context) (*mongo.Collection, func(), error) {
	if w.Scratch != nil {
		c, drop, err := w.Scratch.Collection(ctx)
		if !errors.Is(err, store.ErrNoScratch) {
			return c, drop, err
		}
		// Where the scratch engine cannot run, in the deployment.
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := w.DB.Client().Database(scratchPrefix(w.Repo) + hex.EncodeToString(b[:]))
	drop := func() { _ = db.Drop(context.WithoutCancel(ctx)) }
	if _, err := w.Repo.ClaimOwner(ctx, db.Name(), w.Project); err != nil {
		drop()
		return nil, nil, err
	}
	return db.Collection("c"), drop, nil
}

// rewrite replaces, in collection coll, the documents pre (all of those
// filter matches) with post (nil where a document is to be deleted),
// writing only what changed: a delete by _id and inserts when few
// documents change, else a delete by filter (one per maxDelete documents,
// each narrowed to a range of _ids) and inserts of every matched
// document. Each delete must remove exactly the documents expected: when
// the working database changed meanwhile, the write fails and is
// repaired.
func (w *Branch) rewrite(ctx context.Context, c *mongo.Collection, coll string, filter bson.Raw, many bool, pre, post []bson.Raw) error {
	var changed []int
	for i := range pre {
		if post[i] == nil || !bytes.Equal(pre[i], post[i]) {
			changed = append(changed, i)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	idsOf := func(idx []int) []bson.RawValue {
		ids := make([]bson.RawValue, len(idx))
		for j, i := range idx {
			ids[j] = pre[i].Lookup("_id")
		}
		return ids
	}
	all := make([]int, len(pre))
	for i := range all {
		all[i] = i
	}
	var dels []deletion
	write := changed
	switch {
	case len(changed) <= fewIDs || !many:
		// (Without many, pre is one document, not all the filter matches.)
		dels = byIDs(idsOf(changed))
	case w.ScanReads && pointableIDs(idsOf(changed)):
		// Deletes by string or ObjectId _ids are indexed lookups there
		// (deleteIDs), where a delete by the filter reads the whole
		// collection again: 3.2 s of a 7.2 s update of 1,112 documents
		// among 100,000.
		dels = byIDs(idsOf(changed))
	case len(pre) <= maxDelete:
		if filter == nil {
			filter = emptyDoc
		}
		dels, write = []deletion{{filter: filter, n: len(pre)}}, all
	default:
		if ranges, ok := idRanges(idsOf(all), maxDelete); ok {
			if filter == nil {
				filter = emptyDoc
			}
			for _, r := range ranges {
				f := bson.D{{Key: "$and", Value: bson.A{filter, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: r.lo}, {Key: "$lte", Value: r.hi}}}}}}}
				dels = append(dels, deletion{filter: f, n: r.n})
			}
			write = all
		} else {
			dels = byIDs(idsOf(changed))
		}
	}
	for _, d := range dels {
		var n int64
		if d.ids != nil {
			var err error
			if n, err = w.deleteIDs(ctx, c, d.ids); err != nil {
				return err
			}
		} else {
			r, err := c.DeleteMany(ctx, d.filter)
			if err != nil {
				return err
			}
			n = r.DeletedCount
		}
		if int(n) != d.n {
			return changedDuring(coll)
		}
	}
	var docs []any
	var ids []bson.RawValue
	flush := func() error {
		if len(docs) == 0 {
			return nil
		}
		if _, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true)); err != nil {
			var bwe mongo.BulkWriteException
			if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && isDuplicate(err) {
				return duplicateOnChange(ctx, c, coll, ids[bwe.WriteErrors[0].Index], err)
			}
			return err
		}
		docs, ids = docs[:0], ids[:0]
		return nil
	}
	for _, i := range write {
		d := post[i]
		if d == nil {
			continue
		}
		docs, ids = append(docs, d), append(ids, d.Lookup("_id"))
		if len(docs) == batchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// changedDuring reports that collection coll of the working database
// changed while a write read and rewrote it: another client wrote to it.
func changedDuring(coll string) error {
	return fmt.Errorf("collection %s changed during the write: another client wrote to the working database; nothing was committed, run the command again", coll)
}

// sameDocs reports whether a and b hold the same documents, byte for
// byte, in any order.
func sameDocs(a, b []bson.Raw) bool {
	if len(a) != len(b) {
		return false
	}
	byKey := make(map[string]bson.Raw, len(a))
	for _, d := range a {
		byKey[string(wal.KeyOf(d.Lookup("_id")))] = d
	}
	for _, d := range b {
		if !bytes.Equal(byKey[string(wal.KeyOf(d.Lookup("_id")))], d) {
			return false
		}
	}
	return true
}

// pointableIDs reports whether every id is a string or an ObjectId.
func pointableIDs(ids []bson.RawValue) bool {
	for _, id := range ids {
		if id.Type != bson.TypeString && id.Type != bson.TypeObjectID {
			return false
		}
	}
	return true
}

// deletion is one delete, by filter or by _ids (Branch.deleteIDs), and
// the number of documents it must remove.
type deletion struct {
	filter any
	ids    []bson.RawValue
	n      int
}

// byIDs deletes ids (see Branch.deleteIDs).
func byIDs(ids []bson.RawValue) []deletion {
	return []deletion{{ids: ids, n: len(ids)}}
}

// idRange is a closed range of _id values of one type, holding n of the
// ids it was made from.
type idRange struct {
	lo, hi bson.RawValue
	n      int
}

// idRanges splits ids into closed ranges of at most max ids each, so that
// a filter that matched exactly ids, combined with {_id: {$gte: lo, $lte:
// hi}}, matches exactly the ids of one range. A MongoDB range comparison
// only matches values of the bound's type class, so each range holds one
// class; ok is false when an id's type is not one argon orders exactly as
// the engine does (strings by bytes, ObjectIds, 32- and 64-bit integers).
func idRanges(ids []bson.RawValue, max int) (ranges []idRange, ok bool) {
	var strs, oids, ints []bson.RawValue
	for _, id := range ids {
		switch id.Type {
		case bson.TypeString:
			strs = append(strs, id)
		case bson.TypeObjectID:
			oids = append(oids, id)
		case bson.TypeInt32, bson.TypeInt64:
			ints = append(ints, id)
		default:
			return nil, false
		}
	}
	split := func(vals []bson.RawValue, less func(a, b bson.RawValue) bool) {
		sort.Slice(vals, func(i, j int) bool { return less(vals[i], vals[j]) })
		for start := 0; start < len(vals); start += max {
			end := min(start+max, len(vals))
			ranges = append(ranges, idRange{lo: vals[start], hi: vals[end-1], n: end - start})
		}
	}
	split(strs, func(a, b bson.RawValue) bool { return a.StringValue() < b.StringValue() })
	split(oids, func(a, b bson.RawValue) bool {
		x, y := a.ObjectID(), b.ObjectID()
		return bytes.Compare(x[:], y[:]) < 0
	})
	split(ints, func(a, b bson.RawValue) bool { return a.AsInt64() < b.AsInt64() })
	return ranges, true
}

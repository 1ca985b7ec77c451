package workdb

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/wal"
)

// ModifyResult reports an update, replace or delete.
type ModifyResult struct {
	Matched  int
	Modified int
	Deleted  int
	// Upserted is the _id of a document an upsert inserted.
	Upserted *bson.RawValue
	// Commit is nil when nothing changed: no commit is made.
	Commit *wal.Commit
	Head   int64
}

// Modification is one server-side change to documents: argon picks the
// documents the filter matches (the server evaluates it), then applies the
// change to exactly those, by _id.
type Modification struct {
	Filter bson.Raw
	// Update is an update document ($set, $inc, ...), or Replacement a
	// whole document; neither for a delete.
	Update      bson.Raw
	Replacement bson.Raw
	Delete      bool
	Many        bool
	Upsert      bool
}

// Modify runs m on coll as one commit. Pre-images are captured first so
// that a failure before the commit restores them; post-images are read
// back from the server and logged; documents the change left byte for byte
// as they were are not logged, and a change that changes nothing makes no
// commit.
func (w *Branch) Modify(ctx context.Context, coll string, m Modification, lim Limits, info wal.CommitInfo) (*ModifyResult, error) {
	res := &ModifyResult{}
	w.cleanAtStart, w.cleanChecked = false, false
	var pre []bson.Raw
	intent := idIntent(coll, m.Filter)
	cm, head, err := w.write(ctx, info, intent, func(ctx context.Context) ([]wal.Entry, error) {
		// The collection is looked up once the write holds the branch:
		// taking the branch may have given it another database (rebind).
		c := w.DB.Collection(coll)
		// Looked at before anything changes, even when nothing matches:
		// a write that started clean keeps the database so (keepClean),
		// and one that matched nothing still moves its marker.
		if w.Files != nil && w.Files.Clean(w.DB.Name()) != "" {
			w.knownClean()
		}
		if err := w.refuseIndexChangesIn(ctx, coll); err != nil {
			return nil, err
		}
		var err error
		pre, err = matching(ctx, c, m.Filter, m.Many)
		if err != nil {
			return nil, err
		}
		// Before anything is touched: a refusal changes nothing.
		if err := refuseIDChange(m, pre); err != nil {
			return nil, err
		}
		if err := w.refuseUncommitted(ctx, coll, pre); err != nil {
			return nil, err
		}
		res.Matched = len(pre)
		mark := len(w.touched)
		ids := make([]bson.RawValue, len(pre))
		for i, d := range pre {
			ids[i] = d.Lookup("_id")
			if intent != nil && !bytes.Equal(wal.KeyOf(ids[i]), intent[0].Key) {
				// The filter's 1 matched an _id of 1.0 or 1L: another
				// key than the one announced (touched below, and
				// announced before anything changes).
				intent = nil
			}
			w.touch(coll, ids[i])
		}
		if err := w.announceTouched(ctx); err != nil {
			return nil, err
		}
		byID := idsFilter(ids)
		switch {
		case m.Delete && w.ScanReads:
			if err := w.rewrite(ctx, c, coll, m.Filter, m.Many, pre, make([]bson.Raw, len(pre))); err != nil {
				return nil, err
			}
			res.Deleted = len(ids)
			entries := make([]wal.Entry, len(ids))
			for i, id := range ids {
				entries[i] = wal.DelEntry(coll, id)
				w.changed(coll, pre[i], nil)
			}
			return entries, nil
		case m.Delete:
			if len(ids) > 0 {
				r, err := c.DeleteMany(ctx, byID)
				if err != nil {
					return nil, err
				}
				res.Deleted = int(r.DeletedCount)
			}
			entries := make([]wal.Entry, len(ids))
			for i, id := range ids {
				entries[i] = wal.DelEntry(coll, id)
				w.changed(coll, pre[i], nil)
			}
			return entries, nil
		case len(ids) == 0 && m.Upsert:
			// The new document's _id, chosen here where the filter and
			// the change allow, is touched before anything changes: a
			// failure repairs that one key. Otherwise the server makes
			// the document in an empty scratch collection first, and it
			// goes into the working database by its _id (a widened write
			// killed part way made the next one rebuild the database,
			// losing applications' uncommitted changes).
			update, replacement, id, known, err := upsertID(m, intent != nil)
			if err != nil {
				return nil, err
			}
			if !known {
				return w.upsertByScratch(ctx, c, coll, m.Filter, update, replacement, res)
			}
			if w.ScanReads {
				// As the engine stores it: an _id the update sets to
				// -0.0 is stored 0.0, another key, and a writer killed
				// after the upsert left it unrepaired (review34).
				id = storedValue(id)
			}
			// Not over a document an application deleted and did not
			// commit (refuseDeletedIDs): the filter's _id, and the new
			// document's when known.
			var check []bson.RawValue
			if intent != nil {
				check = append(check, m.Filter.Lookup("_id"))
			}
			if intent == nil || !bytes.Equal(wal.KeyOf(id), intent[0].Key) {
				check = append(check, id)
			}
			if err := w.refuseDeletedIDs(ctx, c, coll, check); err != nil {
				return nil, err
			}
			w.touch(coll, id)
			if err := w.announceTouched(ctx); err != nil {
				return nil, err
			}
			var r *mongo.UpdateResult
			if replacement != nil {
				r, err = c.ReplaceOne(ctx, m.Filter, replacement, options.Replace().SetUpsert(true))
			} else {
				r, err = c.UpdateOne(ctx, m.Filter, update, options.UpdateOne().SetUpsert(true))
			}
			if err != nil {
				return nil, err
			}
			if r.UpsertedID == nil {
				return nil, nil
			}
			// Touched again as the server reports it (the same key when
			// it was known): the repair of a failed write must include it.
			raw, err := bson.Marshal(bson.D{{Key: "_id", Value: r.UpsertedID}})
			if err != nil {
				return nil, err
			}
			id = bson.Raw(raw).Lookup("_id")
			w.touch(coll, id)
			return w.upserted(ctx, c, coll, id, res)
		case len(ids) == 0:
			return nil, nil
		case m.Replacement != nil:
			if _, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: ids[0]}}, m.Replacement); err != nil {
				if isDuplicate(err) {
					return nil, duplicateOnChange(ctx, c, coll, ids[0], err)
				}
				return nil, err
			}
		case w.ScanReads && len(ids) > 1:
			// FerretDB writes each updated document with a scan of the
			// collection unless argon has indexed it, and syncs each one
			// on the embedded engine: see bulk.go.
			// Nothing is written to the working database until the
			// write-back, so until then a failure has nothing to repair
			// (and must not undo an application's change to these
			// documents).
			w.touched = w.touched[:mark]
			posts, err := w.evaluateUpdate(ctx, m.Filter, m.Update, pre)
			if err != nil {
				return nil, err
			}
			for i, post := range posts {
				if err := CheckDocument(post, Limits{}); err != nil {
					return nil, &DocumentError{Index: -1, Msg: fmt.Sprintf("after the change, the document with _id %s: %s", FormatValue(ids[i]), err)}
				}
			}
			// The evaluation took time: an application may have written
			// to the working database meanwhile (not when this process
			// runs the engine itself: no one else can). Nothing is
			// written back unless the filter still matches exactly the
			// documents read.
			if !w.Repo.Exclusive {
				now, err := matching(ctx, c, m.Filter, true)
				if err != nil {
					return nil, err
				}
				if !sameDocs(pre, now) {
					return nil, changedDuring(coll)
				}
			}
			// A unique index the results break is refused before anything
			// is written (the scratch collection has none of the working
			// collection's indexes): a write-back failing part way is
			// repaired, which until review31 rebuilt the collection past
			// 5,000 keys, dropping an application's uncommitted changes
			// there (found by an adversarial review); it is still the
			// cheaper failure.
			if err := w.refuseUniqueBreak(ctx, coll, ids, pre, posts); err != nil {
				return nil, err
			}
			for _, id := range ids {
				w.touch(coll, id)
			}
			if err := w.rewrite(ctx, c, coll, m.Filter, m.Many, pre, posts); err != nil {
				return nil, err
			}
			return w.modified(coll, pre, posts, res)
		default:
			if _, err := c.UpdateMany(ctx, updateFilter(m.Filter, m.Update, byID), m.Update); err != nil {
				if isDuplicate(err) {
					return nil, w.duplicateOnMany(ctx, c, coll, ids, m.Filter, m.Update, err)
				}
				return nil, err
			}
		}
		posts, err := readMany(ctx, c, ids)
		if err != nil {
			return nil, err
		}
		return w.checkedChanges(coll, ids, pre, posts, res)
	})
	if err != nil {
		return nil, err
	}
	w.keepClean()
	res.Commit, res.Head = cm, head
	return res, nil
}

// updateFilter is the filter an update of the documents byID matches
// (those the user's filter matched) is sent with: byID, or, when the
// update has a positional $ ({"arr.$": v}), the user's filter and byID
// together, since MongoDB finds the element $ stands for from the
// array's condition in the query, and refuses the update without it
// ("The positional operator did not find the match needed from the
// query": review40). Not byID alone always: on FerretDB {_id: id} for a
// string or ObjectId is an indexed lookup, and the pair is a scan.
func updateFilter(filter, update bson.Raw, byID bson.D) any {
	if filter == nil || !positional(update) {
		return byID
	}
	return bson.D{{Key: "$and", Value: bson.A{filter, byID}}}
}

// positional reports whether update (operators and their fields) names
// a field path with a positional $ element ("a.$", "a.$.b"); "$[]" and
// "$[id]" are other operators, which need no query.
func positional(update bson.Raw) bool {
	ops, err := update.Elements()
	if err != nil {
		return false
	}
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !ok {
			continue
		}
		elems, err := fields.Elements()
		if err != nil {
			continue
		}
		for _, f := range elems {
			if slices.Contains(strings.Split(f.Key(), "."), "$") {
				return true
			}
		}
	}
	return false
}

// idIntent is the key a change announces before it starts, when its
// filter names one document by _id equality ({_id: value}, the value
// neither an operator document nor a regular expression); nil otherwise:
// the keys are known only once the filter ran. Announced keys let the
// protocol repair just that document, not rebuild the whole working
// database, when the writer dies half way (commit.Protocol.acquire).
func idIntent(coll string, filter bson.Raw) []wal.KeyRef {
	elems, err := filter.Elements()
	if err != nil || len(elems) != 1 || elems[0].Key() != "_id" {
		return nil
	}
	v := elems[0].Value()
	switch v.Type {
	case bson.TypeRegex, bson.TypeArray, bson.TypeEmbeddedDocument:
		// A pattern; an array _id cannot exist; {$eq: ...} or
		// {$in: ...} or a document _id: not worth telling apart.
		return nil
	}
	return []wal.KeyRef{{Coll: coll, Key: wal.KeyOf(v)}}
}

// upsertID returns the change an upsert sends and the _id of the document
// it inserts when nothing matches, where that is known before it is sent
// (known): the filter's, when it is {_id: value} (byID) and the change
// does not name _id (a replacement may repeat it, byte for byte); a
// replacement's own; or one chosen here, an ObjectId as the server would,
// given to a replacement without one or set by $setOnInsert. It is not
// known for a pipeline update, or when the filter or the update name _id
// otherwise (found by review: {_id: 5} with $set of _id 5.0 inserts 5.0).
func upsertID(m Modification, byID bool) (update, replacement bson.Raw, id bson.RawValue, known bool, err error) {
	update, replacement = m.Update, m.Replacement
	fid, eq := filterEqualityID(m.Filter)
	if byID {
		fid, eq = m.Filter.Lookup("_id"), true
	}
	switch {
	case eq && replacement != nil:
		if rid, err := replacement.LookupErr("_id"); err == nil && !bytes.Equal(wal.KeyOf(rid), wal.KeyOf(fid)) {
			return update, replacement, bson.RawValue{}, false, nil
		}
		return update, replacement, fid, true, nil
	case eq:
		if updateNamesID(update) {
			return update, replacement, bson.RawValue{}, false, nil
		}
		return update, replacement, fid, true, nil
	case namesID(m.Filter):
		return update, replacement, bson.RawValue{}, false, nil
	case replacement != nil:
		if replacement, err = WithID(replacement); err != nil {
			return nil, nil, bson.RawValue{}, false, err
		}
		return nil, replacement, replacement.Lookup("_id"), true, nil
	}
	ops, err := update.Elements()
	if err != nil || len(ops) == 0 || !strings.HasPrefix(ops[0].Key(), "$") {
		// A pipeline, not an update document.
		return update, nil, bson.RawValue{}, false, nil
	}
	if updateNamesID(update) {
		// The _id the inserted document takes when the update sets it
		// whole to one value ($setOnInsert or $set); else unknown.
		id, ok := literalID(ops)
		return update, nil, id, ok, nil
	}
	oid := bson.NewObjectID()
	d := bson.D{}
	set := false
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !ok {
			return update, nil, bson.RawValue{}, false, nil
		}
		if op.Key() == "$setOnInsert" {
			f, err := bson.Raw(fields).Elements()
			if err != nil {
				return update, nil, bson.RawValue{}, false, nil
			}
			sd := bson.D{{Key: "_id", Value: oid}}
			for _, e := range f {
				sd = append(sd, bson.E{Key: e.Key(), Value: e.Value()})
			}
			d, set = append(d, bson.E{Key: op.Key(), Value: sd}), true
			continue
		}
		d = append(d, bson.E{Key: op.Key(), Value: op.Value()})
	}
	if !set {
		d = append(d, bson.E{Key: "$setOnInsert", Value: bson.D{{Key: "_id", Value: oid}}})
	}
	if update, err = bson.Marshal(d); err != nil {
		return nil, nil, bson.RawValue{}, false, err
	}
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return nil, nil, bson.RawValue{}, false, err
	}
	return update, nil, bson.Raw(raw).Lookup("_id"), true, nil
}

// filterEqualityID returns the _id an upsert by filter gives the document
// it inserts when the filter names _id only by equality at its top level
// ({_id: v, ...} or {_id: {$eq: v}, ...}): the server copies that value
// (found by review: {_id: 2.0, x: 1} was not checked against a deleted 2).
func filterEqualityID(filter bson.Raw) (bson.RawValue, bool) {
	elems, err := filter.Elements()
	if err != nil {
		return bson.RawValue{}, false
	}
	var id bson.RawValue
	found := false
	for _, e := range elems {
		k, v := e.Key(), e.Value()
		if k != "_id" {
			if k == "_id." || strings.HasPrefix(k, "_id.") || (v.Type == bson.TypeEmbeddedDocument || v.Type == bson.TypeArray) && namesID(bson.Raw(v.Value)) {
				return bson.RawValue{}, false
			}
			continue
		}
		if doc, ok := v.DocumentOK(); ok {
			ops, err := doc.Elements()
			if err != nil || len(ops) == 0 {
				return bson.RawValue{}, false
			}
			if strings.HasPrefix(ops[0].Key(), "$") {
				if len(ops) != 1 || ops[0].Key() != "$eq" {
					return bson.RawValue{}, false
				}
				v = ops[0].Value()
			}
		}
		switch v.Type {
		case bson.TypeRegex, bson.TypeArray:
			return bson.RawValue{}, false
		case bson.TypeEmbeddedDocument:
			if namesIDValue(v) {
				return bson.RawValue{}, false
			}
		}
		id, found = v, true
	}
	return id, found
}

// literalID returns the _id an upsert's update operators ops give the
// document they insert: the value $setOnInsert or $set set _id to, when
// they do so, and no operator names _id otherwise (a path under it, a
// $rename to it, $unset, two different values).
func literalID(ops []bson.RawElement) (bson.RawValue, bool) {
	var id bson.RawValue
	found := false
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !ok {
			return bson.RawValue{}, false
		}
		if !opNamesID(op.Key(), fields) {
			continue
		}
		if op.Key() != "$setOnInsert" && op.Key() != "$set" {
			return bson.RawValue{}, false
		}
		elems, err := fields.Elements()
		if err != nil {
			return bson.RawValue{}, false
		}
		for _, e := range elems {
			switch k := e.Key(); {
			case k == "_id":
				v := e.Value()
				if v.Type == bson.TypeArray || namesIDValue(v) || (found && !bytes.Equal(wal.KeyOf(v), wal.KeyOf(id))) {
					return bson.RawValue{}, false
				}
				id, found = v, true
			case strings.HasPrefix(k, "_id."):
				return bson.RawValue{}, false
			}
		}
	}
	return id, found
}

// namesIDValue reports a value that is a document naming _id at some
// depth (namesID): not a plain _id value.
func namesIDValue(v bson.RawValue) bool {
	doc, ok := v.DocumentOK()
	if !ok {
		return false
	}
	elems, err := doc.Elements()
	if err != nil || len(elems) == 0 {
		return err != nil
	}
	return strings.HasPrefix(elems[0].Key(), "$") || namesID(doc)
}

// refuseIDChange refuses a change that would give a matched document
// another _id. MongoDB refuses one of another value; one of an equal value
// and another type (5 and 5.0) it may store, and argon, whose log keys a
// document by its _id's bytes, would then hold one document under two
// keys (found by review: the write failed and its repair could not put
// the committed document back, so every later command failed).
func refuseIDChange(m Modification, pre []bson.Raw) error {
	if m.Replacement != nil {
		rid, err := m.Replacement.LookupErr("_id")
		if err != nil {
			return nil
		}
		for _, d := range pre {
			if id := d.Lookup("_id"); !bytes.Equal(wal.KeyOf(rid), wal.KeyOf(id)) {
				a, b := FormatValue(rid), FormatValue(id)
				if a == b { // 5 and the 64-bit 5: told apart by type
					a, b = canonicalValue(rid), canonicalValue(id)
				}
				return &DocumentError{Index: -1, Msg: fmt.Sprintf("the replacement's _id %s is not the document's _id %s: an _id cannot change (delete the document and insert the new one)", a, b)}
			}
		}
		return nil
	}
	ops, err := m.Update.Elements()
	if err != nil || len(pre) == 0 {
		return nil
	}
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !ok || op.Key() == "$setOnInsert" {
			continue // a pipeline (the server's to judge), or nothing on a match
		}
		if op.Key() == "$set" {
			if v, err := fields.LookupErr("_id"); err == nil {
				same := true
				for _, d := range pre {
					same = same && bytes.Equal(wal.KeyOf(v), wal.KeyOf(d.Lookup("_id")))
				}
				if same {
					continue // sets each _id to itself
				}
			}
		}
		if opNamesID(op.Key(), fields) {
			return &DocumentError{Index: -1, Msg: fmt.Sprintf("the update's %s would change _id: an _id cannot change (delete the document and insert the new one)", op.Key())}
		}
	}
	return nil
}

// updateNamesID reports an update document (or anything else) whose
// change may set _id: an operator naming _id or a path under it, a
// $rename to one, or a pipeline.
func updateNamesID(update bson.Raw) bool {
	ops, err := update.Elements()
	if err != nil {
		return true
	}
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !ok || !strings.HasPrefix(op.Key(), "$") || opNamesID(op.Key(), fields) {
			return true
		}
	}
	return false
}

// opNamesID reports an update operator whose fields may set _id: one
// naming _id or a path under it, or a $rename to one.
func opNamesID(op string, fields bson.Raw) bool {
	if namesID(fields) {
		return true
	}
	if op != "$rename" {
		return false
	}
	vals, err := fields.Values()
	if err != nil {
		return true
	}
	for _, v := range vals {
		if to, _ := v.StringValueOK(); to == "_id" || strings.HasPrefix(to, "_id.") {
			return true
		}
	}
	return false
}

// namesID reports a document that names _id (or a path under it) as a
// key at any depth: a filter or an update whose upsert would take its _id
// from there.
func namesID(doc bson.Raw) bool {
	elems, err := doc.Elements()
	if err != nil {
		return true
	}
	for _, e := range elems {
		if k := e.Key(); k == "_id" || strings.HasPrefix(k, "_id.") {
			return true
		}
		switch v := e.Value(); v.Type {
		case bson.TypeEmbeddedDocument, bson.TypeArray:
			if namesID(bson.Raw(v.Value)) {
				return true
			}
		}
	}
	return false
}

// modified logs the documents whose bytes a change turned from pre into
// post, and counts them in res.
func (w *Branch) modified(coll string, pre, posts []bson.Raw, res *ModifyResult) ([]wal.Entry, error) {
	var entries []wal.Entry
	for i, post := range posts {
		if bytes.Equal(post, pre[i]) {
			continue
		}
		e, err := wal.PutEntry(coll, post)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
		w.changed(coll, pre[i], post)
	}
	res.Modified = len(entries)
	return entries, nil
}

// isDuplicate reports a unique-index violation. Measured: FerretDB reports
// one caused by an update not as E11000 but as an internal error quoting
// its store: SQLite's "UNIQUE constraint failed" on the embedded engine,
// PostgreSQL's SQLSTATE 23505 on a PostgreSQL-backed server.
func isDuplicate(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return mongo.IsDuplicateKeyError(err) || strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "(SQLSTATE 23505)")
}

// duplicateOnChange names what an update or replacement of the document
// with _id id broke: the unique index (when the collection has one), else
// the server's words.
func duplicateOnChange(ctx context.Context, c *mongo.Collection, coll string, id bson.RawValue, err error) error {
	var names []string
	if specs, lerr := listIndexes(ctx, c.Database(), c.Name()); lerr == nil {
		for _, spec := range specs {
			if u, _ := spec.Lookup("unique").BooleanOK(); u {
				n, _ := spec.Lookup("name").StringValueOK()
				names = append(names, n)
			}
		}
	}
	e := &DuplicateKeyError{Coll: coll, ID: id, Indexes: names}
	switch len(names) {
	case 0:
		e.Msg = fmt.Sprintf("changing _id %s would duplicate a key", FormatValue(id))
	case 1:
		e.Msg = fmt.Sprintf("changing _id %s would break unique index %s", FormatValue(id), names[0])
	default:
		e.Msg = fmt.Sprintf("changing _id %s would break one of the unique indexes %s", FormatValue(id), strings.Join(names, ", "))
	}
	return e
}

// refuseUniqueBreak fails, as the server would on the write, when the
// documents posts (what an update makes of pre, the documents with ids)
// break a unique index of collection coll.
func (w *Branch) refuseUniqueBreak(ctx context.Context, coll string, ids []bson.RawValue, pre, posts []bson.Raw) error {
	var puts []Put
	for i, post := range posts {
		if !bytes.Equal(post, pre[i]) {
			puts = append(puts, Put{Coll: coll, ID: ids[i], Doc: post})
		}
	}
	if len(puts) == 0 {
		return nil
	}
	dke, err := w.CheckUnique(ctx, puts)
	if err != nil || dke == nil {
		return err
	}
	dke.Msg = fmt.Sprintf("changing _id %s would break unique index %s", FormatValue(dke.ID), strings.Join(dke.Indexes, ", "))
	return dke
}

// matching returns the documents filter matches (all, or the first in
// natural order), as the server evaluates it.
func matching(ctx context.Context, c *mongo.Collection, filter bson.Raw, many bool) ([]bson.Raw, error) {
	if filter == nil {
		filter = emptyDoc
	}
	opts := options.Find()
	if !many {
		opts.SetLimit(1)
	}
	cur, err := c.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var out []bson.Raw
	p := progressFor(ctx, "matching in "+c.Name())
	defer p.Done()
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
		if len(out)%1000 == 0 {
			p.Add(1000)
		}
	}
	return out, cur.Err()
}

// idsFilter is a filter matching the documents with the given ids: {_id:
// id} for one string or ObjectId, which the embedded engine answers from
// argon's _id index, {_id: {$in: ids}} otherwise, which it answers by
// reading the whole collection (a one-document update of a 20,000-document
// branch took 0.8 s on it, two scans).
func idsFilter(ids []bson.RawValue) bson.D {
	if len(ids) == 1 && (ids[0].Type == bson.TypeString || ids[0].Type == bson.TypeObjectID) {
		return bson.D{{Key: "_id", Value: ids[0]}}
	}
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
}

// rangedIDsFilter matches the documents idsFilter(ids) matches, in a
// shape that costs FerretDB less when the ids are many. FerretDB answers
// {_id: {$in: ids}} by reading every document of the collection and
// comparing its _id with the ids one after the other, so a delete of n
// ids costs up to n comparisons a document (about 14 ns each here): 18 s
// to match 11,120 integer ids in a collection of 100,000 documents, the
// collection's scan 2 s of it (BENCHMARKS, "Deletes of many integer
// _ids"). Here the integer ids are sorted and cut into k runs, each behind
// its own range: {$or: [{_id: {$gte: lo, $lte: hi, $in: run}}, ...]}.
// FerretDB stops at the first operator that fails, so a document pays
// the branches of the $or up to the one whose range holds its _id (about
// 6.5 µs a branch, measured) and that run's $in alone. The best k is
// about sqrt(n/227): 7 for those 11,120 ids, which matched in 7.1-7.4 s.
// A branch a document for many runs costs more than it saves (105 runs:
// 52 s), and below rangedFrom ids a plain $in costs no more.
//
// A range never leaves out a document its run matches: MongoDB compares
// numbers by value whatever their type (the $in of 5 matches 5.0 and the
// 64-bit 5, and so do $gte and $lte), and the runs are sorted by value.
// Ids of other types go in one plain $in after the runs.
func rangedIDsFilter(ids []bson.RawValue) bson.D {
	return rangedIDsFilterFrom(ids, rangedFrom)
}

// rangedIDsFilterFrom is rangedIDsFilter cutting from ids on.
func rangedIDsFilterFrom(ids []bson.RawValue, from int) bson.D {
	var ints, others []bson.RawValue
	for _, id := range ids {
		if id.Type == bson.TypeInt32 || id.Type == bson.TypeInt64 {
			ints = append(ints, id)
		} else {
			others = append(others, id)
		}
	}
	if len(ints) < from {
		return idsFilter(ids)
	}
	slices.SortFunc(ints, func(a, b bson.RawValue) int { return cmp.Compare(a.AsInt64(), b.AsInt64()) })
	k := max(int(math.Round(math.Sqrt(float64(len(ints))/227))), 2)
	run := (len(ints) + k - 1) / k
	var or bson.A
	for start := 0; start < len(ints); start += run {
		r := ints[start:min(start+run, len(ints))]
		or = append(or, bson.D{{Key: "_id", Value: bson.D{
			{Key: "$gte", Value: r[0]}, {Key: "$lte", Value: r[len(r)-1]}, {Key: "$in", Value: r}}}})
	}
	if len(others) > 0 {
		or = append(or, idsFilter(others))
	}
	return bson.D{{Key: "$or", Value: or}}
}

// rangedFrom is the fewest integer ids rangedIDsFilter cuts into runs.
// Below about 2,000 the best cut saves little: at 1,000 ids, two runs
// cost about what the plain $in does.
const rangedFrom = 2000

// deleteIDs deletes the documents of c whose _id is one of ids (by value,
// as the server compares) and returns how many it deleted. On FerretDB
// (ScanReads) a filter {_id: {$in: ids}} reads the whole collection and
// compares every document with every id (a fast-forward of 1,112 changed
// documents into 100,000 spent 8.5 s in that one delete), where {_id: v}
// for a string or an ObjectId is an indexed lookup (store.IndexIDs): those
// ids go as one delete command holding a statement for each, the others
// by rangedIDsFilter, at most maxDelete (and about 4 MiB of ids) at a
// time.
func (w *Branch) deleteIDs(ctx context.Context, c *mongo.Collection, ids []bson.RawValue) (int64, error) {
	var point []mongo.WriteModel
	var rest []bson.RawValue
	for _, id := range ids {
		if w.ScanReads && (id.Type == bson.TypeString || id.Type == bson.TypeObjectID) {
			point = append(point, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}))
		} else {
			rest = append(rest, id)
		}
	}
	var n int64
	if len(point) > 0 {
		r, err := c.BulkWrite(ctx, point, options.BulkWrite().SetOrdered(false))
		if err != nil {
			return 0, err
		}
		n += r.DeletedCount
	}
	for len(rest) > 0 {
		// At most maxDelete ids, and about 4 MiB of them: a command
		// must stay under 16 MiB whatever the _ids (review23).
		k, bytes := 0, 0
		for k < len(rest) && k < maxDelete && (k == 0 || bytes+len(rest[k].Value) <= 4<<20) {
			bytes += len(rest[k].Value)
			k++
		}
		f := idsFilter(rest[:k])
		if w.ScanReads {
			f = rangedIDsFilter(rest[:k])
		}
		r, err := c.DeleteMany(ctx, f)
		if err != nil {
			return n, err
		}
		n += r.DeletedCount
		rest = rest[k:]
	}
	return n, nil
}

func readOne(ctx context.Context, c *mongo.Collection, id bson.RawValue) (bson.Raw, error) {
	raw, err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("document with _id %s vanished from the working database during the write", FormatValue(id))
	}
	return append(bson.Raw(nil), raw...), err
}

// checkedChanges checks the documents a change made of pre (posts, of
// the given ids) against the limits every document meets, and returns
// its entries.
func (w *Branch) checkedChanges(coll string, ids []bson.RawValue, pre, posts []bson.Raw, res *ModifyResult) ([]wal.Entry, error) {
	for i, post := range posts {
		if err := CheckDocument(post, Limits{}); err != nil {
			return nil, &DocumentError{Index: -1, Msg: fmt.Sprintf("after the change, the document with _id %s: %s", FormatValue(ids[i]), err)}
		}
	}
	return w.modified(coll, pre, posts, res)
}

// duplicateOnMany names the document whose change broke a unique index
// when an update of ids failed with err, a duplicate key: it puts the
// touched keys back from the log and applies the update one document at a
// time (the whole change is undone anyway). It returns err when no single
// document breaks it.
func (w *Branch) duplicateOnMany(ctx context.Context, c *mongo.Collection, coll string, ids []bson.RawValue, filter, update bson.Raw, err error) error {
	if rerr := w.Repair(ctx, w.base, w.touched); rerr != nil {
		return err
	}
	for _, id := range ids {
		// With the user's filter for a positional $ (updateFilter;
		// review41: MongoDB refused each by _id alone, and the name was
		// lost).
		if _, uerr := c.UpdateOne(ctx, updateFilter(filter, update, bson.D{{Key: "_id", Value: id}}), update); isDuplicate(uerr) {
			return duplicateOnChange(ctx, c, coll, id, uerr)
		}
	}
	return err
}

// upsertByScratch is an upsert that matched nothing and whose new _id
// argon cannot know from the filter and the change: the server carries
// it out on an empty scratch collection (scratchCollection), so the new
// document is the one the server would make, and it is inserted into the
// working database by its _id, touched and announced first. A document
// of that _id already there fails the insert, as it would the upsert.
func (w *Branch) upsertByScratch(ctx context.Context, c *mongo.Collection, coll string, filter, update, replacement bson.Raw, res *ModifyResult) ([]wal.Entry, error) {
	sc, drop, err := w.scratchCollection(ctx)
	if err != nil {
		return nil, err
	}
	defer drop()
	var r *mongo.UpdateResult
	if replacement != nil {
		r, err = sc.ReplaceOne(ctx, filter, replacement, options.Replace().SetUpsert(true))
	} else {
		r, err = sc.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	}
	if err != nil {
		return nil, err
	}
	if r.UpsertedID == nil {
		return nil, nil
	}
	doc, err := sc.FindOne(ctx, emptyDoc).Raw()
	if err != nil {
		return nil, err
	}
	doc = append(bson.Raw(nil), doc...)
	id := doc.Lookup("_id")
	if err := w.refuseDeletedIDs(ctx, c, coll, []bson.RawValue{id}); err != nil {
		return nil, err
	}
	w.touch(coll, id)
	if err := w.announceTouched(ctx); err != nil {
		return nil, err
	}
	if _, err := c.InsertOne(ctx, doc); err != nil {
		return nil, err
	}
	return w.upserted(ctx, c, coll, id, res)
}

// upserted reads back the document an upsert inserted with _id id and
// returns its entry.
func (w *Branch) upserted(ctx context.Context, c *mongo.Collection, coll string, id bson.RawValue, res *ModifyResult) ([]wal.Entry, error) {
	res.Upserted = &id
	post, err := readOne(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := CheckDocument(post, Limits{}); err != nil {
		return nil, err
	}
	e, err := wal.PutEntry(coll, post)
	w.changed(coll, nil, post)
	return []wal.Entry{e}, err
}

// readMany reads the documents with the given ids, in that order, with one
// query per thousand (a point read each would scan the collection each time
// on the embedded engine for ids that are not strings or ObjectIds).
func readMany(ctx context.Context, c *mongo.Collection, ids []bson.RawValue) ([]bson.Raw, error) {
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		pos[string(wal.KeyOf(id))] = i
	}
	out := make([]bson.Raw, len(ids))
	for start := 0; start < len(ids); start += batchSize {
		batch := ids[start:min(start+batchSize, len(ids))]
		cur, err := c.Find(ctx, idsFilter(batch))
		if err != nil {
			return nil, err
		}
		for cur.Next(ctx) {
			if i, ok := pos[string(wal.KeyOf(cur.Current.Lookup("_id")))]; ok {
				out[i] = append(bson.Raw(nil), cur.Current...)
			}
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return nil, err
		}
	}
	for i, d := range out {
		if d == nil {
			return nil, fmt.Errorf("document with _id %s vanished from the working database during the write", FormatValue(ids[i]))
		}
	}
	return out, nil
}

// Count counts the documents filter matches at the branch's head.
func (w *Branch) Count(ctx context.Context, coll string, filter bson.Raw) (int64, error) {
	var n int64
	err := w.Protocol.Read(ctx, w, func(*Marker) error {
		var err error
		n, err = countDocs(ctx, w.DB.Collection(coll), filter, w.Repo.Embedded)
		return err
	})
	return n, err
}

// CollectionInfo names a collection and how many documents it holds.
type CollectionInfo struct {
	Name  string `json:"collection"`
	Count int64  `json:"count"`
}

// Collections lists the collections at the branch's head, by name, with
// their document counts.
func (w *Branch) Collections(ctx context.Context) ([]CollectionInfo, error) {
	var out []CollectionInfo
	err := w.Protocol.Read(ctx, w, func(*Marker) error {
		var err error
		out, err = collections(ctx, w.DB, w.Repo.Embedded)
		return err
	})
	return out, err
}

// CollectionNames names the collections at the branch's head (those that
// hold documents or indexes), without counting their documents.
func (w *Branch) CollectionNames(ctx context.Context) ([]string, error) {
	var out []string
	err := w.Protocol.Read(ctx, w, func(*Marker) error {
		var err error
		out, err = CollectionNames(ctx, w.DB)
		return err
	})
	return out, err
}

// collections lists db's collections that hold documents, by name, with
// their counts (sqlite: the engine is the embedded one, see countDocs).
func collections(ctx context.Context, db *mongo.Database, sqlite bool) ([]CollectionInfo, error) {
	names, err := listedNames(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []CollectionInfo
	for _, name := range names {
		n, err := countDocs(ctx, db.Collection(name), nil, sqlite)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			// A collection exists in the log while it holds documents or
			// indexes.
			if specs, err := listIndexes(ctx, db, name); err != nil || len(specs) == 0 {
				continue
			}
		}
		out = append(out, CollectionInfo{Name: name, Count: n})
	}
	return out, nil
}

// listedNames names db's collections as the server lists them, in order,
// but argon's own marker's.
func listedNames(ctx context.Context, db *mongo.Database) ([]string, error) {
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return slices.DeleteFunc(names, func(n string) bool { return n == MarkerCollection }), nil
}

// CollectionNames names db's collections that hold documents or indexes,
// in order (argon's own marker excepted). It reads at most one document
// of each.
func CollectionNames(ctx context.Context, db *mongo.Database) ([]string, error) {
	names, err := listedNames(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range names {
		if ok, err := exists(ctx, db, name); err != nil {
			return nil, err
		} else if ok {
			out = append(out, name)
		}
	}
	return out, nil
}

package workdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
)

// Reads of a past state over an image's view.
//
// A read of a collection at a past LSN with no view of its own would
// materialise the whole collection at that LSN: on the embedded engine,
// inserting it costs about as much again as the query's scan (BENCHMARKS,
// time travel). When a state below the LSN on its ancestry has a view of
// the collection (an earlier read's), or an image snapshot lies below it,
// and few of the collection's documents changed between them, the read is
// answered instead from that view (an image's is materialised once, then
// shared by every read near that image) and from the documents that
// changed: the server evaluates the query on both, the view's answer for
// the changed keys is dropped, and the two answers are merged in the
// order a view of the LSN itself would list them (the order the documents
// came into being, which the fold knows). The server evaluates every
// filter and projection; argon only drops, merges and counts by _id.
//
// What the merge cannot reproduce falls back to the view of the LSN
// itself: a sort (the server orders documents with equal sort keys as it
// likes, FerretDB by the whole input it sorts, so sorting the merged
// documents again orders ties differently: tried), a filter that
// depends on indexes ($text, $near, $nearSphere), a projection that
// computes or removes parts of _id other than leaving it out, an index
// created or dropped in between, more than overlayKeys changed keys, and
// any answer whose _id the fold does not know.

// overlayKeys is the most keys changed since the image that a read lays
// over the image's view: each is evaluated in a scratch database.
const overlayKeys = 1000

// overlayEntries is the most entries since the image (by the commits'
// counts) a read reads to find the keys they change.
const overlayEntries = 4 * overlayKeys

// overlayQuery is q as the overlay runs it: with _id kept in the answers
// (strip: remove it after the merge, as the user's projection asked).
type overlayQuery struct {
	q     Query
	strip bool
}

// overlayable returns how the overlay runs q, or false when it cannot.
func overlayable(q Query) (overlayQuery, bool) {
	if q.Sort != nil || needsIndex(q.Filter) {
		return overlayQuery{}, false
	}
	oq := overlayQuery{q: q}
	if q.Projection == nil {
		return oq, true
	}
	elems, err := q.Projection.Elements()
	if err != nil {
		return overlayQuery{}, false
	}
	kept := bson.D{}
	for _, e := range elems {
		k := e.Key()
		if len(k) > 3 && k[:4] == "_id." {
			return overlayQuery{}, false
		}
		if k != "_id" {
			kept = append(kept, bson.E{Key: k, Value: e.Value()})
			continue
		}
		switch on, ok := projectionFlag(e.Value()); {
		case !ok:
			return overlayQuery{}, false
		case !on:
			oq.strip = true
		default:
			kept = append(kept, bson.E{Key: k, Value: e.Value()})
		}
	}
	if oq.strip {
		p, err := bson.Marshal(kept)
		if err != nil {
			return overlayQuery{}, false
		}
		oq.q.Projection = p
	}
	return oq, true
}

// projectionFlag reads a projection value that includes (true) or leaves
// out (false) a field; ok is false for anything else (an expression).
func projectionFlag(v bson.RawValue) (on, ok bool) {
	switch v.Type {
	case bson.TypeBoolean:
		return v.Boolean(), true
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		f, ok := v.AsFloat64OK()
		return f != 0, ok
	}
	return false, false
}

// needsIndex reports whether filter uses an operator whose answer depends
// on the collection's indexes.
func needsIndex(filter bson.Raw) bool {
	if filter == nil {
		return false
	}
	elems, err := filter.Elements()
	if err != nil {
		return true
	}
	for _, e := range elems {
		switch e.Key() {
		case "$text", "$near", "$nearSphere":
			return true
		}
		v := e.Value()
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			if needsIndex(v.Document()) {
				return true
			}
		case bson.TypeArray:
			if needsIndex(bson.Raw(v.Array())) {
				return true
			}
		}
	}
	return false
}

// nearestBase returns the state below (v.TL, v.LSN) whose view of coll
// a read is laid over: the newest of the views of coll (or of a whole
// state) that exist on the way to it, and the nearest image (whose view
// it materialises when it is the newer). Nil when there is neither.
func (v *CollViews) nearestBase(ctx context.Context, coll string) (*CollViews, error) {
	img, err := v.r.NearestImage(ctx, v.TL, v.LSN)
	if err != nil {
		return nil, err
	}
	segs, err := v.r.Segments(ctx, v.TL, 0, v.LSN)
	if err != nil {
		return nil, err
	}
	tls := make([]string, len(segs))
	for i, sg := range segs {
		tls[i] = sg.TL
	}
	// One query of the view records of the ancestry's timelines (small
	// documents, one per materialised state or collection).
	cur, err := v.r.DB.Collection(viewsCollection).Find(ctx, bson.D{{Key: "tl", Value: bson.D{{Key: "$in", Value: tls}}}})
	if err != nil {
		return nil, err
	}
	var recs []viewRecord
	if err := cur.All(ctx, &recs); err != nil {
		return nil, err
	}
	var best *viewRecord
	for i := range recs {
		rec := &recs[i]
		if rec.Coll != "" && rec.Coll != coll {
			continue
		}
		for _, sg := range segs {
			if rec.TL == sg.TL && rec.LSN > sg.From && rec.LSN <= sg.To && (best == nil || rec.LSN > best.LSN) {
				best = rec
			}
		}
	}
	switch {
	case best != nil && (img == nil || best.LSN >= img.LSN):
		return OpenCollViews(v.r, best.TL, best.LSN), nil
	case img != nil:
		return OpenCollViews(v.r, img.TL, img.LSN), nil
	}
	return nil, nil
}

// overlayFind answers q on coll at (v.TL, v.LSN) over the view of the
// nearest state below it that has one, or of the nearest image, when it
// can (ok false: it did nothing the caller must undo, and the caller
// materialises the LSN's own view).
func (v *CollViews) overlayFind(ctx context.Context, coll string, q Query) (out []bson.Raw, ok bool, err error) {
	oq, ok := overlayable(q)
	if !ok || v.r.NoImages {
		return nil, false, nil
	}
	base, err := v.nearestBase(ctx, coll)
	if err != nil || base == nil {
		return nil, false, err
	}
	touched, ok, err := touchedKeys(ctx, v.r, v.TL, base.LSN, v.LSN, coll)
	if err != nil || !ok {
		return nil, false, err
	}
	base.Built = v.Built
	db, err := base.db(ctx, coll)
	if err != nil {
		return nil, false, err
	}
	baseDocs, err := find(ctx, db.Collection(coll), baseQuery(oq, len(touched)))
	if err != nil {
		// The server may refuse a projection only on some documents
		// (a positional one, on a document without a matching array
		// element): the base's answer holds documents the LSN's own view
		// would not return, so its errors are not the read's.
		return nil, false, ctx.Err()
	}
	if ok, err := base.intact(ctx, db); err != nil || !ok {
		// Its database was dropped (by gc, or by hand) after its record
		// was read: the LSN's own view answers.
		return nil, false, err
	}
	if len(touched) == 0 {
		// The collection did not change since the image, whose view
		// lists its documents in the order of the LSN's own.
		return stripIDs(baseDocs, oq.strip), true, nil
	}
	return v.laidOver(ctx, coll, oq, baseDocs, touched)
}

// touchedKeys returns the keys of coll that the committed entries in
// (from, to] on tl's ancestry change; ok is false when one of them
// creates or drops an index of coll, or they change more than
// overlayKeys keys.
func touchedKeys(ctx context.Context, r *wal.Repo, tl string, from, to int64, coll string) (touched map[string]bool, ok bool, err error) {
	// The commits' counts first: a read that cannot be laid over the
	// base falls back without reading the entries (its fold reads them).
	n, indexes, known, err := r.EntryBound(ctx, tl, from, to, coll)
	if err != nil || (known && (indexes || n > overlayEntries)) {
		return nil, false, err
	}
	touched = map[string]bool{}
	indexChanged := false
	err = r.EachEntry(ctx, tl, from, to, coll, func(e *wal.Entry) error {
		switch e.Op {
		case wal.OpIndex, wal.OpDropIndex:
			indexChanged = true
		default:
			touched[string(e.KeyBytes)] = true
		}
		return nil
	})
	if err != nil || indexChanged || len(touched) > overlayKeys {
		return nil, false, err
	}
	return touched, true, nil
}

// laidOver answers oq on coll at (v.TL, v.LSN) from baseDocs, the answer
// of a base state (a view below the LSN, or the working database above
// it) to oq with the skip and limit baseQuery gives it, and touched, the
// keys of coll whose documents differ between the base and the LSN: the
// base's answer for them is dropped, the server evaluates oq on their
// documents at the LSN, and the two are merged in the order the LSN's
// own view would list them (the order the documents came into being,
// which the fold knows). ok is false when it cannot tell that order, or
// the server refused the query on the changed documents.
func (v *CollViews) laidOver(ctx context.Context, coll string, oq overlayQuery, baseDocs []bson.Raw, touched map[string]bool) (out []bson.Raw, ok bool, err error) {
	q := oq.q
	skip := max(q.Skip, 0) // as the server takes it
	// The state at the LSN, for the order documents came into being.
	st, err := v.r.Fold(ctx, v.TL, v.LSN, coll)
	if err != nil {
		return nil, false, err
	}
	var changed []bson.Raw
	for k := range touched {
		if d := st.Doc(coll, k); d != nil {
			changed = append(changed, d)
		}
	}
	changedDocs, ok, err := v.evaluate(ctx, coll, oq.q, changed)
	if err != nil || !ok {
		return nil, false, err
	}
	type ranked struct {
		born int64
		doc  bson.Raw
	}
	var all []ranked
	for _, d := range baseDocs {
		k := string(wal.KeyOf(d.Lookup("_id")))
		if touched[k] {
			continue
		}
		born, ok := st.Born(coll, k)
		if !ok {
			return nil, false, nil
		}
		all = append(all, ranked{born, d})
	}
	for _, d := range changedDocs {
		born, ok := st.Born(coll, string(wal.KeyOf(d.Lookup("_id"))))
		if !ok {
			return nil, false, nil
		}
		all = append(all, ranked{born, d})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].born < all[j].born })
	from := min(int64(len(all)), skip)
	to := int64(len(all))
	if q.Limit > 0 {
		to = from + min(q.Limit, to-from)
	}
	out = make([]bson.Raw, 0, to-from)
	for _, r := range all[from:to] {
		out = append(out, r.doc)
	}
	return stripIDs(out, oq.strip), true, nil
}

// baseQuery is oq as a base state runs it when touched keys differ from
// the LSN: their documents are dropped from its answer, and the skip is
// applied after the merge.
func baseQuery(oq overlayQuery, touched int) Query {
	q := oq.q
	if touched == 0 {
		return q
	}
	skip := max(q.Skip, 0)
	q.Skip, q.Limit = 0, 0
	if oq.q.Limit > 0 && oq.q.Limit <= math.MaxInt64-skip-int64(touched) {
		q.Limit = skip + oq.q.Limit + int64(touched)
	}
	return q
}

// evaluate runs q's filter and projection (not its skip or limit) on docs
// in a scratch database, dropped before it returns (gc drops one left by
// a crash). ok is false when the server refused the query on these
// documents: it may refuse a projection on a document the LSN's own view
// would not return (past the limit).
func (v *CollViews) evaluate(ctx context.Context, coll string, q Query, docs []bson.Raw) (out []bson.Raw, ok bool, err error) {
	if len(docs) == 0 {
		return nil, true, nil
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := v.r.Client.Database(scratchPrefix(v.r) + hex.EncodeToString(b[:]))
	defer func() { _ = db.Drop(context.WithoutCancel(ctx)) }()
	if _, err := v.r.ClaimOwner(ctx, db.Name(), ""); err != nil {
		return nil, false, err
	}
	if err := insertBatches(ctx, v.r, db.Collection(coll), docs, nil); err != nil {
		return nil, false, err
	}
	q.Skip, q.Limit = 0, 0
	out, err = find(ctx, db.Collection(coll), q)
	if err != nil {
		return nil, false, ctx.Err()
	}
	return out, true, nil
}

// stripIDs removes _id from each document, as a projection of _id: 0
// does.
func stripIDs(docs []bson.Raw, strip bool) []bson.Raw {
	if !strip {
		return docs
	}
	for i, d := range docs {
		elems, err := d.Elements()
		if err != nil {
			continue
		}
		out := make(bson.Raw, 0, len(d))
		out = append(out, 0, 0, 0, 0)
		for _, e := range elems {
			if e.Key() != "_id" {
				out = append(out, e...)
			}
		}
		out = append(out, 0)
		n := int32(len(out))
		out[0], out[1], out[2], out[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		docs[i] = out
	}
	return docs
}

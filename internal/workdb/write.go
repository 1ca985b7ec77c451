package workdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
)

// MaxDocumentSize is MongoDB's limit on one document, enforced by argon on
// every engine (the embedded engine would accept more).
const MaxDocumentSize = 16 * 1024 * 1024

// Limits says what the engine cannot store, so that argon refuses it with a
// clear error instead of a dropped connection.
type Limits struct {
	// Engine names an engine built on FerretDB v1 (the embedded engine, or
	// a FerretDB server): no Decimal128, MinKey, MaxKey, code, NaN or
	// infinities, no field names with '.' or a leading '$'. Empty for
	// MongoDB, which stores them all.
	Engine string
}

// EmbeddedEngine is the Limits.Engine of argon's embedded engine.
const EmbeddedEngine = "the embedded engine"

// FerretDBServer is the Limits.Engine of a FerretDB server at --uri.
const FerretDBServer = "the server (FerretDB)"

// cannot ends a refusal: which engine cannot store it, and what can.
func (l Limits) cannot(what string) string {
	if l.Engine == EmbeddedEngine {
		return l.Engine + " cannot store " + what + " (use a MongoDB server with --uri)"
	}
	return l.Engine + " cannot store " + what + " (MongoDB can)"
}

// DocumentError reports a document that cannot be written, and which one.
type DocumentError struct {
	Index int // 0-based position in the input, -1 when unknown
	Msg   string
}

func (e *DocumentError) Error() string {
	if e.Index < 0 {
		return e.Msg
	}
	return fmt.Sprintf("document %d: %s", e.Index+1, e.Msg)
}

// DuplicateKeyError reports a write refused by a unique index.
type DuplicateKeyError struct {
	Coll string
	Msg  string // what is duplicated: the _id, or a unique index's key
	// ID is the document whose write broke a unique index, and Indexes
	// the collection's unique indexes it may have broken, when known.
	ID      bson.RawValue
	Indexes []string
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate key in collection %s: %s", e.Coll, e.Msg)
}

// MaxNesting is MongoDB's limit on how deep documents and arrays nest in a
// stored document, enforced by argon on every engine (the embedded engine
// would accept more).
const MaxNesting = 100

// depth is how deep documents and arrays nest in doc (1 for a flat one).
func depth(doc bson.Raw) int {
	elems, err := doc.Elements()
	if err != nil {
		return 0
	}
	d := 1
	for _, el := range elems {
		v := el.Value()
		if v.Type == bson.TypeEmbeddedDocument || v.Type == bson.TypeArray {
			d = max(d, 1+depth(bson.Raw(v.Value)))
		}
	}
	return d
}

// ValidateCollection checks a collection name against MongoDB's rules and
// argon's reserved name.
func ValidateCollection(name string) error {
	switch {
	case name == "":
		return errors.New("invalid collection name: it is empty")
	case name == MarkerCollection:
		return fmt.Errorf("invalid collection name %q: reserved by argon", name)
	case strings.ContainsAny(name, "$\x00"):
		return fmt.Errorf("invalid collection name %q: it contains '$' or a null character", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("invalid collection name %q: it is not valid UTF-8", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("invalid collection name %q: it contains a control character", name)
	case strings.HasPrefix(name, ".") || strings.HasPrefix(name, "system."):
		return fmt.Errorf("invalid collection name %q: it starts with '.' or 'system.'", name)
	case strings.HasPrefix(name, "_ferretdb_"):
		return fmt.Errorf("invalid collection name %q: the prefix '_ferretdb_' is reserved", name)
	case len(name) > 200:
		return fmt.Errorf("invalid collection name %q: longer than 200 bytes", name)
	}
	return nil
}

// CheckQuery refuses a filter, projection or sort holding what the engine
// cannot handle (the embedded engine drops the connection on some types).
func CheckQuery(what string, doc bson.Raw, lim Limits) error {
	if doc == nil || lim.Engine == "" {
		return nil
	}
	elems, err := doc.Elements()
	if err != nil {
		return err
	}
	for _, el := range elems {
		if err := lim.checkValue(el.Value(), el.Key(), false); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// CheckUpdate refuses the update operators FerretDB v1 accepts and then
// evaluates otherwise than MongoDB, silently (store.MisEvaluated).
// Committed, such an update would record what MongoDB would never have
// made of the document.
func CheckUpdate(update bson.Raw, lim Limits) error {
	if update == nil || lim.Engine == "" {
		return nil
	}
	switch op, field, what := store.MisEvaluated(update); op {
	case "$pull":
		return fmt.Errorf("update: $pull of %q by a condition, a document or a pattern: %s would remove only the elements equal to it, where MongoDB removes every element it matches (%s; $pull of a plain value, and $pullAll, work)", field, lim.Engine, lim.elsewhere())
	case "$push":
		return fmt.Errorf("update: $push to %q with %s: %s would ignore %s (%s)", field, what, lim.Engine, what, lim.elsewhere())
	}
	return nil
}

// elsewhere says where what the engine does not do is done.
func (l Limits) elsewhere() string {
	if l.Engine == EmbeddedEngine {
		return "use a MongoDB server with --uri"
	}
	return "MongoDB evaluates it"
}

// CheckDocument refuses a document that is too large or that the engine
// cannot store.
func CheckDocument(doc bson.Raw, lim Limits) error {
	if len(doc) > MaxDocumentSize {
		return fmt.Errorf("document is %d bytes, over MongoDB's limit of %d bytes (16 MiB)", len(doc), MaxDocumentSize)
	}
	if depth(doc) > MaxNesting {
		return fmt.Errorf("document nests documents and arrays more than %d levels deep, MongoDB's limit", MaxNesting)
	}
	if lim.Engine != "" {
		return lim.checkDoc(doc, "")
	}
	return nil
}

// checkDoc checks a stored document: field names and value types.
func (lim Limits) checkDoc(doc bson.Raw, path string) error {
	elems, err := doc.Elements()
	if err != nil {
		return err
	}
	for _, el := range elems {
		key := el.Key()
		full := key
		if path != "" {
			full = path + "." + key
		}
		if strings.Contains(key, ".") {
			return fmt.Errorf("field name %q contains '.': %s", full, lim.cannot("it"))
		}
		if strings.HasPrefix(key, "$") {
			return fmt.Errorf("field name %q starts with '$': %s", full, lim.cannot("it"))
		}
		if err := lim.checkValue(el.Value(), full, true); err != nil {
			return err
		}
	}
	return nil
}

// checkValue checks a value's type, recursively; names says whether nested
// field names are checked too (documents) or may be operators (queries).
func (lim Limits) checkValue(v bson.RawValue, path string, names bool) error {
	if what, bad := store.UnstorableTypes[v.Type]; bad {
		return fmt.Errorf("field %q is %s: %s", path, what, lim.cannot("this type"))
	}
	switch v.Type {
	case bson.TypeDouble:
		if f := v.Double(); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("field %q is %v: %s", path, f, lim.cannot("NaN or infinite doubles"))
		}
	case bson.TypeEmbeddedDocument:
		if names {
			return lim.checkDoc(v.Document(), path)
		}
		elems, err := v.Document().Elements()
		if err != nil {
			return err
		}
		for _, el := range elems {
			if err := lim.checkValue(el.Value(), path+"."+el.Key(), false); err != nil {
				return err
			}
		}
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return err
		}
		for i, av := range vals {
			if names && av.Type == bson.TypeArray {
				return fmt.Errorf("field %q is an array inside an array: %s", fmt.Sprintf("%s.%d", path, i), lim.cannot("nested arrays"))
			}
			if err := lim.checkValue(av, fmt.Sprintf("%s.%d", path, i), names); err != nil {
				return err
			}
		}
	}
	return nil
}

// WithID returns doc with its _id first, generating an ObjectId when the
// document has none, as mongosh does. MongoDB stores _id first whatever
// order a document is sent in; sending it that way changes nothing there.
func WithID(doc bson.Raw) (bson.Raw, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	if len(elems) > 0 && elems[0].Key() == "_id" {
		return doc, nil
	}
	var id any = bson.NewObjectID()
	if v, err := doc.LookupErr("_id"); err == nil {
		id = v
	}
	d := bson.D{{Key: "_id", Value: id}}
	for _, el := range elems {
		if el.Key() != "_id" {
			d = append(d, bson.E{Key: el.Key(), Value: el.Value()})
		}
	}
	return bson.Marshal(d)
}

// FormatValue renders a BSON value as relaxed Extended JSON for messages.
func FormatValue(v bson.RawValue) string {
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, false, false)
	if err != nil {
		return v.String()
	}
	s := string(b)
	s = strings.TrimPrefix(s, `{"v":`)
	return strings.TrimSuffix(s, "}")
}

// InsertResult reports an insert.
type InsertResult struct {
	IDs    []bson.RawValue
	Commit *wal.Commit
	Head   int64
}

// write runs apply as one commit through the protocol, for writes that
// produce all their entries at once. A database known clean before the
// write (its files as a full read last found them) holds exactly the
// committed state after it, and is recorded clean again (keepClean): a
// merge or an index change no longer makes the next status read the
// whole branch, nor the next read of its past materialise.
func (w *Branch) write(ctx context.Context, info wal.CommitInfo, intent []wal.KeyRef,
	apply func(ctx context.Context) ([]wal.Entry, error)) (*wal.Commit, int64, error) {
	w.cleanAtStart, w.cleanChecked = false, false
	cm, head, err := w.Protocol.Write(ctx, w, &info, intent, func(ctx context.Context, emit func([]wal.Entry) error) error {
		if w.Files != nil && w.Files.Clean(w.DB.Name()) != "" {
			w.knownClean() // before anything changes
		}
		entries, err := apply(ctx)
		if err != nil {
			return err
		}
		for i := 0; i < len(entries); i += batchSize {
			if err := emit(entries[i:min(i+batchSize, len(entries))]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		w.keepClean()
	}
	return cm, head, err
}

// Insert inserts docs (each with an _id) into coll as one commit.
func (w *Branch) Insert(ctx context.Context, coll string, docs []bson.Raw, info wal.CommitInfo) (*InsertResult, error) {
	done := false
	return w.InsertStream(ctx, coll, func() ([]bson.Raw, error) {
		if done {
			return nil, nil
		}
		done = true
		return docs, nil
	}, info, nil)
}

// intentLimit is the most keys a write announces in its lease.
const intentLimit = 1000

// InsertStream inserts the documents next returns, batch after batch (nil
// at the end), as one commit: all of them or none. Memory holds one batch
// and the _ids seen so far. progress, if set, is told the running count.
// An empty message becomes "insert N documents into COLL".
func (w *Branch) InsertStream(ctx context.Context, coll string, next func() ([]bson.Raw, error), info wal.CommitInfo, progress func(int)) (*InsertResult, error) {
	seen := map[string]int{}
	var ids []bson.RawValue
	if w.ScanReads {
		// Each _id as the engine will store it (see withStoredID).
		read := next
		next = func() ([]bson.Raw, error) {
			docs, err := read()
			if err != nil {
				return nil, err
			}
			for i := range docs {
				if docs[i], err = withStoredID(docs[i]); err != nil {
					return nil, err
				}
			}
			return docs, nil
		}
	}
	// The first batch is read before the write starts, so that a small
	// insert announces its keys in its lease.
	first, err := next()
	if err != nil {
		return nil, err
	}
	var intent []wal.KeyRef
	if len(first) <= intentLimit {
		for _, d := range first {
			if id, err := d.LookupErr("_id"); err == nil {
				intent = append(intent, wal.KeyRef{Coll: coll, Key: wal.KeyOf(id)})
			}
		}
	}
	inserted := 0
	w.cleanAtStart, w.cleanChecked = false, false
	cm, head, err := w.Protocol.Write(ctx, w, &info, intent, func(ctx context.Context, emit func([]wal.Entry) error) error {
		// Looked up once the write holds the branch: taking the branch
		// may have given it another database (rebind).
		c := w.DB.Collection(coll)
		// An insert needs no check of the database (it refuses any _id
		// already there), but when the database was known clean it stays
		// so: the next status or write need not read it whole.
		if w.Files != nil && w.Files.Clean(w.DB.Name()) != "" {
			w.knownClean()
		}
		if err := w.refuseIndexChangesIn(ctx, coll); err != nil {
			return err
		}
		docs := first
		for batch := 0; ; batch++ {
			if len(docs) == 0 {
				if info.Message == "" {
					noun := "documents"
					if len(ids) == 1 {
						noun = "document"
					}
					info.Message = fmt.Sprintf("insert %d %s into %s", len(ids), noun, coll)
				}
				return nil
			}
			for start := 0; start < len(docs); start += batchSize {
				batch := docs[start:min(start+batchSize, len(docs))]
				if err := w.insertBatch(ctx, c, coll, batch, seen, &ids, emit); err != nil {
					return err
				}
				inserted += len(batch)
				if progress != nil {
					progress(inserted)
				}
			}
			var err error
			if docs, err = next(); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return nil, err
	}
	w.keepClean()
	return &InsertResult{IDs: ids, Commit: cm, Head: head}, nil
}

// insertBatch inserts one batch, reads its post-images back and emits
// them as log entries.
func (w *Branch) insertBatch(ctx context.Context, c *mongo.Collection, coll string, batch []bson.Raw,
	seen map[string]int, ids *[]bson.RawValue, emit func([]wal.Entry) error) error {
	first := len(*ids)
	for i, d := range batch {
		id, err := d.LookupErr("_id")
		if err != nil {
			return &DocumentError{Index: first + i, Msg: "document has no _id"}
		}
		if id.Type == bson.TypeArray {
			return &DocumentError{Index: first + i, Msg: "_id cannot be an array"}
		}
		k := equalityKey(id)
		if j, dup := seen[k]; dup {
			msg := fmt.Sprintf("duplicate _id %s (also document %d)", FormatValue(id), j+1)
			if other := (*ids)[j]; !other.Equal(id) {
				msg = sameValueMessage(id, j, other)
			}
			return &DocumentError{Index: first + i, Msg: msg}
		}
		seen[k] = first + i
		// A copy: the _id alone outlives the batch (held to be printed),
		// not the whole document it points into.
		id.Value = bytes.Clone(id.Value)
		*ids = append(*ids, id)
	}
	batchIDs := (*ids)[first:]
	if err := w.refuseDeletedIDs(ctx, c, coll, batchIDs); err != nil {
		return err
	}
	for _, id := range batchIDs {
		w.touch(coll, id)
	}
	// Past the keys the lease announced (the first batch's), each batch
	// announces its keys before it inserts.
	if err := w.announceTouched(ctx); err != nil {
		return err
	}
	anys := make([]any, len(batch))
	for i := range batch {
		anys[i] = batch[i]
	}
	_, err := c.InsertMany(ctx, anys, options.InsertMany().SetOrdered(true))
	if err != nil {
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
			// What the server inserted besides is not trusted: the
			// protocol repairs the keys of the batch from the log, but
			// those of documents that were there before (another's, an
			// application's uncommitted one) are left alone.
			w.untouchForeign(ctx, c, coll, batch, batchIDs, bwe, nil)
			we := bwe.WriteErrors[0]
			if we.HasErrorCode(11000) || mongo.IsDuplicateKeyError(err) {
				why := explainDuplicate(ctx, c, batch[we.Index])
				if why == "" {
					why = we.Message
				}
				return &DuplicateKeyError{Coll: coll, Msg: why}
			}
			return &DocumentError{Index: first + we.Index, Msg: we.Message}
		}
		return err
	}
	post, err := w.readBack(ctx, c, batchIDs, batch)
	if err != nil {
		return err
	}
	entries := make([]wal.Entry, 0, len(post))
	for _, d := range post {
		e, err := wal.PutEntry(coll, d)
		if err != nil {
			return err
		}
		entries = append(entries, e)
		w.changed(coll, nil, d)
	}
	return emit(entries)
}

// untouchForeign takes out of the touched keys, after a failed insert of
// batch, the keys of documents this insert did not put there: each one a
// duplicate-key error names (there before, or not inserted), and on
// FerretDB, which goes on inserting past the failing document, each one
// the database holds otherwise than sent (read back: the server's account
// of what it inserted is not trusted; a document stored otherwise than
// sent, storedAsSent, stays touched). Keys in mine (documents this write
// deleted or wrote before) stay touched whatever the error names.
func (w *Branch) untouchForeign(ctx context.Context, c *mongo.Collection, coll string, batch []bson.Raw, ids []bson.RawValue, bwe mongo.BulkWriteException, mine map[string]bool) {
	foreign := map[string]bool{}
	for _, we := range bwe.WriteErrors {
		if we.HasErrorCode(11000) && we.Index >= 0 && we.Index < len(ids) {
			foreign[string(wal.KeyOf(ids[we.Index]))] = true
		}
	}
	if w.ScanReads {
		sent := map[string]bson.Raw{}
		for i, d := range batch {
			sent[string(wal.KeyOf(ids[i]))] = d
		}
		// By point reads where the _ids allow (a query by the list scans
		// the collection: 1.5 s of a failed ten-document insert into
		// 100,000).
		if now, err := w.readKeys(ctx, c, ids); err == nil {
			for k, held := range now {
				if d, ok := sent[k]; ok && storedAsSent(d) && !bytes.Equal(d, held) {
					foreign[k] = true
				}
			}
		}
	}
	for k := range mine {
		delete(foreign, k)
	}
	w.untouch(coll, foreign)
}

// readBack returns the documents with the given ids as the server holds
// them, in the order given. The log records these post-images, never the
// input as typed.
func (w *Branch) readBack(ctx context.Context, c *mongo.Collection, ids []bson.RawValue, sent []bson.Raw) ([]bson.Raw, error) {
	want := make(map[string]int, len(ids))
	for i, id := range ids {
		want[string(wal.KeyOf(id))] = i
	}
	out := make([]bson.Raw, len(ids))
	collect := func(cur *mongo.Cursor) error {
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			id, err := cur.Current.LookupErr("_id")
			if err != nil {
				continue
			}
			if i, ok := want[string(wal.KeyOf(id))]; ok {
				out[i] = append(bson.Raw(nil), cur.Current...)
			}
		}
		return cur.Err()
	}
	if w.ScanReads && len(ids) > 0 && len(ids) == len(sent) {
		// On the embedded engine a read-back by any _id that is not a
		// string or ObjectId scans the whole collection. A document that is
		// already in the form the engine stores (see storedAsSent) is
		// recorded as sent, which is what a read-back would return.
		all := true
		for _, d := range sent {
			if !storedAsSent(d) {
				all = false
				break
			}
		}
		if all {
			return sent, nil
		}
	}
	pointable := w.ScanReads && len(ids) <= 100
	for _, id := range ids {
		if id.Type != bson.TypeString && id.Type != bson.TypeObjectID {
			pointable = false
		}
	}
	if pointable {
		// The embedded engine uses its _id index only for a filter that is
		// exactly {_id: string or ObjectId}: a few point reads beat a scan.
		for i, id := range ids {
			raw, err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
			if err != nil {
				if errors.Is(err, mongo.ErrNoDocuments) {
					break
				}
				return nil, err
			}
			out[i] = append(bson.Raw(nil), raw...)
		}
	} else if w.ScanReads && len(ids) > 100 {
		// The embedded engine scans the whole collection for any filter
		// but an _id equality: one scan beats one per batch.
		cur, err := c.Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		if err := collect(cur); err != nil {
			return nil, err
		}
	} else {
		for start := 0; start < len(ids); start += batchSize {
			batch := ids[start:min(start+batchSize, len(ids))]
			cur, err := c.Find(ctx, idsFilter(batch))
			if err != nil {
				return nil, err
			}
			if err := collect(cur); err != nil {
				return nil, err
			}
		}
	}
	for i, d := range out {
		if d == nil {
			return nil, fmt.Errorf("document with _id %s vanished from the working database during the write", FormatValue(ids[i]))
		}
	}
	return out, nil
}

// storedAsSent reports whether the embedded engine stores doc exactly as
// sent. Measured on FerretDB v1: it moves _id to the front of the document
// and of every nested document, and turns -0.0 into 0.0; nothing else in a
// document it accepts changes. A document with _id first everywhere and no
// negative zero comes back byte for byte (the golden round-trip tests and
// TestStoredAsSent check this against the engine).
func storedAsSent(doc bson.Raw) bool {
	elems, err := doc.Elements()
	if err != nil {
		return false
	}
	for i, el := range elems {
		if el.Key() == "_id" && i != 0 {
			return false
		}
		if !valueStoredAsSent(el.Value()) {
			return false
		}
	}
	return true
}

// withStoredID returns doc with its _id in the form the embedded engine
// stores it (see storedAsSent: -0.0 as 0.0, a nested document's _id
// first), the rest as it is; doc itself when that is the same. An insert
// sends that form, so that the keys it touches, announces and reads back
// are the stored document's: with the _id as sent, a failed insert left
// {_id: 0.0} behind (its repair looked for -0.0), and one whose _id held
// {a: 1, _id: 2} failed with "vanished".
func withStoredID(doc bson.Raw) (bson.Raw, error) {
	id, err := doc.LookupErr("_id")
	if err != nil || valueStoredAsSent(id) {
		return doc, nil
	}
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(elems))
	for i, el := range elems {
		v := el.Value()
		if el.Key() == "_id" {
			v = storedValue(v)
		}
		out[i] = element(el.Key(), v)
	}
	return bson.Raw(bsoncore.BuildDocument(nil, out...)), nil
}

func element(key string, v bson.RawValue) []byte {
	return bsoncore.AppendValueElement(nil, key, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
}

// storedValue is v in the form the embedded engine stores it.
func storedValue(v bson.RawValue) bson.RawValue {
	switch v.Type {
	case bson.TypeDouble:
		if f := v.Double(); f == 0 && math.Signbit(f) {
			return bson.RawValue{Type: bson.TypeDouble, Value: bsoncore.AppendDouble(nil, 0)}
		}
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return v
		}
		var out [][]byte
		for _, el := range elems { // _id first
			if el.Key() == "_id" {
				out = append(out, element("_id", storedValue(el.Value())))
			}
		}
		for _, el := range elems {
			if el.Key() != "_id" {
				out = append(out, element(el.Key(), storedValue(el.Value())))
			}
		}
		return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: bsoncore.BuildDocument(nil, out...)}
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return v
		}
		out := make([]bsoncore.Value, len(vals))
		for i, av := range vals {
			sv := storedValue(av)
			out[i] = bsoncore.Value{Type: bsoncore.Type(sv.Type), Data: sv.Value}
		}
		return bson.RawValue{Type: bson.TypeArray, Value: bsoncore.BuildArray(nil, out...)}
	}
	return v
}

func valueStoredAsSent(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeDouble:
		f := v.Double()
		return !(f == 0 && math.Signbit(f))
	case bson.TypeEmbeddedDocument:
		return storedAsSent(v.Document())
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return false
		}
		for _, av := range vals {
			if !valueStoredAsSent(av) {
				return false
			}
		}
	}
	return true
}

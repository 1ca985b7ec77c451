package workdb

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Query is a find, evaluated by the server.
type Query struct {
	Filter     bson.Raw
	Projection bson.Raw
	Sort       bson.Raw
	Skip       int64
	Limit      int64
}

// Find runs q against coll at the branch's committed head and returns the
// matching documents as the server returns them.
func (w *Branch) Find(ctx context.Context, coll string, q Query) ([]bson.Raw, error) {
	var d Docs
	if err := w.FindTo(ctx, coll, q, &d); err != nil {
		return nil, err
	}
	return d.All()
}

// FindTo is Find into d: with d.Spill set, a read of any size holds one
// batch of the server's in memory.
func (w *Branch) FindTo(ctx context.Context, coll string, q Query, d *Docs) error {
	return w.Protocol.Read(ctx, w, func(*Marker) error {
		return findInto(ctx, w.DB.Collection(coll), q, d)
	})
}

func find(ctx context.Context, c *mongo.Collection, q Query) ([]bson.Raw, error) {
	var d Docs
	if err := findInto(ctx, c, q, &d); err != nil {
		return nil, err
	}
	return d.All()
}

// eachDoc calls fn with each document of c, as the server returns them.
func eachDoc(ctx context.Context, c *mongo.Collection, fn func(bson.Raw) error) error {
	cur, err := c.Find(ctx, emptyDoc)
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

// findInto runs q on c and puts what it finds into d, in place of what d
// held.
func findInto(ctx context.Context, c *mongo.Collection, q Query, d *Docs) error {
	if err := d.Reset(); err != nil {
		return err
	}
	opts := options.Find()
	if q.Projection != nil {
		opts.SetProjection(q.Projection)
	}
	if q.Sort != nil {
		opts.SetSort(q.Sort)
	}
	if q.Skip > 0 {
		opts.SetSkip(q.Skip)
	}
	if q.Limit > 0 {
		opts.SetLimit(q.Limit)
	}
	filter := q.Filter
	if filter == nil {
		filter = emptyDoc
	}
	cur, err := c.Find(ctx, filter, opts.SetBatchSize(FirstBatch))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	var sizer BatchSizer
	for cur.Next(ctx) {
		if err := d.Add(cur.Current); err != nil {
			return err
		}
		sizer.Seen(cur)
	}
	return cur.Err()
}

// FirstBatch is the first batch a read of documents asks for (see
// BatchSizer).
const FirstBatch = 2

// BatchSizer sizes the batches of a read of documents from what it has
// read. The embedded engine (FerretDB) builds each reply whole and, unlike
// MongoDB, does not cut one at 16 MiB: its default first batch of four
// documents of 13 MB was one reply of 52 MB, which the driver refuses
// past its 48 MB limit ("length of read message too large"; review23).
// A read starts with 2 documents a reply (at most 32 MiB) and grows the
// batch fourfold at a time up to 1,000 documents, or fewer when that
// would pass 4 MiB at the largest document seen so far: a few more round
// trips for small documents, and the engine's replies stay small.
type BatchSizer struct {
	size    int32
	largest int
}

// Seen is called for each document the cursor returns; at the end of a
// batch it sets the next one's size.
func (b *BatchSizer) Seen(cur *mongo.Cursor) {
	b.largest = max(b.largest, len(cur.Current))
	if cur.RemainingBatchLength() > 0 {
		return
	}
	fit := int32(min((4<<20)/max(b.largest, 1), 1000))
	if b.size == 0 {
		b.size = FirstBatch
	}
	if next := max(FirstBatch, min(b.size*4, fit)); next != b.size {
		b.size = next
		cur.SetBatchSize(next)
	}
}

var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

// HasCollection reports whether coll exists at the branch's head. In the
// log a collection exists while it holds documents, so an emptied
// collection does not count, whether or not the working database still
// has it.
func (w *Branch) HasCollection(ctx context.Context, coll string) (bool, error) {
	var found bool
	err := w.Protocol.Read(ctx, w, func(*Marker) error {
		var err error
		found, err = exists(ctx, w.DB, coll)
		return err
	})
	return found, err
}

// countDocs counts the documents of c that filter matches. On the
// embedded engine (sqlite) it sends the count command: FerretDB v1.24.2
// answers the driver's CountDocuments (an aggregation, $match then
// $group) by loading every matched document first, where its count
// command reads them a batch at a time (measured on the embedded engine,
// 100,000 documents of about 300 bytes: a process peak of 281 MB against
// 45 MB, in the same time). Elsewhere CountDocuments: over PostgreSQL
// FerretDB's count command misses documents that hold the value in an
// array on a dotted path ({"a.b": 2} over {a: [{b: 2}]}: 1 where find and
// CountDocuments find 2; review32's test in CI), and MongoDB's can count
// a sharded cluster's orphaned documents.
func countDocs(ctx context.Context, c *mongo.Collection, filter bson.Raw, sqlite bool) (int64, error) {
	if filter == nil {
		filter = emptyDoc
	}
	if !sqlite {
		return c.CountDocuments(ctx, filter)
	}
	var res struct {
		N int64 `bson:"n"`
	}
	err := c.Database().RunCommand(ctx, bson.D{{Key: "count", Value: c.Name()}, {Key: "query", Value: filter}}).Decode(&res)
	return res.N, err
}

// exists reports whether coll holds documents or indexes in db: whether
// the log says it exists.
func exists(ctx context.Context, db *mongo.Database, coll string) (bool, error) {
	n, err := db.Collection(coll).CountDocuments(ctx, emptyDoc, options.Count().SetLimit(1))
	if err != nil || n > 0 {
		return n > 0, err
	}
	specs, err := listIndexes(ctx, db, coll)
	return len(specs) > 0, err
}

package workdb

import (
	"context"
	"errors"
	"fmt"

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
func (w *Branch) ApplyPuts(ctx context.Context, puts []Put, info wal.CommitInfo) (*wal.Commit, int64, error) {
	return w.write(ctx, info, nil, func(ctx context.Context) ([]wal.Entry, error) {
		var entries []wal.Entry
		// Index drops first and creations last, so that documents are
		// checked against the indexes the merged state has.
		for _, p := range puts {
			if !p.Index || p.Doc != nil {
				continue
			}
			name := p.ID.StringValue()
			w.touchIndex(p.Coll, name)
			specs, err := listIndexes(ctx, w.DB, p.Coll)
			if err != nil {
				return nil, err
			}
			spec := findSpec(specs, name)
			if spec == nil {
				continue
			}
			if err := w.DB.Collection(p.Coll).Indexes().DropOne(ctx, name); err != nil {
				return nil, err
			}
			w.changedIndex(p.Coll, spec, nil)
			entries = append(entries, wal.DropIndexEntry(p.Coll, name))
		}
		for _, p := range puts {
			if p.Index {
				continue
			}
			c := w.DB.Collection(p.Coll)
			w.touch(p.Coll, p.ID)
			filter := bson.D{{Key: "_id", Value: p.ID}}
			pre, err := c.FindOne(ctx, filter).Raw()
			if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
				return nil, err
			}
			if p.Doc == nil {
				if pre == nil {
					continue
				}
				if _, err := c.DeleteOne(ctx, filter); err != nil {
					return nil, err
				}
				w.changed(p.Coll, pre, nil)
				entries = append(entries, wal.DelEntry(p.Coll, p.ID))
				continue
			}
			doc, err := WithID(p.Doc)
			if err != nil {
				return nil, err
			}
			if _, err := c.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true)); err != nil {
				if isDuplicate(err) {
					return nil, duplicateOnChange(ctx, c, p.Coll, p.ID, err)
				}
				return nil, err
			}
			post, err := readOne(ctx, c, p.ID)
			if err != nil {
				return nil, err
			}
			w.changed(p.Coll, pre, post)
			e, err := wal.PutEntry(p.Coll, post)
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		}
		for _, p := range puts {
			if !p.Index || p.Doc == nil {
				continue
			}
			name := p.ID.StringValue()
			w.touchIndex(p.Coll, name)
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
	})
}

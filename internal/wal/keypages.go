package wal

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Key pages hold the keys a lease announces, or a dirty void names, when
// there are more of them than one record keeps (PageKeys, PageBytes): a
// write of 50,000 documents that stops half way is then repaired key by
// key like a small one, instead of making the next holder rebuild the
// whole working database (and lose applications' uncommitted changes in
// it). Page i of record id (a lease's _id, which is its slot's) is the
// document {_id: id + ":p" + i, keys: KeyList} of collKeyPages, read by
// _id, the one lookup FerretDB indexes. A record names its pages by their
// count, Pages, and its known field stays false: an argon from before
// pages takes that for keys it does not know, and rebuilds, which is
// safe.
const collKeyPages = "keypages"

// PageKeys and PageBytes bound one page (and the keys a record holds
// itself): far below a document's 16 MiB whatever the _ids.
const (
	PageKeys  = 20000
	PageBytes = 1 << 20
)

// KeyBytes is the size of keys as a page holds them, about.
func KeyBytes(keys []KeyRef) int {
	n := 0
	for _, k := range keys {
		n += len(k.Coll) + len(k.Key) + 16
	}
	return n
}

// Pages cuts keys into pages of at most PageKeys keys and PageBytes
// bytes, in order; the same first keys always give the same first pages.
func Pages(keys []KeyRef) [][]KeyRef {
	var out [][]KeyRef
	start, bytes := 0, 0
	for i := range keys {
		b := KeyBytes(keys[i : i+1])
		if i > start && (i-start == PageKeys || bytes+b > PageBytes) {
			out = append(out, keys[start:i])
			start, bytes = i, 0
		}
		bytes += b
	}
	if start < len(keys) {
		out = append(out, keys[start:])
	}
	return out
}

func keyPageID(id string, i int) string { return fmt.Sprintf("%s:p%06d", id, i) }

// WriteKeyPages stores pages[from:] as pages of record id, each replaced
// whole by _id.
func (r *Repo) WriteKeyPages(ctx context.Context, id string, pages [][]KeyRef, from int) error {
	for i := from; i < len(pages); i++ {
		pid := keyPageID(id, i)
		if _, err := r.DB.Collection(collKeyPages).ReplaceOne(ctx, bson.D{{Key: "_id", Value: pid}},
			bson.D{{Key: "_id", Value: pid}, {Key: "keys", Value: KeyList(pages[i])}}, options.Replace().SetUpsert(true)); err != nil {
			return fmt.Errorf("write key page %s: %w", pid, err)
		}
	}
	return nil
}

// KeyPagesOf reads the n pages of record id, in order, as one list.
func (r *Repo) KeyPagesOf(ctx context.Context, id string, n int) ([]KeyRef, error) {
	var out []KeyRef
	for i := 0; i < n; i++ {
		var p struct {
			Keys KeyList `bson:"keys"`
		}
		err := r.DB.Collection(collKeyPages).FindOne(ctx, bson.D{{Key: "_id", Value: keyPageID(id, i)}}).Decode(&p)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, fmt.Errorf("log is inconsistent: key page %d of %s is missing", i, id)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p.Keys...)
	}
	return out, nil
}

// DeleteKeyPages removes the n pages of record id (best effort: left,
// they only take space).
func (r *Repo) DeleteKeyPages(ctx context.Context, id string, n int) {
	for i := 0; i < n; i++ {
		_, _ = r.DB.Collection(collKeyPages).DeleteOne(ctx, bson.D{{Key: "_id", Value: keyPageID(id, i)}})
	}
}

// AnnouncePages records that the holder of l changes only the keys of
// its n key pages (written before, WriteKeyPages) from here on.
func (r *Repo) AnnouncePages(ctx context.Context, l *Lease, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := r.DB.Collection(collLeases).UpdateOne(ctx, l.filter(),
		bson.D{{Key: "$set", Value: bson.D{{Key: "known", Value: false}, {Key: "pages", Value: n}}}, {Key: "$unset", Value: bson.D{{Key: "keys", Value: ""}}}})
	if err == nil {
		l.KeysKnown, l.Keys, l.Pages, l.widened = false, nil, n, 0
	}
	return err
}

package wal

import (
	"bytes"
	"context"
	"fmt"
	"sort"
)

// An image of a state with no image below it (a timeline's first, which
// the commit of a large import takes) is written from the log without
// holding the state. A first read of the entries keeps, for each live
// key, when it came into being and when it last changed, and the
// document only when that was later; indexes are kept whole (they are
// few). Then, collection by collection in name order, a second read
// passes each document on at the entry it came into being at: entries
// come in LSN order, so documents come in the order they came into
// being, which is the order the image lists them in. The image is the
// one a fold gives, byte for byte (TestImageFromTheLogIsTheFolds).
//
// Memory: a key and two LSNs a document, the documents changed after
// they came into being, one chunk of the log at a time. The price is a
// second read of the log (one per collection).

// logState is the state of (tl, lsn) as the log gives it, for writeImage.
type logState struct {
	ctx   context.Context
	r     *Repo
	tl    string
	lsn   int64
	colls map[string]*logColl
	// entries counts the entries the first read gave.
	entries int64
	// plan is the chunks the first read read, so that the second reads
	// only a collection's own; nil when the first read fell back to
	// EachEntry (so does the second).
	plan chunkPlan
}

type logColl struct {
	docs    map[string]*logDoc
	indexes map[string]*stateDoc
}

type logDoc struct {
	born, last int64
	// doc is the document at last when last is after born (a copy: the
	// entry's bytes belong to its whole chunk).
	doc []byte
}

// readLogState reads the log of (tl, lsn) (only coll's, when coll is not
// empty) once and keeps what a second read needs to list the state.
func (r *Repo) readLogState(ctx context.Context, tl string, lsn int64, coll string) (*logState, error) {
	ls := &logState{ctx: ctx, r: r, tl: tl, lsn: lsn, colls: map[string]*logColl{}, plan: chunkPlan{}}
	fellBack, err := r.eachEntryByChunk(ctx, tl, 0, lsn, coll, nil, ls.plan, func(e *Entry) error {
		ls.entries++
		c := ls.colls[e.Coll]
		if c == nil {
			c = &logColl{docs: map[string]*logDoc{}, indexes: map[string]*stateDoc{}}
			ls.colls[e.Coll] = c
		}
		k := string(e.KeyBytes)
		// As State.Apply: a collection is listed while it holds documents
		// or indexes.
		switch e.Op {
		case OpIndex:
			c.indexes[k] = &stateDoc{doc: bytes.Clone(e.Doc), born: e.LSN}
		case OpDropIndex:
			delete(c.indexes, k)
		case OpPut:
			if d, ok := c.docs[k]; ok {
				d.last, d.doc = e.LSN, bytes.Clone(e.Doc)
			} else {
				c.docs[k] = &logDoc{born: e.LSN, last: e.LSN}
			}
		case OpDel:
			delete(c.docs, k)
		}
		if len(c.docs) == 0 && len(c.indexes) == 0 {
			delete(ls.colls, e.Coll)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if fellBack {
		ls.plan = nil
	}
	return ls, nil
}

// Collections lists the collections that hold documents or indexes, by
// name.
func (ls *logState) Collections() []string {
	out := make([]string, 0, len(ls.colls))
	for name := range ls.colls {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// records reads the log of collection name again and passes each live
// document on at the entry it came into being at, then the indexes.
func (ls *logState) records(name string, rec func(kind byte, key string, born int64, doc []byte) error) error {
	c := ls.colls[name]
	if c == nil {
		return nil
	}
	n := 0
	give := func(e *Entry) error {
		if e.Op != OpPut {
			return nil
		}
		d := c.docs[string(e.KeyBytes)]
		if d == nil || d.born != e.LSN {
			return nil // deleted since, or an earlier life of the key
		}
		doc := []byte(e.Doc)
		if d.last != e.LSN {
			doc = d.doc
		}
		n++
		return rec(imageRecordDoc, string(e.KeyBytes), d.born, doc)
	}
	var err error
	if ls.plan != nil {
		_, err = ls.r.eachEntryByChunk(ls.ctx, ls.tl, 0, ls.lsn, name, ls.plan, nil, give)
	} else {
		err = ls.r.EachEntry(ls.ctx, ls.tl, 0, ls.lsn, name, give)
	}
	if err != nil {
		return err
	}
	if n != len(c.docs) {
		// The committed log does not change: this is a fault, and no
		// image is better than a wrong one.
		return fmt.Errorf("the log of %s gave %d documents of %s on a second read, %d on the first", ls.tl, n, name, len(c.docs))
	}
	for _, k := range orderedKeys(c.indexes) {
		if err := rec(imageRecordIndex, k, c.indexes[k].born, c.indexes[k].doc); err != nil {
			return err
		}
	}
	return nil
}

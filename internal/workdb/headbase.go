package workdb

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Reads of a recent past state over the branch's working database.
//
// A read of a collection at a past LSN of a branch with no view of its
// own would materialise the collection at that LSN, which on the embedded
// engine costs about as much again as the query's scan. The branch's
// working database already holds the state at its head H. When it is
// built, reflects H on the branch's timeline (the read protocol checks
// that, as for a read at the head), and is known clean (its files, or
// argon serve's write token, are those at which a full scan last found
// it equal to the committed state at H: no application changed it), a
// read at an LSN at or below H is laid over it as over a view below the
// LSN (overlay.go): the keys of the collection that commits in (LSN, H]
// changed are dropped from its answer and evaluated from their documents
// at the LSN, and the answer is put in the order the LSN's own view
// would list it. Nothing is materialised. The fingerprint is read before
// and after the query, so that an application's write in between
// (through argon serve) makes the read fall back to a view.
//
// It does not apply, and the read goes on as before, when the database
// is not built or not known clean, on MongoDB (argon cannot see its
// files), for the reads the overlay cannot merge (overlayable), and when
// the commits since the LSN change an index of the collection or more
// than overlayKeys of its keys.

// OverHead lets reads be laid over w's working database. w must be opened
// from the branch's own record, and the state read must be on the
// ancestry of its timeline.
func (v *CollViews) OverHead(w *Branch) { v.head = w }

// headFind answers q on coll at (v.TL, v.LSN) over the working database
// of v.head when it can (ok false: it did nothing the caller must undo).
func (v *CollViews) headFind(ctx context.Context, coll string, q Query) (out []bson.Raw, ok bool, err error) {
	w := v.head
	if w == nil || w.Files == nil || v.r.NoImages {
		return nil, false, nil
	}
	oq, ok := overlayable(q)
	if !ok {
		return nil, false, nil
	}
	if built, err := w.Built(ctx); err != nil || !built {
		return nil, false, err
	}
	var baseDocs []bson.Raw
	var touched map[string]bool
	err = w.Protocol.Read(ctx, w, func(m *Marker) error {
		baseDocs, touched, ok = nil, nil, false
		if m.LSN < v.LSN {
			return nil
		}
		before := w.cleanFingerprint()
		if before == "" {
			return nil
		}
		keys, kok, err := touchedKeys(ctx, v.r, w.TL, v.LSN, m.LSN, coll)
		if err != nil || !kok {
			return err
		}
		// Without skip or limit: the working database's order is not
		// the view's (an update of many documents writes them back at
		// the end), so they apply after the merge.
		all := oq.q
		all.Skip, all.Limit = 0, 0
		docs, err := find(ctx, w.DB.Collection(coll), all)
		if err != nil {
			// As over a view: the server may refuse a projection on a
			// document the LSN's own view does not hold.
			return ctx.Err()
		}
		if w.cleanFingerprint() != before {
			return nil // written meanwhile
		}
		baseDocs, touched, ok = docs, keys, true
		return nil
	})
	if err != nil || !ok {
		return nil, false, err
	}
	return v.laidOver(ctx, coll, oq, baseDocs, touched)
}

// cleanFingerprint returns the fingerprint of the working database's
// files when it is the one recorded clean, else "".
func (w *Branch) cleanFingerprint() string {
	fp, err := w.Files.Fingerprint(w.DB.Name())
	if err != nil || fp == "" || fp != w.Files.Clean(w.DB.Name()) {
		return ""
	}
	return fp
}

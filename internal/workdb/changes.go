package workdb

import (
	"bytes"
	"context"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
)

// Change kinds, as git names them for a working tree.
const (
	Added    = "added"
	Modified = "modified"
	Deleted  = "deleted"
)

// Change is one document an application changed in a working database,
// outside argon: compared with the branch's committed head.
type Change struct {
	Coll string
	Kind string
	// Index is set for an index created, dropped or redefined: ID is then
	// its name, Doc and Was its specifications.
	Index bool
	ID    bson.RawValue
	// Doc is the document as the working database holds it; nil when
	// deleted. Was is the committed document; nil when added.
	Doc bson.Raw
	Was bson.Raw
}

// Changes lists what applications changed in the working database since
// the committed head, sorted by collection, kind and _id. It folds the
// log at the head and scans the database: it costs a read of both.
func (w *Branch) Changes(ctx context.Context) ([]Change, int64, error) {
	var out []Change
	var head int64
	// clean is the files' fingerprint when the try found the database
	// clean by a scan. It is recorded once the protocol has accepted the
	// try (a rejected try compared with a marker that was no longer the
	// committed state: found by an adversarial review), right away under
	// the branch's lease, where the try is the accepted one: the release
	// after it may write the database, and keeps a record made before.
	var clean string
	err := w.Protocol.Read(ctx, w, func(m *Marker) error {
		head, clean = m.LSN, ""
		if m.Sums != nil {
			// On the embedded engine, files byte for byte as they were
			// when a scan found the database clean hold the same
			// documents: clean, without reading them.
			fp := ""
			if w.Files != nil {
				if f, err := w.Files.Fingerprint(w.DB.Name()); err == nil {
					fp = f
					if fp == w.Files.Clean(w.DB.Name()) {
						out = nil
						return nil
					}
				}
			}
			// The fingerprint of what the database holds now against the
			// committed one: equal means nothing changed, and the log need
			// not be folded.
			now, kept, err := scanSums(ctx, w.DB, true, m.Sums)
			if err != nil {
				return err
			}
			defer kept.Close()
			if !now.Equal(m.Sums) {
				// Changed: compared with the log from what the scan
				// read, without reading the database again.
				out, err = w.diffKept(ctx, head, kept)
				return err
			}
			// Recorded only when the files did not change during the scan:
			// then the scan saw exactly the files of fp.
			if fp != "" {
				if f, err := w.Files.Fingerprint(w.DB.Name()); err == nil && f == fp {
					if m.Held {
						_ = w.Files.SetClean(w.DB.Name(), fp)
					} else {
						clean = fp
					}
				}
			}
			out = nil
			return nil
		}
		var err error
		out, err = w.diff(ctx, head)
		return err
	})
	if err == nil && clean != "" {
		_ = w.Files.SetClean(w.DB.Name(), clean)
	}
	return out, head, err
}

func (w *Branch) diff(ctx context.Context, head int64) ([]Change, error) {
	_, kept, err := scanSums(ctx, w.DB, true, nil)
	if err != nil {
		return nil, err
	}
	defer kept.Close()
	return w.diffKept(ctx, head, kept)
}

// diffKept compares kept, a scan of every collection of the working
// database (scanSums), with the committed state at head streamed from the
// log (wal.FoldEach): it holds each scanned document's key and 128-bit
// hash (docSum, the fingerprint's), the committed versions of the
// documents that differ, and the committed index specifications, not the
// state. Without kept (the scan passed its ReadMemory.Keep) it folds the state and
// reads the database again (diffState).
func (w *Branch) diffKept(ctx context.Context, head int64, kept *scanned) ([]Change, error) {
	if kept == nil {
		return w.diffState(ctx, head, nil)
	}
	type side struct {
		scan    map[string]sum      // key -> hash, of scanned documents the state has not matched yet
		was     map[string]bson.Raw // key -> committed version, of those that differ
		deleted []Change
		indexes []bson.Raw
	}
	var sides map[string]*side
	start := func() error {
		sides = map[string]*side{}
		for coll := range kept.same {
			sides[coll] = &side{}
		}
		for coll, d := range kept.docs {
			sd := &side{scan: map[string]sum{}, was: map[string]bson.Raw{}}
			if err := d.Each(func(doc bson.Raw) error {
				sd.scan[string(wal.KeyOf(doc.Lookup("_id")))] = docSum(doc)
				return nil
			}); err != nil {
				return err
			}
			sides[coll] = sd
		}
		return nil
	}
	if err := start(); err != nil {
		return nil, err
	}
	of := func(coll string) *side {
		sd := sides[coll]
		if sd == nil { // a collection the working database lacks
			sd = &side{scan: map[string]sum{}, was: map[string]bson.Raw{}}
			sides[coll] = sd
		}
		return sd
	}
	if _, err := w.Repo.FoldEach(ctx, w.TL, head, "", wal.StateSink{
		Doc: func(coll string, doc bson.Raw) error {
			if kept.same[coll] {
				return nil // unchanged: the database holds these
			}
			sd := of(coll)
			k := string(wal.KeyOf(doc.Lookup("_id")))
			h, ok := sd.scan[k]
			switch {
			case !ok:
				was := append(bson.Raw(nil), doc...)
				sd.deleted = append(sd.deleted, Change{Coll: coll, Kind: Deleted, ID: was.Lookup("_id"), Was: was})
			case h != docSum(doc):
				sd.was[k] = append(bson.Raw(nil), doc...)
			}
			delete(sd.scan, k)
			return nil
		},
		Index: func(coll string, spec bson.Raw) error {
			sd := of(coll)
			sd.indexes = append(sd.indexes, append(bson.Raw(nil), spec...))
			return nil
		},
		Reset: start,
	}); err != nil {
		return nil, err
	}
	var out []Change
	for coll, sd := range sides {
		out = append(out, sd.deleted...)
		// What is left in scan the state does not hold: added; was
		// names those that differ: modified. Their documents are the
		// scan's.
		if d := kept.docs[coll]; d != nil && len(sd.scan)+len(sd.was) > 0 {
			if err := d.Each(func(cur bson.Raw) error {
				k := string(wal.KeyOf(cur.Lookup("_id")))
				_, added := sd.scan[k]
				was, modified := sd.was[k]
				if !added && !modified {
					return nil
				}
				doc := append(bson.Raw(nil), cur...)
				if added {
					out = append(out, Change{Coll: coll, Kind: Added, ID: doc.Lookup("_id"), Doc: doc})
				} else {
					out = append(out, Change{Coll: coll, Kind: Modified, ID: doc.Lookup("_id"), Doc: doc, Was: was})
				}
				return nil
			}); err != nil {
				return nil, err
			}
		}
		ic, err := indexChanges(ctx, w.DB, coll, sd.indexes)
		if err != nil {
			return nil, err
		}
		out = append(out, ic...)
	}
	sortChanges(out)
	return out, nil
}

// diffState is diff against st, the state at head when not nil (else it
// folds it), reading the database.
func (w *Branch) diffState(ctx context.Context, head int64, st *wal.State) ([]Change, error) {
	if st == nil {
		var err error
		if st, err = w.Repo.Fold(ctx, w.TL, head, ""); err != nil {
			return nil, err
		}
	}
	names, err := w.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	colls := map[string]bool{}
	for _, n := range names {
		if n != MarkerCollection {
			colls[n] = true
		}
	}
	for _, n := range st.Collections() {
		colls[n] = true
	}
	var out []Change
	for coll := range colls {
		committed := map[string]bson.Raw{}
		for _, d := range st.Docs(coll) {
			committed[string(wal.KeyOf(d.Lookup("_id")))] = d
		}
		compare := func(cur bson.Raw) error {
			k := string(wal.KeyOf(cur.Lookup("_id")))
			was, ok := committed[k]
			switch {
			case !ok:
				doc := append(bson.Raw(nil), cur...)
				out = append(out, Change{Coll: coll, Kind: Added, ID: doc.Lookup("_id"), Doc: doc})
			case !bytes.Equal(was, cur):
				doc := append(bson.Raw(nil), cur...)
				out = append(out, Change{Coll: coll, Kind: Modified, ID: doc.Lookup("_id"), Doc: doc, Was: was})
			}
			delete(committed, k)
			return nil
		}
		if err := eachDoc(ctx, w.DB.Collection(coll), compare); err != nil {
			return nil, err
		}
		for _, d := range committed {
			out = append(out, Change{Coll: coll, Kind: Deleted, ID: d.Lookup("_id"), Was: d})
		}
		ic, err := indexChanges(ctx, w.DB, coll, st.Indexes(coll))
		if err != nil {
			return nil, err
		}
		out = append(out, ic...)
	}
	sortChanges(out)
	return out, nil
}

// sortChanges orders changes by collection, kind, then _id (numbers by
// value: 5 before 34 before 105, then the rest).
func sortChanges(out []Change) {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Coll != b.Coll {
			return a.Coll < b.Coll
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return idLess(a.ID, b.ID)
	})
}

// indexChanges compares the indexes of coll in db with the committed
// specifications, by name.
func indexChanges(ctx context.Context, db *mongo.Database, coll string, committed []bson.Raw) ([]Change, error) {
	have, err := listIndexes(ctx, db, coll)
	if err != nil {
		return nil, err
	}
	want := map[string]bson.Raw{}
	for _, spec := range committed {
		want[spec.Lookup("name").StringValue()] = spec
	}
	var out []Change
	for _, spec := range have {
		nameV := spec.Lookup("name")
		name := nameV.StringValue()
		was, ok := want[name]
		switch {
		case !ok:
			out = append(out, Change{Coll: coll, Kind: Added, Index: true, ID: nameV, Doc: spec})
		case !bytes.Equal(indexSpec(was), indexSpec(spec)):
			out = append(out, Change{Coll: coll, Kind: Modified, Index: true, ID: nameV, Doc: spec, Was: was})
		}
		delete(want, name)
	}
	for _, spec := range want {
		out = append(out, Change{Coll: coll, Kind: Deleted, Index: true, ID: spec.Lookup("name"), Was: spec})
	}
	return out, nil
}

// CommitChanges records what applications changed in the working database
// as one commit: puts for added and modified documents (as the database
// holds them), deletes for deleted ones. With nothing changed it makes no
// commit.
func (w *Branch) CommitChanges(ctx context.Context, info wal.CommitInfo, lim Limits) ([]Change, *wal.Commit, int64, error) {
	var changes []Change
	// The lease names no keys, known: this write changes nothing in the
	// working database, so a writer killed during it leaves nothing to
	// repair, and the changes stay for the next commit (found by review:
	// with unknown keys the next holder rebuilt the database, and the
	// changes a killed commit was recording were lost).
	cm, head, err := w.write(ctx, info, []wal.KeyRef{}, func(ctx context.Context) ([]wal.Entry, error) {
		var err error
		if changes, err = w.diff(ctx, w.base); err != nil {
			return nil, err
		}
		entries := make([]wal.Entry, 0, len(changes))
		for _, c := range changes {
			if c.Index {
				w.changedIndex(c.Coll, c.Was, c.Doc)
				name := c.ID.StringValue()
				if c.Kind == Deleted {
					entries = append(entries, wal.DropIndexEntry(c.Coll, name))
					continue
				}
				e, err := wal.IndexEntry(c.Coll, c.Doc)
				if err != nil {
					return nil, err
				}
				entries = append(entries, e)
				continue
			}
			w.changed(c.Coll, c.Was, c.Doc)
			if c.Kind == Deleted {
				entries = append(entries, wal.DelEntry(c.Coll, c.ID))
				continue
			}
			if err := CheckDocument(c.Doc, Limits{}); err != nil {
				return nil, &DocumentError{Index: -1, Msg: "document " + FormatValue(c.ID) + " in " + c.Coll + ": " + err.Error()}
			}
			e, err := wal.PutEntry(c.Coll, c.Doc)
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		}
		return entries, nil
	})
	if err == nil && cm != nil && w.Files != nil {
		// The database now holds exactly the committed state: recorded
		// clean by a process that runs the engine itself (no one else
		// can have written); under argon serve, KeepClean records only
		// a database that was clean when this process first looked.
		_ = w.Files.KeepClean(w.DB.Name())
	}
	return changes, cm, head, err
}

// Restore discards what applications changed in the working database: it
// is rebuilt from the log at the committed head.
func (w *Branch) Restore(ctx context.Context) (int64, error) {
	return w.Protocol.Restore(ctx, w)
}

// Built reports whether the working database exists: argon built it (it
// has its marker), or an application filled it (it holds data without a
// marker, and what it holds is uncommitted work). A branch whose database
// was never built and holds nothing has no changes to show.
func (w *Branch) Built(ctx context.Context) (bool, error) {
	m, err := w.Marker(ctx)
	if err != nil || m != nil {
		w.seen = m
		return m != nil, err
	}
	return w.HasData(ctx)
}

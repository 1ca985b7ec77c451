package workdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal"
)

// viewsCollection, in the metadata database, maps a state (timeline, LSN)
// to the database that holds it materialised.
const viewsCollection = "views"

type viewRecord struct {
	ID  string `bson:"_id"`
	TL  string `bson:"tl"`
	LSN int64  `bson:"lsn"`
	// Coll is set on a view of one collection of the state (CollViews);
	// a view without it holds the whole state.
	Coll    string    `bson:"coll,omitempty"`
	DB      string    `bson:"db"`
	Created time.Time `bson:"created_at"`
}

// View is the read-only state of a timeline at one LSN, materialised in a
// database of its own: time travel is answered by the server with the full
// query language, exactly as on a branch head.
type View struct {
	DB  *mongo.Database
	TL  string
	LSN int64
	// Built reports that this call materialised the view (false: reused).
	Built bool
	// sqlite is set on the embedded engine (see countDocs).
	sqlite bool
}

func viewID(tl string, lsn int64) string { return fmt.Sprintf("%s:%012d", tl, lsn) }

// viewPrefix starts the names of view databases of this repo.
func viewPrefix(r *wal.Repo) string {
	return r.DatabasePrefix() + "-view-"
}

// OpenView returns the state of timeline tl at lsn, materialising it on
// first use and reusing it after. Views are immutable, so none is ever
// rebuilt: two processes that build the same one at once both build, the
// first to publish wins and the other drops its copy.
func OpenView(ctx context.Context, r *wal.Repo, tl string, lsn int64) (*View, error) {
	views := r.DB.Collection(viewsCollection)
	var rec viewRecord
	err := views.FindOne(ctx, bson.D{{Key: "_id", Value: viewID(tl, lsn)}}).Decode(&rec)
	if err == nil {
		return &View{DB: r.Client.Database(rec.DB), TL: tl, LSN: lsn, sqlite: r.Embedded}, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, err
	}
	db, err := buildView(ctx, r, tl, lsn, "")
	if err != nil {
		return nil, err
	}
	rec = viewRecord{ID: viewID(tl, lsn), TL: tl, LSN: lsn, DB: db.Name(), Created: time.Now().UTC()}
	if _, err := views.InsertOne(ctx, rec); err != nil {
		_ = db.Drop(context.WithoutCancel(ctx))
		if mongo.IsDuplicateKeyError(err) {
			return OpenView(ctx, r, tl, lsn)
		}
		return nil, err
	}
	return &View{DB: db, TL: tl, LSN: lsn, Built: true, sqlite: r.Embedded}, nil
}

func collViewID(tl string, lsn int64, coll string) string { return viewID(tl, lsn) + "/" + coll }

// CollViews answers reads of the state of timeline tl at one LSN one
// collection at a time: a collection is materialised on its first read,
// alone, in a database of its own, and reused after. A read of one
// collection of a state of many then folds and inserts that collection
// only. A view of the whole state (OpenView), when one exists, answers
// for every collection.
type CollViews struct {
	r   *wal.Repo
	TL  string
	LSN int64
	// Built, when set, is told what a read materialised: a collection's
	// name, or "" for the whole state, and the LSN of the state (LSN, or
	// the LSN of the image a read of LSN was laid over).
	Built func(coll string, lsn int64)
	dbs   map[string]*mongo.Database
	full  *View
	// head is the branch whose working database reads may be laid over
	// (OverHead; headbase.go), or nil.
	head *Branch
}

// OpenCollViews returns the reader of (tl, lsn) by collection. It reads
// nothing yet.
func OpenCollViews(r *wal.Repo, tl string, lsn int64) *CollViews {
	return &CollViews{r: r, TL: tl, LSN: lsn, dbs: map[string]*mongo.Database{}}
}

// db returns the database that holds coll of the state, materialising it
// on first use. Views are immutable, so none is ever rebuilt: of two
// processes that build one at once, the first to publish wins and the
// other drops its copy.
func (v *CollViews) db(ctx context.Context, coll string) (*mongo.Database, error) {
	for {
		db, err := v.existing(ctx, coll)
		if err != nil || db != nil {
			return db, err
		}
		db, err = buildView(ctx, v.r, v.TL, v.LSN, coll)
		if err != nil {
			return nil, err
		}
		views := v.r.DB.Collection(viewsCollection)
		rec := viewRecord{ID: collViewID(v.TL, v.LSN, coll), TL: v.TL, LSN: v.LSN, Coll: coll, DB: db.Name(), Created: time.Now().UTC()}
		if _, err := views.InsertOne(ctx, rec); err != nil {
			_ = db.Drop(context.WithoutCancel(ctx))
			if mongo.IsDuplicateKeyError(err) {
				continue // another process published it first: read theirs
			}
			return nil, err
		}
		if v.Built != nil {
			v.Built(coll, v.LSN)
		}
		v.dbs[coll] = db
		return db, nil
	}
}

// existing returns the database of a view that holds coll of the state
// (of the whole state, or of coll), or nil when there is none yet.
func (v *CollViews) existing(ctx context.Context, coll string) (*mongo.Database, error) {
	if v.full != nil {
		return v.full.DB, nil
	}
	if db := v.dbs[coll]; db != nil {
		return db, nil
	}
	views := v.r.DB.Collection(viewsCollection)
	var rec viewRecord
	err := views.FindOne(ctx, bson.D{{Key: "_id", Value: viewID(v.TL, v.LSN)}}).Decode(&rec)
	if err == nil {
		v.full = &View{DB: v.r.Client.Database(rec.DB), TL: v.TL, LSN: v.LSN, sqlite: v.r.Embedded}
		return v.full.DB, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, err
	}
	err = views.FindOne(ctx, bson.D{{Key: "_id", Value: collViewID(v.TL, v.LSN, coll)}}).Decode(&rec)
	if err == nil {
		v.dbs[coll] = v.r.Client.Database(rec.DB)
		return v.dbs[coll], nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, err
	}
	return nil, nil
}

// overlay answers q on coll over the branch's working database
// (headbase.go) or the nearest image's view (overlay.go) when no view of
// the state holds coll yet and the read allows it.
func (v *CollViews) overlay(ctx context.Context, coll string, q Query) ([]bson.Raw, bool, error) {
	db, err := v.existing(ctx, coll)
	if err != nil || db != nil {
		return nil, false, err
	}
	if out, ok, err := v.headFind(ctx, coll, q); ok || err != nil {
		return out, ok, err
	}
	return v.overlayFind(ctx, coll, q)
}

// Find runs q on coll in the state.
func (v *CollViews) Find(ctx context.Context, coll string, q Query) ([]bson.Raw, error) {
	if out, ok, err := v.overlay(ctx, coll, q); ok || err != nil {
		return out, err
	}
	return v.findOwn(ctx, coll, q)
}

// FindTo is Find into d. A read answered from a view of the state itself
// holds one batch of the server's in memory when d.Spill is set; one laid
// over another state (an image's view, the branch's working database)
// holds its answer whole, as Find.
func (v *CollViews) FindTo(ctx context.Context, coll string, q Query, d *Docs) error {
	out, ok, err := v.overlay(ctx, coll, q)
	if err != nil {
		return err
	}
	if ok {
		if err := d.Reset(); err != nil {
			return err
		}
		for _, doc := range out {
			if err := d.Add(doc); err != nil {
				return err
			}
		}
		return nil
	}
	return v.withView(ctx, coll, func(db *mongo.Database) error {
		return findInto(ctx, db.Collection(coll), q, d)
	})
}

// findOwn runs q on coll in a view of the state itself.
func (v *CollViews) findOwn(ctx context.Context, coll string, q Query) (out []bson.Raw, err error) {
	err = v.withView(ctx, coll, func(db *mongo.Database) error {
		out, err = find(ctx, db.Collection(coll), q)
		return err
	})
	return out, err
}

// withView runs read on the view that holds coll of the state
// (materialising it on first use), then checks that the view's database
// is still there: gc deletes a view's record and then drops its
// database, and a database may be dropped by hand, and a read of a
// dropped database finds nothing. When it is gone, its records are
// forgotten and the read runs again on a view built anew.
func (v *CollViews) withView(ctx context.Context, coll string, read func(*mongo.Database) error) error {
	for try := 0; ; try++ {
		db, err := v.db(ctx, coll)
		if err != nil {
			return err
		}
		if err := read(db); err != nil {
			return err
		}
		ok, err := v.intact(ctx, db)
		if err != nil || ok {
			return err
		}
		if try == 2 {
			return fmt.Errorf("the view %s of %s at LSN %d was dropped while it was read, three times", db.Name(), coll, v.LSN)
		}
	}
}

// intact reports whether view database db still holds its owner record.
// When not, the records that name it are deleted, so that the next read
// builds the view again.
func (v *CollViews) intact(ctx context.Context, db *mongo.Database) (bool, error) {
	o, err := v.r.DBOwner(ctx, db.Name())
	if err != nil || o != nil {
		return err == nil, err
	}
	if v.full != nil && v.full.DB.Name() == db.Name() {
		v.full = nil
	}
	for c, d := range v.dbs {
		if d.Name() == db.Name() {
			delete(v.dbs, c)
		}
	}
	_, err = v.r.DB.Collection(viewsCollection).DeleteMany(ctx, bson.D{{Key: "db", Value: db.Name()}})
	return false, err
}

// idOnly is the projection of a count over an image's view.
var idOnly, _ = bson.Marshal(bson.D{{Key: "_id", Value: 1}})

// Count counts the documents of coll filter matches in the state.
func (v *CollViews) Count(ctx context.Context, coll string, filter bson.Raw) (int64, error) {
	if ids, ok, err := v.overlay(ctx, coll, Query{Filter: filter, Projection: idOnly}); ok || err != nil {
		return int64(len(ids)), err
	}
	var n int64
	err := v.withView(ctx, coll, func(db *mongo.Database) (err error) {
		n, err = countDocs(ctx, db.Collection(coll), filter, v.r.Embedded)
		return err
	})
	return n, err
}

// HasCollection reports whether coll holds documents or indexes in the
// state. Without a view that holds coll, it folds the log rather than
// materialise one: reads answered over an image's view ask it when they
// found nothing.
func (v *CollViews) HasCollection(ctx context.Context, coll string) (bool, error) {
	db, err := v.existing(ctx, coll)
	if err != nil {
		return false, err
	}
	if db != nil {
		found, err := exists(ctx, db, coll)
		if err != nil {
			return false, err
		}
		if ok, err := v.intact(ctx, db); err != nil || ok {
			return found, err
		}
	}
	st, err := v.r.Fold(ctx, v.TL, v.LSN, coll)
	if err != nil {
		return false, err
	}
	return len(st.Collections()) > 0, nil
}

// Indexes lists coll's index specifications in the state.
func (v *CollViews) Indexes(ctx context.Context, coll string) (specs []bson.Raw, err error) {
	err = v.withView(ctx, coll, func(db *mongo.Database) error {
		specs, err = listIndexes(ctx, db, coll)
		return err
	})
	return specs, err
}

// Collections lists the state's collections with their counts: it
// materialises the whole state.
func (v *CollViews) Collections(ctx context.Context) ([]CollectionInfo, error) {
	if err := v.openFull(ctx); err != nil {
		return nil, err
	}
	return v.full.Collections(ctx)
}

// CollectionNames names the state's collections: it materialises the
// whole state, as Collections, without counting.
func (v *CollViews) CollectionNames(ctx context.Context) ([]string, error) {
	if err := v.openFull(ctx); err != nil {
		return nil, err
	}
	return CollectionNames(ctx, v.full.DB)
}

// openFull opens the view of the whole state, materialising it when none
// exists.
func (v *CollViews) openFull(ctx context.Context) error {
	if v.full == nil {
		full, err := OpenView(ctx, v.r, v.TL, v.LSN)
		if err != nil {
			return err
		}
		if full.Built && v.Built != nil {
			v.Built("", v.LSN)
		}
		v.full = full
	}
	return nil
}

// buildView materialises the state of tl at lsn (only coll, when not
// empty) in a new database of its own, with its indexes.
func buildView(ctx context.Context, r *wal.Repo, tl string, lsn int64, coll string) (*mongo.Database, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := r.Client.Database(viewPrefix(r) + hex.EncodeToString(b[:]))
	// Its owner record first: gc drops an unpublished view only when it
	// is this repo's, and old enough not to be in the making.
	if _, err := r.ClaimOwner(ctx, db.Name(), ""); err != nil {
		return nil, err
	}
	p := progressFor(ctx, fmt.Sprintf("materialising LSN %d", lsn))
	defer p.Done()
	if _, err := materialise(ctx, r, db, tl, lsn, coll, false, p); err != nil {
		_ = db.Drop(context.WithoutCancel(ctx))
		return nil, err
	}
	return db, nil
}

// Find runs q on coll in the view.
func (v *View) Find(ctx context.Context, coll string, q Query) ([]bson.Raw, error) {
	return find(ctx, v.DB.Collection(coll), q)
}

// FindTo is Find into d.
func (v *View) FindTo(ctx context.Context, coll string, q Query, d *Docs) error {
	return findInto(ctx, v.DB.Collection(coll), q, d)
}

// Count counts the documents filter matches in the view.
func (v *View) Count(ctx context.Context, coll string, filter bson.Raw) (int64, error) {
	return countDocs(ctx, v.DB.Collection(coll), filter, v.sqlite)
}

// HasCollection reports whether coll holds documents in the view.
func (v *View) HasCollection(ctx context.Context, coll string) (bool, error) {
	return exists(ctx, v.DB, coll)
}

// Collections lists the view's collections with their counts.
func (v *View) Collections(ctx context.Context) ([]CollectionInfo, error) {
	return collections(ctx, v.DB, v.sqlite)
}

// CollectionNames names the view's collections without counting.
func (v *View) CollectionNames(ctx context.Context) ([]string, error) {
	return CollectionNames(ctx, v.DB)
}

// orphanGrace is how long gc leaves a view or scratch database that no
// record names: a younger one may be being built or used.
const orphanGrace = time.Hour

// DropViews removes every materialised view of the repo (they are caches
// of the log), and any scratch database an interrupted update left, and
// returns how many databases it dropped.
func DropViews(ctx context.Context, r *wal.Repo) (int, error) {
	views := r.DB.Collection(viewsCollection)
	cur, err := views.Find(ctx, bson.D{})
	if err != nil {
		return 0, err
	}
	var recs []viewRecord
	if err := cur.All(ctx, &recs); err != nil {
		return 0, err
	}
	for _, rec := range recs {
		if _, err := views.DeleteOne(ctx, bson.D{{Key: "_id", Value: rec.ID}}); err != nil {
			return 0, err
		}
		if err := r.Client.Database(rec.DB).Drop(ctx); err != nil {
			return 0, err
		}
	}
	// Databases left by a build that died before publishing, and scratch
	// databases left by an update that died (bulk.go).
	names, err := r.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return len(recs), err
	}
	n := len(recs)
	for _, name := range names {
		if strings.HasPrefix(name, viewPrefix(r)) || strings.HasPrefix(name, scratchPrefix(r)) {
			// The prefix keeps 16 bits of the metadata database's name:
			// another metadata database's caches may share it.
			dropped, err := r.DropOwnedOrphan(ctx, name, orphanGrace)
			if err != nil {
				return n, err
			}
			if dropped {
				n++
			}
		}
	}
	return n, nil
}

// VerifyViews compares each view of the given timelines with a fold of the
// log at its state, and describes every view that differs. With repair,
// such views are dropped (they are rebuilt on next use).
func VerifyViews(ctx context.Context, r *wal.Repo, timelines map[string]bool, repair bool) (problems, repaired []string, err error) {
	views := r.DB.Collection(viewsCollection)
	cur, err := views.Find(ctx, bson.D{})
	if err != nil {
		return nil, nil, err
	}
	var recs []viewRecord
	if err := cur.All(ctx, &recs); err != nil {
		return nil, nil, err
	}
	for _, rec := range recs {
		if !timelines[rec.TL] {
			continue
		}
		st, err := r.Fold(ctx, rec.TL, rec.LSN, rec.Coll)
		if err != nil {
			return nil, nil, err
		}
		db := r.Client.Database(rec.DB)
		diff, err := stateDiff(ctx, db, st)
		if err != nil {
			return nil, nil, err
		}
		if diff == "" {
			continue
		}
		problems = append(problems, fmt.Sprintf("view of %s@%d (%s) differs from the log: %s", rec.TL, rec.LSN, rec.DB, diff))
		if repair {
			if _, err := views.DeleteOne(ctx, bson.D{{Key: "_id", Value: rec.ID}}); err != nil {
				return nil, nil, err
			}
			if err := db.Drop(ctx); err != nil {
				return nil, nil, err
			}
			repaired = append(repaired, "dropped view "+rec.DB+" (it is rebuilt on next use)")
		}
	}
	return problems, repaired, nil
}

// stateDiff describes how db differs from st, or returns "".
func stateDiff(ctx context.Context, db *mongo.Database, st *wal.State) (string, error) {
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return "", err
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
	missing, extra, changed := 0, 0, 0
	for coll := range colls {
		want := map[string]bson.Raw{}
		for _, d := range st.Docs(coll) {
			want[string(wal.KeyOf(d.Lookup("_id")))] = d
		}
		cur, err := db.Collection(coll).Find(ctx, bson.D{})
		if err != nil {
			return "", err
		}
		for cur.Next(ctx) {
			k := string(wal.KeyOf(cur.Current.Lookup("_id")))
			d, ok := want[k]
			switch {
			case !ok:
				extra++
			case !bytes.Equal(d, cur.Current):
				changed++
			}
			delete(want, k)
		}
		err = cur.Err()
		_ = cur.Close(ctx)
		if err != nil {
			return "", err
		}
		missing += len(want)
	}
	if missing+extra+changed == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d documents missing, %d extra, %d different", missing, extra, changed), nil
}

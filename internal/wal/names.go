package wal

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

var projectRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$`)

// ValidateProject checks a project name: 1-40 letters, digits, '_' or '-',
// starting with a letter or digit, so that it can name databases on every
// engine.
func ValidateProject(name string) error {
	if !projectRe.MatchString(name) {
		return &InvalidNameError{Kind: "project", Name: name,
			Why: "use 1-40 letters, digits, '_' or '-', starting with a letter or digit"}
	}
	return nil
}

// ValidateBranch checks a branch or tag name against git's ref-name rules,
// and refuses '@', which argon uses to write BRANCH@LSN.
func ValidateBranch(kind, name string) error {
	bad := func(why string) error { return &InvalidNameError{Kind: kind, Name: name, Why: why} }
	switch {
	case name == "":
		return bad("it is empty")
	case name == "HEAD":
		return bad("HEAD names the current branch in refs")
	case !utf8.ValidString(name):
		return bad("it is not valid UTF-8")
	case len(name) > 100:
		return bad("it is longer than 100 bytes")
	case strings.HasPrefix(name, "-"):
		return bad("it starts with '-'")
	case strings.Contains(name, ".."):
		return bad("it contains '..'")
	case strings.Contains(name, "//"):
		return bad("it contains '//'")
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return bad("it starts or ends with '/'")
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, ".lock"):
		return bad("it ends with '.' or '.lock'")
	case timelineIDForm.MatchString(name):
		// Refs read it as a timeline id (TIMELINE@LSN, as argon reflog
		// prints a deleted branch's positions): the name would hide it.
		return bad("it has the form of a timeline id (24 hexadecimal digits), which refs use for deleted branches' history")
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return bad("a component starts with '.'")
		}
	}
	for _, r := range name {
		switch {
		case r <= ' ' || r == 0x7f:
			return bad("it contains a space or control character")
		case strings.ContainsRune("~^:?*[\\@", r):
			return bad(fmt.Sprintf("it contains %q", r))
		}
	}
	return nil
}

var dbUnsafe = regexp.MustCompile(`[^a-z0-9_-]`)

// timelineIDForm is the form of a timeline id in refs (internal/refs).
var timelineIDForm = regexp.MustCompile(`^[0-9a-f]{24}$`)

// WorkingDatabaseName derives the name of a branch's working database from
// the project and branch names. The result is valid on MongoDB and on the
// embedded engine (letters, digits, '_' and '-', at most 63 bytes). Names
// that had to be changed get a hash suffix, so that two branches never share
// a database, even when they differ only in case.
//
// prefix keeps the working databases of different metadata databases on one
// server apart: "ar_" for the default one, "ar" and a hash of its name
// otherwise (see Repo.WorkingDatabaseName).
func WorkingDatabaseName(prefix, project, branch string) string {
	clean := dbUnsafe.ReplaceAllString(strings.ToLower(branch), "_")
	name := prefix + strings.ToLower(project) + "__" + clean
	if clean != branch || strings.ToLower(project) != project || len(name) > 63 {
		sum := sha1.Sum([]byte(project + "\x00" + branch))
		suffix := "_" + hex.EncodeToString(sum[:4])
		if len(name) > 63-len(suffix) {
			name = name[:63-len(suffix)]
		}
		name += suffix
	}
	return name
}

// WorkingDatabaseName names the working database of a branch of project.
func (r *Repo) WorkingDatabaseName(project, branch string) string {
	return WorkingDatabaseName(r.DatabasePrefix(), project, branch)
}

// DatabasePrefix starts the name of every database this repo creates:
// "ar_" for the default metadata database, "ar" and a hash of its name
// otherwise. Working databases follow it with the project name, which
// starts with a letter or digit; other databases (views) follow it with
// '-', so the two never collide.
func (r *Repo) DatabasePrefix() string { return DatabasePrefix(r.DB.Name()) }

// DatabasePrefix is Repo.DatabasePrefix for the metadata database metaDB.
func DatabasePrefix(metaDB string) string {
	if metaDB != DefaultDatabase && metaDB != "" {
		sum := sha1.Sum([]byte(metaDB))
		return "ar" + hex.EncodeToString(sum[:2]) + "_"
	}
	return "ar_"
}

// reserveDB reserves a working database name for new branch b by a unique
// insert into the workdbs collection: the readable name derived from
// project and branch, or, when another branch, project or the metadata
// database holds that one, the readable name with a suffix from b's
// incarnation. No two bindings of this metadata database can ever share a
// working database.
//
// The reservation only sees this metadata database. A database of that
// name may already exist on the server: an application's, or a working
// database of another metadata database whose name prefix hashes the same
// (DatabasePrefix keeps 16 bits). So the name must also be free on the
// server: hold nothing that is not this repo's (freeDB); a name that is
// not is given up and the next one tried. The database is claimed (the
// unique insert of an owner record into it) when it is first built, not
// here: on the embedded engine every database is a file that every argon
// process opens at start, so creating one per branch made every command
// slower with each branch (measured: status 0.06 s -> 0.8 s with 100
// branches). Of two metadata databases that reserve the same free name,
// the first to build it owns it; the other finds its owner record and
// moves to a new name (workdb.Branch.own, RebindDB).
func (r *Repo) reserveDB(ctx context.Context, b *Branch) (string, error) {
	base := r.WorkingDatabaseName(b.Project, b.Name)
	for i := 0; i < 4; i++ {
		name := base
		if i > 0 {
			sum := sha1.Sum([]byte(b.Incarnation + strconv.Itoa(i)))
			suffix := "_" + hex.EncodeToString(sum[:5])
			if len(name) > 63-len(suffix) {
				name = name[:63-len(suffix)]
			}
			name += suffix
		}
		if name == r.DB.Name() {
			continue
		}
		_, err := r.DB.Collection(collWorkDBs).InsertOne(ctx, bson.D{{Key: "_id", Value: name},
			{Key: "project", Value: b.Project}, {Key: "branch", Value: b.Name}, {Key: "incarnation", Value: b.Incarnation}})
		if err != nil && !isDup(err) {
			return "", err
		}
		if err != nil {
			continue
		}
		ok, err := r.freeDB(ctx, name)
		if err == nil && ok {
			return name, nil
		}
		_, _ = r.DB.Collection(collWorkDBs).DeleteOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "incarnation", Value: b.Incarnation}})
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("could not reserve a working database name for branch %q", b.Name)
}

// DBMetaCollection is the collection argon keeps inside each working
// database: the owner record (here) and the marker (package workdb).
// Applications see it; argon never versions it.
const DBMetaCollection = "_argon"

const ownerID = "owner"

// Owner is the record in a working database that names the metadata
// database (and project) it belongs to. It is written by a unique insert
// when the name is reserved, and kept when the database is rebuilt, so
// that two metadata databases can never both take one database.
type Owner struct {
	ID      string    `bson:"_id"`
	Meta    string    `bson:"meta"`
	Project string    `bson:"project,omitempty"`
	Created time.Time `bson:"created_at,omitempty"`
}

// freeDB reports whether database name can be this repo's: it does not
// exist, or holds only what this repo left there (its owner record or
// marker: a working database of a branch since deleted).
func (r *Repo) freeDB(ctx context.Context, name string) (bool, error) {
	names, err := r.Client.Database(name).ListCollectionNames(ctx, bson.D{})
	if err != nil || len(names) == 0 {
		return err == nil, err
	}
	return r.OwnsDB(ctx, name)
}

// ClaimOwner writes this repo's owner record into database name, by a
// unique insert, and reports whether the database is this repo's: true
// when the insert succeeded or found this repo's record; false when
// another metadata database's record is there.
func (r *Repo) ClaimOwner(ctx context.Context, name, project string) (bool, error) {
	coll := r.Client.Database(name).Collection(DBMetaCollection)
	_, err := coll.InsertOne(ctx, Owner{ID: ownerID, Meta: r.DB.Name(), Project: project, Created: time.Now()})
	if err == nil || !isDup(err) {
		return err == nil, err
	}
	o, err := r.DBOwner(ctx, name)
	if err != nil {
		return false, err
	}
	return o != nil && o.Meta == r.DB.Name(), nil
}

// DBOwner returns the owner record of database name, or nil when it has
// none (a database from before owner records, or not argon's).
func (r *Repo) DBOwner(ctx context.Context, name string) (*Owner, error) {
	var o Owner
	err := r.Client.Database(name).Collection(DBMetaCollection).FindOne(ctx, bson.D{{Key: "_id", Value: ownerID}}).Decode(&o)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// OwnsDB reports whether the argon records in database name say it is this
// repo's: its owner record names this metadata database, or, in a
// database from before owner records, its marker names a timeline of this
// repo. A database without either is not known to be this repo's.
func (r *Repo) OwnsDB(ctx context.Context, name string) (bool, error) {
	cur, err := r.Client.Database(name).Collection(DBMetaCollection).Find(ctx, bson.D{})
	if err != nil {
		return false, err
	}
	var recs []struct {
		ID   string `bson:"_id"`
		Meta string `bson:"meta"`
		TL   string `bson:"tl"`
	}
	if err := cur.All(ctx, &recs); err != nil {
		return false, err
	}
	for _, rec := range recs {
		if rec.ID == ownerID {
			return rec.Meta == r.DB.Name(), nil
		}
	}
	for _, rec := range recs {
		if rec.Meta != "" {
			return rec.Meta == r.DB.Name(), nil
		}
		if rec.TL != "" {
			err := r.DB.Collection(collTimelines).FindOne(ctx, bson.D{{Key: "_id", Value: rec.TL}}).Err()
			if errors.Is(err, mongo.ErrNoDocuments) {
				return false, nil
			}
			return err == nil, err
		}
	}
	return false, nil
}

func (r *Repo) releaseDB(ctx context.Context, b *Branch) {
	if b.DB == "" {
		return
	}
	_, _ = r.DB.Collection(collWorkDBs).DeleteOne(ctx, bson.D{{Key: "_id", Value: b.DB}, {Key: "project", Value: b.Project}})
}

// ReservedBy reports whether database name is reserved as the working
// database of branch b (argon drops only databases it reserved).
func (r *Repo) ReservedBy(ctx context.Context, name string, b *Branch) bool {
	var rec struct {
		Project string `bson:"project"`
	}
	err := r.DB.Collection(collWorkDBs).FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&rec)
	return err == nil && rec.Project == b.Project
}

// CheckMetadataName refuses a metadata database name that argon uses, or
// could use, for working databases and views.
func CheckMetadataName(name string) error {
	bad := func(why string) error { return &InvalidNameError{Kind: "metadata database", Name: name, Why: why} }
	switch {
	case reservedPrefix.MatchString(name):
		return bad("names starting with 'ar_' or 'arXXXX_' are argon's working databases")
	case len(name) > 63:
		return bad("it is longer than 63 bytes, MongoDB's limit")
	case strings.ContainsAny(name, "/\\. \"$\x00*<>:|?"):
		return bad("MongoDB database names cannot contain /\\. \"$*<>:|? or spaces")
	case !utf8.ValidString(name):
		return bad("it is not valid UTF-8")
	}
	return nil
}

// reservedPrefix is matched without regard to case: MongoDB refuses a
// database whose name differs from an existing one's only in case, so
// "Ar_p__main" would stand in the way of argon's "ar_p__main".
var reservedPrefix = regexp.MustCompile(`(?i)^ar(_|[0-9a-f]{4}_)`)

// ArgonDatabase says why database db is argon's own, for commands that
// write to or read from a database the user names (export --to-db,
// import --from-db): it holds an argon log (its projects and slots
// collections, the slots with the log's unique index: a metadata
// database, of any name), or argon's records of a working database or cache (the _argon
// collection, marker and owner). "" when it does not. A name argon could
// use later needs no refusal: argon never takes a database an application
// has filled (reserveDB).
func ArgonDatabase(ctx context.Context, db *mongo.Database) (string, error) {
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: bson.A{collProjects, collSlots, DBMetaCollection}}}}})
	if err != nil {
		return "", err
	}
	switch {
	case slices.Contains(names, DBMetaCollection):
		return "it is a working database or cache of argon's", nil
	case slices.Contains(names, collProjects) && slices.Contains(names, collSlots):
		// Names alone are not enough: data of an application's can
		// have collections called projects and slots (review39). A
		// log's slots have the unique index EnsureSchema creates.
		specs, err := db.Collection(collSlots).Indexes().ListSpecifications(ctx)
		if err != nil {
			return "", err
		}
		for _, spec := range specs {
			if spec.Name == slotsIndex && spec.Unique != nil && *spec.Unique {
				return "it holds an argon log (a metadata database)", nil
			}
		}
	}
	return "", nil
}

// slotsIndex is the name of the unique index EnsureSchema puts on the
// slots collection, {tl: 1, n: 1}; argon serve knows a metadata database
// by it and the branches index (store.logIndexes).
const slotsIndex = "tl_1_n_1"

// DropOwnedOrphan drops database name, one of this repo's caches (a view
// or scratch database) that no record names, when its owner record says
// it is this repo's and is older than grace: a younger one may be in the
// middle of being built. Databases of another metadata database whose
// prefix hashes alike, and those without an owner record, are left alone.
// It reports whether it dropped the database.
func (r *Repo) DropOwnedOrphan(ctx context.Context, name string, grace time.Duration) (bool, error) {
	o, err := r.DBOwner(ctx, name)
	if err != nil || o == nil || o.Meta != r.DB.Name() || time.Since(o.Created) < grace {
		return false, err
	}
	return true, r.Client.Database(name).Drop(ctx)
}

// RebindDB gives branch name of project a newly reserved working database
// when another metadata database owns old, the one it had, and returns
// the new name. The binding is changed only if it still names old (a
// concurrent rebind wins, and its name is returned); this repo's
// reservation of old is given up, so nothing of this repo claims it.
func (r *Repo) RebindDB(ctx context.Context, project, name, old string) (string, error) {
	b, err := r.Branch(ctx, project, name)
	if err != nil {
		return "", err
	}
	if cur := r.WorkingDatabase(b); cur != old {
		return cur, nil
	}
	fresh, err := r.reserveDB(ctx, b)
	if err != nil {
		return "", err
	}
	filter := bson.D{{Key: "_id", Value: b.ID}, {Key: "incarnation", Value: b.Incarnation}, {Key: "db", Value: b.DB}}
	if b.DB == "" { // a binding from before names were kept on it
		filter[2] = bson.E{Key: "db", Value: bson.D{{Key: "$exists", Value: false}}}
	}
	res, err := r.DB.Collection(collBranches).UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "db", Value: fresh}}}})
	if err != nil || res.ModifiedCount == 0 {
		r.releaseDB(ctx, &Branch{Project: project, DB: fresh})
		if err != nil {
			return "", err
		}
		if b, err = r.Branch(ctx, project, name); err != nil {
			return "", err
		}
		return r.WorkingDatabase(b), nil
	}
	_, _ = r.DB.Collection(collWorkDBs).DeleteOne(ctx, bson.D{{Key: "_id", Value: old}, {Key: "project", Value: project}})
	return fresh, nil
}

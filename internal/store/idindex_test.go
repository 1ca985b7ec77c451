package store

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// plan returns SQLite's plan for the query the embedded engine runs for a
// find by a string _id on table (its IDColumn expression).
func plan(t *testing.T, file, table string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"x"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return strings.Join(out, "; ")
}

// tableOf returns the engine's table of collection coll in file.
func tableOf(t *testing.T, file, coll string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRow(`SELECT table_name FROM `+metadataTable+` WHERE name = ?`, coll).Scan(&table); err != nil {
		t.Fatal(err)
	}
	return table
}

// startWithClient starts an engine over a new data folder for the test,
// and returns the folder and a client of it.
func startWithClient(t *testing.T) (string, *mongo.Client) {
	t.Helper()
	dir := t.TempDir()
	return dir, engineClient(t, dir)
}

// engineClient starts an engine over data folder dir until the test ends,
// and returns a client of it.
func engineClient(t *testing.T, dir string) *mongo.Client {
	t.Helper()
	e, err := StartEngine(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	client, err := mongo.Connect(options.Client().ApplyURI(e.URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}

// Without argon's index the engine's lookup by _id reads the whole table
// (its own index is on another expression); with it, SQLite searches the
// index. The index is invisible to the engine: its collections, indexes,
// renames, index drops and collection drops work as before, including an
// index a user names like argon's.
func TestIndexIDs(t *testing.T) {
	dir, client := startWithClient(t)
	ctx := context.Background()
	db := client.Database("app")
	c := db.Collection("users")
	for i := 0; i < 50; i++ {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("u%d", i)}, {Key: "n", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "app.sqlite")
	table := tableOf(t, file, "users")
	if p := plan(t, file, table); !strings.HasPrefix(p, "SCAN") {
		t.Fatalf("plan before the index: %q, want a scan (has the engine fixed its lookup? then this index is not needed)", p)
	}
	s := &Store{dataDir: dir, Exclusive: true}
	if err := s.IndexIDs("app"); err != nil {
		t.Fatal(err)
	}
	if p, want := plan(t, file, table), "USING INDEX "+idIndexPrefix+table; !strings.Contains(p, want) {
		t.Fatalf("plan after the index: %q, want %q", p, want)
	}
	if err := s.IndexIDs("app"); err != nil { // nothing missing: nothing done
		t.Fatal(err)
	}
	if err := s.IndexIDs("nothere"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nothere.sqlite")); !os.IsNotExist(err) {
		t.Errorf("IndexIDs of a database without a file: %v, want no file made", err)
	}

	// The engine's view is unchanged, and its writes keep the index up to
	// date.
	if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetName("argon_id")}); err != nil {
		t.Fatal(err)
	}
	specs, err := c.Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "_id_,argon_id" {
		t.Errorf("indexes %v, want _id_ and argon_id", names)
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "late"}, {Key: "n", Value: 99}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "u7"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -7}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: "u8"}}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int32{"late": 99, "u7": -7, "u49": 49} {
		var got struct{ N int32 }
		if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil || got.N != want {
			t.Errorf("find %s: %v, n %d, want %d", id, err, got.N, want)
		}
	}
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "u8"}}).Err(); err != mongo.ErrNoDocuments {
		t.Errorf("find of a deleted document: %v", err)
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "u1"}}); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("insert of an existing _id: %v, want a duplicate key error", err)
	}
	if err := c.Indexes().DropAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "app.users"}, {Key: "to", Value: "app.people"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := db.Collection("people").FindOne(ctx, bson.D{{Key: "_id", Value: "u3"}}).Err(); err != nil {
		t.Errorf("find after a rename: %v", err)
	}
	if err := db.Collection("people").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("users").InsertOne(ctx, bson.D{{Key: "_id", Value: "again"}}); err != nil {
		t.Fatal(err)
	}
	again := tableOf(t, file, "users")
	if p := plan(t, file, again); !strings.HasPrefix(p, "SCAN") {
		t.Errorf("plan on a new table: %q, want a scan until argon indexes it", p)
	}
	if err := s.IndexIDs("app"); err != nil {
		t.Fatal(err)
	}
	if p := plan(t, file, again); !strings.Contains(p, idIndexPrefix+again) {
		t.Errorf("plan on the new table after IndexIDs: %q", p)
	}
	if err := db.Drop(ctx); err != nil {
		t.Fatal(err)
	}
}

// tableName is the engine's table name for collection coll (FerretDB's
// registry: the name lowercased, "_", its FNV-1a hash).
func tableName(coll string) string {
	h := fnv.New32a()
	h.Write([]byte(coll))
	return fmt.Sprintf("%s_%08x", strings.ToLower(coll), h.Sum32())
}

// No index the engine names can take the name of argon's: a collection
// whose table name starts like argon's index names, and an index named so
// that the engine's name for it would be argon's on another table (found
// by an adversarial review, with an earlier prefix).
func TestIndexIDsNamesAreArgons(t *testing.T) {
	dir, client := startWithClient(t)
	ctx := context.Background()
	db := client.Database("app")
	for _, first := range []string{"_argon_id_x", idIndexPrefix + "x"} {
		second := "x_" + tableName(first)[len(first)+1:] + "_y"
		for _, c := range []string{first, second} {
			if _, err := db.Collection(c).InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := (&Store{dataDir: dir, Exclusive: true}).IndexIDs("app"); err != nil {
			t.Fatal(err)
		}
		// The engine names this index tableName(first)+"_"+name: with
		// the names above, "<first's table>_y_<second's hash>".
		name := "y_" + tableName(second)[len(second)+1:]
		if _, err := db.Collection(first).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetName(name)}); err != nil {
			t.Errorf("collection %q: createIndex %q: %v", first, name, err)
		}
		file := filepath.Join(dir, "app.sqlite")
		for _, c := range []string{first, second} {
			if tb := tableOf(t, file, c); !strings.Contains(plan(t, file, tb), idIndexPrefix+tb) {
				t.Errorf("collection %q: plan %q, want argon's index", c, plan(t, file, tb))
			}
		}
		if err := db.Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Only the process the engine's files are exclusively for adds indexes:
// a client of argon serve does not (another connection on a file the
// engine drops and creates again lost a write, found by an adversarial
// review), and argon serve adds them to every database as it starts,
// before it lets clients in.
func TestIndexIDsOnlyByTheEnginesOwner(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	e, err := StartEngine(data, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(e.URI))
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"one", "two"} {
		if _, err := client.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}}); err != nil {
			t.Fatal(err)
		}
	}
	_ = client.Disconnect(ctx)
	e.Stop()

	ctx, cancel := context.WithCancel(ctx)
	uri, errc := make(chan string, 1), make(chan error, 1)
	go func() { errc <- Serve(ctx, dir, "127.0.0.1:0", 10*time.Second, func(u string) { uri <- u }) }()
	select {
	case <-uri:
	case err := <-errc:
		t.Fatal(err)
	}
	for _, db := range []string{"one", "two"} {
		file := filepath.Join(data, db+".sqlite")
		if tb := tableOf(t, file, "c"); !strings.Contains(plan(t, file, tb), idIndexPrefix+tb) {
			t.Errorf("database %s after the serve started: plan %q, want argon's index", db, plan(t, file, tb))
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// A collection created while an engine runs: the calls a client of a
	// serve makes leave it alone.
	client = engineClient(t, data)
	if _, err := client.Database("one").Collection("late").InsertOne(context.Background(), bson.D{{Key: "_id", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	served := &Store{dataDir: data, Served: true, Embedded: true}
	if err := served.IndexIDs("one"); err != nil {
		t.Fatal(err)
	}
	files := &DBFiles{dir: data, record: true, token: func(string) (string, error) { return "t", nil }}
	if err := files.IndexIDs("one"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(data, "one.sqlite")
	if tb := tableOf(t, file, "late"); !strings.HasPrefix(plan(t, file, tb), "SCAN") {
		t.Errorf("a client of the serve indexed a collection: plan %q", plan(t, file, tb))
	}
}

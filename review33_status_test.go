package main

// Review 33: status --verbose/--json listing index changes with keys and
// options (20ca98f).

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Held up: an application creates indexes of every kind the engine takes
// (compound, a tab in a key's field name, sparse (dropped by the engine),
// unique; FerretDB v1 refuses partial, collation, text, 2dsphere, TTL,
// hashed and non-integer key values); status --verbose (piped) gives one
// 5-field line per change, and status --json and commit --json stay valid
// JSON listing each.
func TestReview33StatusIndexSpecs(t *testing.T) {
	dir, run := r15Workspace(t, "r33ix")
	must := mustRun(t, run)
	must("init", "r33ix")
	must("insert", "c", `{"_id": 1, "a": 1, "b": "x", "loc": {"type": "Point", "coordinates": [1, 2]}}`)
	app := serveWorkspace(t, dir)
	c := app.Database("ar_r33ix__main").Collection("c")
	ctx := context.Background()
	tries := []struct {
		name string
		m    mongo.IndexModel
	}{
		{"compound", mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: -1}}, Options: options.Index().SetName("comp")}},
		{"tab key", mongo.IndexModel{Keys: bson.D{{Key: "k\tq", Value: 1}}, Options: options.Index().SetName("tabkey")}},
		{"sparse", mongo.IndexModel{Keys: bson.D{{Key: "s", Value: 1}}, Options: options.Index().SetName("sp").SetSparse(true)}},
		{"partial", mongo.IndexModel{Keys: bson.D{{Key: "p", Value: 1}}, Options: options.Index().SetName("part").SetPartialFilterExpression(bson.D{{Key: "p", Value: bson.D{{Key: "$gt", Value: 1.5}}}})}},
		{"collation", mongo.IndexModel{Keys: bson.D{{Key: "b", Value: 1}}, Options: options.Index().SetName("coll").SetCollation(&options.Collation{Locale: "fr", Strength: 2})}},
		{"text", mongo.IndexModel{Keys: bson.D{{Key: "b", Value: "text"}}, Options: options.Index().SetName("txt")}},
		{"2dsphere", mongo.IndexModel{Keys: bson.D{{Key: "loc", Value: "2dsphere"}}, Options: options.Index().SetName("geo")}},
		{"ttl", mongo.IndexModel{Keys: bson.D{{Key: "t", Value: 1}}, Options: options.Index().SetName("ttl").SetExpireAfterSeconds(60)}},
		{"hashed", mongo.IndexModel{Keys: bson.D{{Key: "h", Value: "hashed"}}, Options: options.Index().SetName("hash")}},
		{"double key", mongo.IndexModel{Keys: bson.D{{Key: "d", Value: 1.5}}, Options: options.Index().SetName("dbl")}},
		{"unique", mongo.IndexModel{Keys: bson.D{{Key: "u", Value: 1}}, Options: options.Index().SetName("uq").SetUnique(true)}},
	}
	made := 0
	for _, tr := range tries {
		if _, err := c.Indexes().CreateOne(ctx, tr.m); err != nil {
			t.Logf("%s: the engine refuses: %v", tr.name, err)
			continue
		}
		made++
		t.Logf("%s: created", tr.name)
	}
	specs, _ := c.Indexes().ListSpecifications(ctx)
	for _, s := range specs {
		t.Logf("spec %+v", s)
	}
	out := must("status", "--verbose")
	t.Logf("status --verbose:\n%s", out)
	lines := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "\tindex ") {
			lines++
			f := strings.Split(l, "\t")
			if len(f) != 5 {
				t.Errorf("piped index line with %d fields, want 5: %q", len(f), l)
			}
		}
	}
	if lines != made {
		t.Errorf("%d index lines, want %d", lines, made)
	}
	js := must("status", "--json")
	var st struct {
		Changes struct {
			Indexes []map[string]any `json:"indexes"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, js)
	}
	if len(st.Changes.Indexes) != made {
		t.Errorf("status --json lists %d indexes, want %d", len(st.Changes.Indexes), made)
	}
	t.Logf("status --json: %s", js)
	cj := must("commit", "-m", "ix", "--json")
	var cm struct {
		Changes struct {
			Indexes []map[string]any `json:"indexes"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(cj), &cm); err != nil {
		t.Fatalf("commit --json is not JSON: %v\n%s", err, cj)
	}
	if len(cm.Changes.Indexes) != made {
		t.Errorf("commit --json lists %d indexes, want %d", len(cm.Changes.Indexes), made)
	}
	t.Logf("commit --json: %s", cj)
	t.Logf("status after: %s", must("status", "--verbose"))
	t.Logf("index list: %s", must("index", "list", "c"))
}

// Was a defect (fixed in the twenty-third session): status --verbose prints an index's name raw. An application's
// index named "x<TAB>y<LF>z" (the engine takes it) makes the piped record
// documented as "change<TAB>collection<TAB>index NAME<TAB>keys<TAB>options"
// two lines of 4 and 3 fields, and on a terminal the name's control
// characters (escape sequences too) go to the terminal as they are.
// status -s and index list print it through ui.Clean / the table ("x y z");
// cmd/status.go's --verbose index (and document) lines do not.
func TestReview33StatusVerboseIndexNameWithControlCharacters(t *testing.T) {
	dir, run := r15Workspace(t, "r33cc")
	must := mustRun(t, run)
	must("init", "r33cc")
	must("insert", "c", `{"_id": 1}`)
	app := serveWorkspace(t, dir)
	ix := app.Database("ar_r33cc__main").Collection("c").Indexes()
	if _, err := ix.CreateOne(context.Background(), mongo.IndexModel{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetName("x\ty\nz")}); err != nil {
		t.Skipf("the engine refuses the name: %v", err)
	}
	out := must("status", "--verbose")
	var records []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if f := strings.Split(l, "\t"); f[0] == "added" || f[0] == "deleted" || f[0] == "modified" || len(f) != 2 {
			records = append(records, l)
		}
	}
	if len(records) != 1 || len(strings.Split(records[0], "\t")) != 5 {
		t.Errorf("status --verbose, piped, gives %d lines for one index change (want one of 5 tab-separated fields): %q", len(records), records)
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
)

// r13Docs are the documents every case starts from: _ids of many types,
// and fields for the operators.
var r13Docs = []string{
	`{"_id": {"$numberInt": "1"}, "n": {"$numberInt": "1"}, "f": {"$numberDouble": "1.5"}, "big": {"$numberInt": "2147483640"}, "arr": [{"$numberInt": "1"}, {"$numberInt": "2"}, {"$numberInt": "3"}, {"$numberInt": "2"}], "sub": {"x": {"$numberInt": "1"}, "y": {"z": {"$numberInt": "2"}}}, "s": "one"}`,
	`{"_id": {"$numberLong": "2"}, "n": {"$numberLong": "2"}, "f": {"$numberDouble": "-2.25"}, "big": {"$numberInt": "5"}, "arr": [{"$numberInt": "2"}], "sub": {"x": "str"}, "s": "two"}`,
	`{"_id": {"$numberDouble": "3.5"}, "n": {"$numberDouble": "3.0"}, "f": {"$numberInt": "0"}, "big": {"$numberLong": "9000000000"}, "arr": [{"$numberInt": "2"}, {"a": {"$numberInt": "1"}}], "s": "three"}`,
	`{"_id": "s", "n": {"$numberInt": "-4"}, "arr": [{"$numberInt": "2"}, {"$numberInt": "1"}], "sub": {"y": {"z": {"$numberInt": "9"}, "w": true}}}`,
	`{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "n": {"$numberInt": "5"}, "arr": [{"$numberInt": "2"}, null], "s": ""}`,
	`{"_id": {"$date": {"$numberLong": "1700000000000"}}, "n": {"$numberInt": "6"}, "arr": [{"$numberInt": "2"}, "2"], "d": {"$date": {"$numberLong": "0"}}}`,
	`{"_id": {"k": {"$numberInt": "1"}, "b": {"c": "d"}}, "n": {"$numberInt": "7"}, "arr": [{"$numberInt": "2"}], "sub": {"x": {"$numberDouble": "0.1"}}}`,
	`{"_id": "big", "n": {"$numberInt": "8"}, "arr": [{"$numberInt": "2"}], "blob": "` + strings.Repeat("x", 1<<20) + `"}`,
}

// An update of many documents evaluated in the scratch engine and written
// back gives, document by document and byte for byte, what the engine's
// own updateMany gives on the same documents (where the engine refuses,
// argon refuses too and changes nothing, where the engine keeps the
// documents it changed before the one it refused); the log holds it
// (status clean, fsck).
func TestReview13UpdateManyMatchesTheEngine(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("the embedded engine's scratch evaluation")
	}
	cases := []struct{ filter, update string }{
		{`{}`, `{"$inc": {"n": 1, "f": 0.5, "newf": {"$numberLong": "2"}}}`},
		{`{}`, `{"$inc": {"big": 10}}`},
		{`{}`, `{"$mul": {"n": {"$numberLong": "3"}, "f": 2}}`},
		{`{}`, `{"$set": {"sub.y.z": 5, "sub.w": [1], "a.b.c": {"$numberDecimal": "1"}}}`},
		{`{}`, `{"$set": {"a.b.c": 1, "z": {"q": null, "r": {"$minKey": 1}}}}`},
		{`{}`, `{"$unset": {"sub.x": "", "missing": "", "arr.0": ""}}`},
		{`{}`, `{"$rename": {"sub": "moved", "s": "t", "n": "sub2.n"}}`},
		// (With $position, $sort or $slice, which the engine ignores,
		// argon refuses the update: roundtrip.txtar.)
		{`{}`, `{"$push": {"arr": {"$each": [9, 8]}}}`},
		{`{}`, `{"$pull": {"arr": 2}}`},
		{`{}`, `{"$pullAll": {"arr": [1, 3]}}`},
		{`{}`, `{"$addToSet": {"arr": {"$each": [1, 7, 7]}}}`},
		{`{}`, `{"$pop": {"arr": -1}}`},
		{`{}`, `{"$pop": {"arr": 1}}`},
		{`{}`, `{"$min": {"n": 0, "d": {"$date": {"$numberLong": "-1"}}}, "$max": {"f": 100}}`},
		{`{}`, `{"$set": {"arr.1": "x", "arr.6": "y"}}`},
		{`{}`, `{"$setOnInsert": {"q": 1}, "$set": {"r": 1}}`},
		{`{}`, `{"$bit": {"n": {"or": 4}}}`},
		{`{"arr": 2}`, `{"$set": {"arr.$": 100}}`},
		{`{"arr": 2}`, `{"$inc": {"arr.$": 1}}`},
		{`{}`, `{"$set": {"arr.$[]": 0}}`},
		{`{}`, `{"$set": {"n": {"$numberLong": "1"}}}`},
		{`{"n": {"$gte": 5}}`, `{"$set": {"s": "five+"}}`},
		{`{}`, `{"$push": {"arr": [1]}}`},
		{`{}`, `{"$set": {"arr.0": [1]}}`},
		{`{}`, `{"$addToSet": {"arr": [1]}}`},
		{`{}`, `{"$set": {"x": [[1]]}}`},
		{`{}`, `{"$set": {"x": {"$numberDouble": "NaN"}}}`},
		{`{}`, `{"$set": {"x": {"$code": "function(){}"}}}`},
	}
	dir, run := statusWorkspace(t, "df")
	ref, err := store.StartEngine(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Stop()
	ctx := context.Background()
	rc, err := mongo.Connect(options.Client().ApplyURI(ref.URI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Disconnect(ctx) }()
	if err := os.WriteFile(dir+"/docs.json", []byte(strings.Join(r13Docs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var docs []any
	for _, d := range r13Docs {
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(d), true, &raw); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, raw)
	}
	refErr := map[string]string{}
	for i, c := range cases {
		coll := fmt.Sprintf("c%d", i)
		run("insert", coll, "--file", dir+"/docs.json", "-q")
		code, _, errOut := r13Run(t, dir, "update", coll, c.filter, c.update, "--many")
		rcoll := rc.Database("ref").Collection(coll)
		if _, err := rcoll.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		var f, u bson.Raw
		_ = bson.UnmarshalExtJSON([]byte(c.filter), false, &f)
		_ = bson.UnmarshalExtJSON([]byte(c.update), false, &u)
		_, uerr := rcoll.UpdateMany(ctx, f, u)
		if (code != 0) != (uerr != nil) {
			t.Errorf("%s %s: argon exit %d (%s), the engine's updateMany: %v", c.filter, c.update, code, strings.TrimSpace(errOut), uerr)
		}
		if uerr != nil {
			refErr[coll] = uerr.Error()
		}
	}
	if _, out := run("status", "-s"); strings.Count(out, "\n") != 1 {
		t.Errorf("status -s after the updates: %q, want clean", out)
	}
	if _, out := run("fsck"); !strings.Contains(out, " 0 problems") {
		t.Errorf("fsck: %q", out)
	}
	// The working database, read through an engine of its own now that
	// no command runs.
	eng, err := store.StartEngine(dir+"/.argon/data", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop()
	wc, err := mongo.Connect(options.Client().ApplyURI(eng.URI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wc.Disconnect(ctx) }()
	read := func(c *mongo.Collection) map[string]bson.Raw {
		cur, err := c.Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bson.Raw{}
		for cur.Next(ctx) {
			out[string(wal.KeyOf(cur.Current.Lookup("_id")))] = append(bson.Raw(nil), cur.Current...)
		}
		return out
	}
	for i, c := range cases {
		coll := fmt.Sprintf("c%d", i)
		got, want := read(wc.Database("ar_df__main").Collection(coll)), read(rc.Database("ref").Collection(coll))
		if refErr[coll] != "" {
			// The engine stops at the first document it cannot update,
			// having changed those before; argon changes none.
			want = map[string]bson.Raw{}
			for _, d := range docs {
				want[string(wal.KeyOf(d.(bson.Raw).Lookup("_id")))] = d.(bson.Raw)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s %s: %d documents, the engine %d", c.filter, c.update, len(got), len(want))
		}
		for k, w := range want {
			if !bytes.Equal(got[k], w) {
				g, ww := got[k].String(), w.String()
				if len(g) > 300 {
					g = g[:300]
				}
				if len(ww) > 300 {
					ww = ww[:300]
				}
				t.Errorf("%s %s (engine error %q):\n argon  %s\n engine %s", c.filter, c.update, refErr[coll], g, ww)
			}
		}
	}
}

package workdb

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func mustDoc(t *testing.T, ext string) bson.Raw {
	t.Helper()
	var d bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(ext), false, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// An upsert's new _id is chosen before it is sent wherever the filter and
// the change leave it to the server, and left to the server where they
// name it.
func TestUpsertID(t *testing.T) {
	for _, tc := range []struct {
		filter, update, replacement string
		byID, known                 bool
		// want is the change sent, with the chosen ObjectId as OID.
		want string
		// id, when set, is the _id chosen (Extended JSON of {"v": id}).
		id string
	}{
		{filter: `{"_id": 3}`, update: `{"$set": {"a": 1}}`, byID: true, known: true, want: `{"$set": {"a": 1}}`},
		{filter: `{"name": "x"}`, update: `{"$set": {"a": 1}}`, known: true,
			want: `{"$set": {"a": 1}, "$setOnInsert": {"_id": OID}}`},
		{filter: `{"name": "x"}`, update: `{"$setOnInsert": {"b": 2}, "$inc": {"n": 1}}`, known: true,
			want: `{"$setOnInsert": {"_id": OID, "b": 2}, "$inc": {"n": 1}}`},
		{filter: `{"name": "x"}`, replacement: `{"a": 1}`, known: true, want: `{"_id": OID, "a": 1}`},
		{filter: `{"name": "x"}`, replacement: `{"a": 1, "_id": 7}`, known: true, want: `{"_id": 7, "a": 1}`},
		// The update sets the inserted document's _id whole: that one,
		// sent as it is.
		{filter: `{"name": "x"}`, update: `{"$set": {"_id": 5}}`, known: true, want: `{"$set": {"_id": 5}}`, id: `5`},
		{filter: `{"name": "x"}`, update: `{"$setOnInsert": {"_id": {"k": 2}}, "$inc": {"n": 1}}`, known: true,
			want: `{"$setOnInsert": {"_id": {"k": 2}}, "$inc": {"n": 1}}`, id: `{"k": 2}`},
		{filter: `{"name": "x"}`, update: `{"$set": {"_id": 5}, "$setOnInsert": {"_id": 5}}`, known: true,
			want: `{"$set": {"_id": 5}, "$setOnInsert": {"_id": 5}}`, id: `5`},
		// The filter names _id by equality at its top level: the server
		// copies it.
		{filter: `{"_id": 2.0, "x": 1}`, update: `{"$set": {"a": 1}}`, known: true, want: `{"$set": {"a": 1}}`, id: `2.0`},
		{filter: `{"_id": {"$eq": {"k": 2}}}`, update: `{"$set": {"a": 1}}`, known: true, want: `{"$set": {"a": 1}}`, id: `{"k": 2}`},
		{filter: `{"x": 1, "_id": "s"}`, replacement: `{"a": 1}`, known: true, want: `{"a": 1}`, id: `"s"`},
		// The server takes the _id from these: left to it.
		{filter: `{"_id": {"$in": [1, 2]}}`, update: `{"$set": {"a": 1}}`},
		{filter: `{"$and": [{"_id": 1}, {"a": 1}]}`, update: `{"$set": {"a": 1}}`},
		{filter: `{"name": "x"}`, update: `{"$setOnInsert": {"_id.k": 5}}`},
		{filter: `{"name": "x"}`, update: `{"$set": {"_id": 5}, "$setOnInsert": {"_id": 6}}`},
		{filter: `{"name": "x"}`, update: `{"$rename": {"a": "_id"}}`},
		{filter: `{"name": "x"}`, update: `{"$set": {"_id": 5}, "$unset": {"_id": ""}}`},
	} {
		m := Modification{Filter: mustDoc(t, tc.filter), Upsert: true}
		if tc.update != "" {
			m.Update = mustDoc(t, tc.update)
		}
		if tc.replacement != "" {
			m.Replacement = mustDoc(t, tc.replacement)
		}
		upd, repl, id, known, err := upsertID(m, tc.byID)
		if err != nil {
			t.Fatal(err)
		}
		if known != tc.known {
			t.Errorf("%s %s%s: known %v, want %v", tc.filter, tc.update, tc.replacement, known, tc.known)
			continue
		}
		if !known {
			if !bytesEqual(upd, m.Update) || !bytesEqual(repl, m.Replacement) {
				t.Errorf("%s %s%s: the change was rewritten though its _id is left to the server", tc.filter, tc.update, tc.replacement)
			}
			continue
		}
		sent := upd
		if repl != nil {
			sent = repl
		}
		want := tc.want
		if oid, ok := id.ObjectIDOK(); ok {
			want = strings.ReplaceAll(want, "OID", `{"$oid": "`+oid.Hex()+`"}`)
		}
		if got, w := sent.String(), mustDoc(t, want).String(); got != w {
			t.Errorf("%s %s%s: sends %s, want %s", tc.filter, tc.update, tc.replacement, got, w)
		}
		if tc.id != "" && id.String() != mustDoc(t, `{"v": `+tc.id+`}`).Lookup("v").String() {
			t.Errorf("%s %s: _id %s, want %s", tc.filter, tc.update, id, tc.id)
		}
		if tc.byID && id.String() != m.Filter.Lookup("_id").String() {
			t.Errorf("%s: _id %s, want the filter's", tc.filter, id)
		}
	}
}

func bytesEqual(a, b bson.Raw) bool { return string(a) == string(b) }

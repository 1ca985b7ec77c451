package ejson

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestParseDocumentKeepsOrderAndTypes(t *testing.T) {
	doc, err := ParseDocument("doc", []byte(`{"z": 1, "a": {"$numberLong": "2"}, "m": 1.5, "big": 3000000000, "n": {"y": 1, "x": 2}}`))
	if err != nil {
		t.Fatal(err)
	}
	elems, _ := doc.Elements()
	var keys []string
	for _, e := range elems {
		keys = append(keys, e.Key())
	}
	if strings.Join(keys, ",") != "z,a,m,big,n" {
		t.Fatalf("order %v", keys)
	}
	for key, typ := range map[string]bson.Type{"z": bson.TypeInt32, "a": bson.TypeInt64, "m": bson.TypeDouble, "big": bson.TypeInt64, "n": bson.TypeEmbeddedDocument} {
		if got := doc.Lookup(key).Type; got != typ {
			t.Errorf("%s: type %v, want %v", key, got, typ)
		}
	}
	if first, _ := doc.Lookup("n").Document().IndexErr(0); first.Key() != "y" {
		t.Errorf("nested order changed: %v", doc.Lookup("n"))
	}
}

func TestParseDocumentErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "invalid Extended JSON in f: it is empty"},
		{`{"a": }`, "invalid Extended JSON in f at line 1, column 7: invalid character '}' looking for beginning of value"},
		{"{\n  \"a\": 1,\n  \"b\" 2}", "invalid Extended JSON in f at line 3, column 7: invalid character '2' after object key"},
		{`[1]`, "invalid Extended JSON in f: it is not a document (a JSON object)"},
		{`"x"`, "invalid Extended JSON in f: it is not a document (a JSON object)"},
		{`{"a": 1} {"b": 2}`, "invalid Extended JSON in f at line 1, column 10: unexpected data after the document"},
		{`{"a": 1`, "invalid Extended JSON in f at line 1, column 8: unexpected end of input"},
	} {
		_, err := ParseDocument("f", []byte(tc.in))
		var se *SyntaxError
		if !errors.As(err, &se) || err.Error() != tc.want {
			t.Errorf("ParseDocument(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestReadDocuments(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
	}{
		{"ndjson", "{\"_id\": 1}\n{\"_id\": 2}\n", 2},
		{"concatenated", `{"_id": 1}{"_id": 2} {"_id": 3}`, 3},
		{"array", "[\n {\"_id\": 1},\n {\"_id\": 2}\n]\n", 2},
		{"empty", "  \n", 0},
		{"empty array", "[]", 0},
	} {
		docs, err := ReadDocuments(strings.NewReader(tc.in))
		if err != nil || len(docs) != tc.n {
			t.Errorf("%s: %d documents, %v; want %d", tc.name, len(docs), err, tc.n)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"{\"_id\": 1}\n[1]\n", "invalid Extended JSON in document 2: it is not a document (a JSON object)"},
		{"{\"_id\": 1}\n{\"_id\": 2,\n \"x\": }\n", "invalid Extended JSON in document 2 at line 3, column 7: invalid character '}' looking for beginning of value"},
		{"[{\"_id\": 1}, 2]", "invalid Extended JSON in document 2: it is not a document (a JSON object)"},
		{"[{\"_id\": 1}] {}", "invalid Extended JSON in input: unexpected data after the array"},
	} {
		_, err := ReadDocuments(strings.NewReader(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("ReadDocuments(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// Canonical output parses back to the same bytes.
func TestCanonicalRoundTrip(t *testing.T) {
	in := `{"_id":{"$oid":"0123456789abcdef01234567"},"i":{"$numberInt":"1"},"l":{"$numberLong":"1"},"d":{"$numberDouble":"1.0"},"t":{"$date":{"$numberLong":"0"}},"b":{"$binary":{"base64":"AQI=","subType":"80"}},"r":{"$regularExpression":{"pattern":"x","options":"i"}},"ts":{"$timestamp":{"t":1,"i":2}},"dec":{"$numberDecimal":"1.10"}}`
	doc, err := ParseDocument("d", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Format(doc, true)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("canonical output\n%s\nwant\n%s", out, in)
	}
}

// FuzzParseDocument: parsing never panics, and whatever parses prints as
// canonical Extended JSON that parses back to the same bytes.
func FuzzParseDocument(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": 1}`, `{"a": {"$numberLong": "9"}}`, `{"a": [1, "x", {"b": null}]}`, `{"$oid": "x"}`, `{"a": {"$date": "2020-01-01T00:00:00Z"}}`, `[`, `{"a":`, `{"a": "\ud800"}`, `{"a": "\ud83d\ude00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := ParseDocument("f", data)
		if err != nil {
			return
		}
		out, err := Format(doc, true)
		if err != nil {
			return // some values have no canonical form (invalid UTF-8 keys)
		}
		back, err := ParseDocument("f", []byte(out))
		if err != nil {
			t.Fatalf("canonical output does not parse: %s: %v", out, err)
		}
		if !bytes.Equal(back, doc) {
			t.Fatalf("round trip changed the document:\n%v\n%v", bson.Raw(doc), back)
		}
	})
}

// A lone UTF-16 surrogate escape is refused, not stored as U+FFFD; a
// proper pair, an escaped backslash before "ud800", and plain text pass.
func TestLoneSurrogates(t *testing.T) {
	for in, bad := range map[string]bool{
		`{"a": "\ud800"}`:          true,
		`{"a": "\udc00x"}`:         true,
		`{"a": "\ud800\u0041"}`:    true,
		`{"\ud800": 1}`:            true,
		`{"a": "\ud83d\ude00"}`:    false,
		`{"a": "\\ud800"}`:         false,
		`{"a": "x\"\ud83d\ude00"}`: false,
		`{"a": "é ✓"}`:             false,
	} {
		_, err := ParseDocument("document", []byte(in))
		if bad && (err == nil || !strings.Contains(err.Error(), "half of a UTF-16 surrogate pair")) {
			t.Errorf("%s: %v, want a refusal", in, err)
		}
		if !bad && err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

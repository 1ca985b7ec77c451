package ui

import (
	"bytes"
	"encoding/json"
	"testing"
)

// A JSON array written an element at a time is byte for byte the array
// PrintJSON writes whole, on a terminal (indented) and off one (compact),
// for elements of every shape: nested, empty, with spaces to drop and
// characters that HTML escaping would change.
func TestJSONArrayIsPrintJSON(t *testing.T) {
	elems := []string{
		`{"_id":1,"name":"Ada"}`,
		`{ "a" : [ 1, 2, {"b": {}} ], "c": [], "d": {} }`,
		`{"s":"<a & b>","u":"\u2028 é \" \\"}`,
		`[1,[2,[3]]]`,
		`"just a string"`,
		`{"_id":{"$oid":"5f1a2b3c4d5e6f7a8b9c0d1e"},"n":{"$numberLong":"9007199254740993"}}`,
	}
	for _, tty := range []bool{false, true} {
		for n := 0; n <= len(elems); n++ {
			want := &IOStreams{Out: &bytes.Buffer{}, stdoutTTY: tty}
			raws := make([]json.RawMessage, n)
			for i := range raws {
				raws[i] = json.RawMessage(elems[i])
			}
			if err := want.PrintJSON(raws); err != nil {
				t.Fatal(err)
			}
			got := &IOStreams{Out: &bytes.Buffer{}, stdoutTTY: tty}
			arr := got.StartJSONArray()
			for _, e := range elems[:n] {
				if err := arr.Add([]byte(e)); err != nil {
					t.Fatal(err)
				}
			}
			if err := arr.End(); err != nil {
				t.Fatal(err)
			}
			if g, w := got.Out.(*bytes.Buffer).String(), want.Out.(*bytes.Buffer).String(); g != w {
				t.Errorf("terminal %v, %d elements: streamed\n%s\nwant\n%s", tty, n, g, w)
			}
		}
	}
}

package ui

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/ejson"
)

// What held (passes): for documents as argon find formats them
// (ejson.Format, canonical and relaxed), with raw U+2028/U+2029, HTML
// characters, invalid UTF-8, control characters, keys that need escapes,
// large and special numbers, binary, nested empties and deep nesting,
// the array written an element at a time is byte for byte PrintJSON's,
// on a terminal and off it, for 0 to all elements.
func TestReview32JSONArrayOfFormattedDocuments(t *testing.T) {
	deep := bson.D{{Key: "x", Value: int32(0)}}
	for i := 0; i < 90; i++ {
		deep = bson.D{{Key: "d", Value: deep}, {Key: "a", Value: bson.A{bson.A{}, bson.D{}}}}
	}
	docs := []bson.D{
		{{Key: "_id", Value: int32(1)}, {Key: "s", Value: "line\u2028sep\u2029 <a & b> \"q\" \\ \t\n\x01 é 😀"}},
		{{Key: "_id", Value: "bad\xff\xfeutf8"}, {Key: "k\xffey", Value: "v\xc3"}},
		{{Key: "_id", Value: int64(math.MaxInt64)}, {Key: "n", Value: int64(math.MinInt64)}, {Key: "f", Value: math.Inf(1)}, {Key: "g", Value: math.NaN()}, {Key: "z", Value: math.Copysign(0, -1)}, {Key: "h", Value: 1e300}, {Key: "i", Value: 5e-324}},
		{{Key: "_id", Value: bson.NewObjectID()}, {Key: "b", Value: bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}}, {Key: "dec", Value: bson.NewDecimal128(1, 2)}},
		{{Key: "_id", Value: bson.D{}}, {Key: "e", Value: bson.A{}}, {Key: "", Value: nil}, {Key: "$k", Value: bson.Regex{Pattern: "a/b", Options: "i"}}},
		{{Key: "_id", Value: int32(2)}, {Key: "deep", Value: deep}},
		{{Key: "_id", Value: int32(3)}, {Key: "big", Value: strings.Repeat("x", 100000)}},
		{{Key: "_id", Value: bson.DateTime(-62135596800001)}, {Key: "ts", Value: bson.Timestamp{T: 1, I: 2}}, {Key: "mk", Value: bson.MaxKey{}}, {Key: "js", Value: bson.JavaScript("x < 1")}},
	}
	for _, canonical := range []bool{false, true} {
		var elems []string
		for _, d := range docs {
			raw, err := bson.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ejson.Format(raw, canonical)
			if err != nil {
				t.Fatalf("format %v: %v", d, err)
			}
			elems = append(elems, s)
		}
		for _, tty := range []bool{false, true} {
			for n := 0; n <= len(elems); n++ {
				want := &IOStreams{Out: &bytes.Buffer{}, stdoutTTY: tty}
				raws := make([]json.RawMessage, n)
				for i := range raws {
					raws[i] = json.RawMessage(elems[i])
				}
				werr := want.PrintJSON(raws)
				got := &IOStreams{Out: &bytes.Buffer{}, stdoutTTY: tty}
				arr := got.StartJSONArray()
				var gerr error
				for _, e := range elems[:n] {
					if gerr = arr.Add([]byte(e)); gerr != nil {
						break
					}
				}
				if gerr == nil {
					gerr = arr.End()
				}
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("canonical %v terminal %v, %d elements: errors %v, PrintJSON %v", canonical, tty, n, gerr, werr)
				}
				if werr != nil {
					t.Logf("canonical %v terminal %v, %d elements: both refuse: %v", canonical, tty, n, werr)
					continue
				}
				if g, w := got.Out.(*bytes.Buffer).String(), want.Out.(*bytes.Buffer).String(); g != w {
					t.Fatalf("canonical %v terminal %v, %d elements: streamed differs (%d bytes, want %d)", canonical, tty, n, len(g), len(w))
				}
			}
		}
	}
}

package workdb

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Sums go into the marker as an array, so that a collection name with a
// '.' (valid in MongoDB, refused in field names by the embedded engine)
// can be fingerprinted; markers written as a document still read.
func TestSumsBSON(t *testing.T) {
	in := Sums{"a.b": "00ff", "c": "0102"}
	raw, err := bson.Marshal(Marker{ID: "m", Sums: in})
	if err != nil {
		t.Fatal(err)
	}
	if v := bson.Raw(raw).Lookup("sums"); v.Type != bson.TypeArray {
		t.Fatalf("sums stored as %s, want an array", v.Type)
	}
	var out Marker
	if err := bson.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Sums.Equal(in) {
		t.Fatalf("read back %v, want %v", out.Sums, in)
	}
	old, _ := bson.Marshal(bson.D{{Key: "_id", Value: "m"}, {Key: "sums", Value: bson.D{{Key: "c", Value: "0102"}}}})
	if err := bson.Unmarshal(old, &out); err != nil || !out.Sums.Equal(Sums{"c": "0102"}) {
		t.Fatalf("old marker: %v, %v", out.Sums, err)
	}
	none, _ := bson.Marshal(Marker{ID: "m"})
	if err := bson.Unmarshal(none, &out); err != nil || out.Sums != nil {
		t.Fatalf("nil sums read back as %v, %v", out.Sums, err)
	}
}

package workdb

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Which reads the overlay answers, and how it keeps _id in answers.
func TestOverlayable(t *testing.T) {
	raw := func(d bson.D) bson.Raw {
		out, _ := bson.Marshal(d)
		return out
	}
	for _, c := range []struct {
		name  string
		q     Query
		ok    bool
		proj  string
		strip bool
	}{
		{"plain", Query{}, true, "", false},
		{"filter, skip, limit", Query{Filter: raw(bson.D{{Key: "a", Value: 1}}), Skip: 1, Limit: 2}, true, "", false},
		{"sort", Query{Sort: raw(bson.D{{Key: "a", Value: 1}})}, false, "", false},
		{"$text", Query{Filter: raw(bson.D{{Key: "$text", Value: bson.D{{Key: "$search", Value: "x"}}}})}, false, "", false},
		{"$near deep", Query{Filter: raw(bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "loc", Value: bson.D{{Key: "$near", Value: bson.A{0, 0}}}}}}}})}, false, "", false},
		{"$nearSphere", Query{Filter: raw(bson.D{{Key: "loc", Value: bson.D{{Key: "$nearSphere", Value: bson.A{0, 0}}}}})}, false, "", false},
		{"inclusion", Query{Projection: raw(bson.D{{Key: "a", Value: 1}})}, true, `{"a": {"$numberInt":"1"}}`, false},
		{"_id: 1", Query{Projection: raw(bson.D{{Key: "_id", Value: 1}})}, true, `{"_id": {"$numberInt":"1"}}`, false},
		{"_id: 0", Query{Projection: raw(bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 0}})}, true, `{"a": {"$numberInt":"1"}}`, true},
		{"_id: false alone", Query{Projection: raw(bson.D{{Key: "_id", Value: false}})}, true, `{}`, true},
		{"_id: 0.0", Query{Projection: raw(bson.D{{Key: "_id", Value: 0.0}})}, true, `{}`, true},
		{"_id computed", Query{Projection: raw(bson.D{{Key: "_id", Value: "$a"}})}, false, "", false},
		{"part of _id", Query{Projection: raw(bson.D{{Key: "_id.x", Value: 0}})}, false, "", false},
	} {
		oq, ok := overlayable(c.q)
		if ok != c.ok {
			t.Errorf("%s: overlayable %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		proj := ""
		if oq.q.Projection != nil {
			proj = oq.q.Projection.String()
		}
		if proj != c.proj || oq.strip != c.strip {
			t.Errorf("%s: projection %s, strip %v; want %s, %v", c.name, proj, oq.strip, c.proj, c.strip)
		}
	}
	doc := raw(bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 2}, {Key: "b", Value: "x"}})
	if got := stripIDs([]bson.Raw{doc}, true)[0]; got.String() != raw(bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}).String() {
		t.Errorf("stripped: %s", got)
	}
}

package workdb

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An update with a positional $ goes with the user's filter beside the
// matched _ids: MongoDB takes the element $ stands for from the array's
// condition in the query, and refuses the update when the query is the
// _ids alone (review40; no MongoDB is reachable here, and FerretDB
// refuses $ itself, so this checks the filter sent). Other updates go by
// _id alone, an indexed lookup on FerretDB.
func TestPositionalUpdatesKeepTheUsersFilter(t *testing.T) {
	byID := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{1}}}}}
	filter, _ := bson.Marshal(bson.D{{Key: "arr", Value: 2}})
	for _, tc := range []struct {
		update string
		want   bool
	}{
		{`{"$set": {"arr.$": 20}}`, true},
		{`{"$set": {"g.$.v": 9}}`, true},
		{`{"$inc": {"n": 1}, "$unset": {"a.$": ""}}`, true},
		{`{"$set": {"arr.$[]": 0}}`, false},
		{`{"$set": {"arr.$[x]": 0}}`, false},
		{`{"$set": {"arr.0": 20, "a$b": 1}}`, false},
		{`{"$inc": {"n": 1}}`, false},
	} {
		got := updateFilter(filter, mustDoc(t, tc.update), byID)
		d, _ := got.(bson.D)
		combined := len(d) == 1 && d[0].Key == "$and"
		if combined != tc.want {
			t.Errorf("update %s: sent with %v, want the user's filter beside the _ids: %v", tc.update, got, tc.want)
		}
		if combined {
			parts := d[0].Value.(bson.A)
			if !bytes.Equal(parts[0].(bson.Raw), filter) {
				t.Errorf("update %s: the $and's first part is %v, want the user's filter", tc.update, parts[0])
			}
		}
	}
	if got := updateFilter(nil, mustDoc(t, `{"$set": {"arr.$": 1}}`), byID); len(got.(bson.D)) != 1 || got.(bson.D)[0].Key != "_id" {
		t.Errorf("no filter: sent with %v, want the _ids", got)
	}
}

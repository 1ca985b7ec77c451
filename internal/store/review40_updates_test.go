package store

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Through argon serve, an application's update that the engine would take
// and then evaluate otherwise than MongoDB is refused with the reason
// (review40): the Go driver sends an update's statements as a document
// sequence, the Node.js one (serve_types.txtar) in the command's body.
// Updates the engine evaluates as MongoDB does pass.
func TestReview40ServeRefusesMisEvaluatedUpdates(t *testing.T) {
	t.Parallel()
	uri, _ := serveAt(t, t.TempDir())
	ctx := context.Background()
	c := connectAs(t, uri, "").Database("app").Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: bson.A{3, 1, 2}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		update bson.D
		why    string
	}{
		{bson.D{{Key: "$pull", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$gte", Value: 2}}}}}}, `$pull of "a" by a condition, a document or a pattern`},
		{bson.D{{Key: "$pull", Value: bson.D{{Key: "a", Value: bson.Regex{Pattern: "^a"}}}}}, `$pull of "a" by a condition, a document or a pattern`},
		{bson.D{{Key: "$set", Value: bson.D{{Key: "b", Value: 1}}}, {Key: "$push", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$each", Value: bson.A{0}}, {Key: "$position", Value: 0}}}}}}, `$push to "a" with $position`},
	} {
		_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, tc.update)
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("update %v: %v, want the serve's refusal (%s)", tc.update, err, tc.why)
		}
	}
	// findAndModify under any case of its name, as the engine takes it
	// (review41: the old findandmodify went through).
	for _, name := range []string{"findAndModify", "findandmodify"} {
		err := c.Database().RunCommand(ctx, bson.D{{Key: name, Value: "c"}, {Key: "query", Value: bson.D{{Key: "_id", Value: 1}}},
			{Key: "update", Value: bson.D{{Key: "$pull", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$gte", Value: 2}}}}}}}}).Err()
		if err == nil || !strings.Contains(err.Error(), `$pull of "a" by a condition`) {
			t.Errorf("%s with a $pull by a condition: %v, want the serve's refusal", name, err)
		}
	}
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$pull", Value: bson.D{{Key: "a", Value: 1}}},
		{Key: "$push", Value: bson.D{{Key: "b", Value: bson.D{{Key: "$each", Value: bson.A{5}}}}}}}); err != nil {
		t.Fatalf("a $pull of a value and a $push with $each alone: %v", err)
	}
	got, err := c.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if s := got.String(); !strings.Contains(s, `"a": [{"$numberInt":"3"},{"$numberInt":"2"}]`) || strings.Contains(s, `"b": {"$numberInt":"1"}`) {
		t.Errorf("the document is %s: want a without 1, b [5], and nothing of the refused updates", s)
	}
}

package workdb

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/enginetest"
)

func TestReview4Probe(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	c := srv.Client.Database(srv.DB).Collection("c")
	try := func(name string, f func() (any, error)) {
		r, err := f()
		var all []bson.M
		cur, _ := c.Find(ctx, bson.D{})
		_ = cur.All(ctx, &all)
		t.Logf("%s: res=%+v err=%v docs=%v", name, r, err, all)
		for _, d := range all {
			t.Logf("   _id type %T", d["_id"])
		}
		_, _ = c.DeleteMany(ctx, bson.D{})
	}
	try("replace byID int filter, double _id", func() (any, error) {
		return c.ReplaceOne(ctx, bson.D{{"_id", int32(5)}}, bson.D{{"_id", 5.0}, {"x", 1}}, options.Replace().SetUpsert(true))
	})
	try("replace byID int filter, int64 _id", func() (any, error) {
		return c.ReplaceOne(ctx, bson.D{{"_id", int32(5)}}, bson.D{{"_id", int64(5)}, {"x", 1}}, options.Replace().SetUpsert(true))
	})
	try("update byID int, $set _id double", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"_id", int32(5)}}, bson.D{{"$set", bson.D{{"_id", 5.0}}}}, options.UpdateOne().SetUpsert(true))
	})
	try("update byID int, $setOnInsert _id int64", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"_id", int32(5)}}, bson.D{{"$setOnInsert", bson.D{{"_id", int64(5)}}}}, options.UpdateOne().SetUpsert(true))
	})
	oid := bson.NewObjectID()
	try("rename a->_id plain", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"a", 7}}, bson.D{{"$rename", bson.D{{"a", "_id"}}}}, options.UpdateOne().SetUpsert(true))
	})
	try("rename a->_id with argon setOnInsert", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"a", 7}}, bson.D{{"$rename", bson.D{{"a", "_id"}}}, {"$setOnInsert", bson.D{{"_id", oid}}}}, options.UpdateOne().SetUpsert(true))
	})
	try("filter $and{_id} setOnInsert other", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"$and", bson.A{bson.D{{"_id", 9}}}}}, bson.D{{"$set", bson.D{{"x", 1}}}}, options.UpdateOne().SetUpsert(true))
	})
	try("filter $expr eq _id", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"$expr", bson.D{{"$eq", bson.A{"$_id", 9}}}}}, bson.D{{"$set", bson.D{{"x", 1}}}, {"$setOnInsert", bson.D{{"_id", oid}}}}, options.UpdateOne().SetUpsert(true))
	})
	try("filter {a:1} setOnInsert _id + set a", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"a", 1}}, bson.D{{"$set", bson.D{{"b", 1}}}, {"$setOnInsert", bson.D{{"_id", oid}}}}, options.UpdateOne().SetUpsert(true))
	})
	try("replace filter {a:1} replacement with _id first added", func() (any, error) {
		return c.ReplaceOne(ctx, bson.D{{"a", 1}}, bson.D{{"_id", oid}, {"b", 1}}, options.Replace().SetUpsert(true))
	})
	try("update byID -0.0 filter", func() (any, error) {
		return c.UpdateOne(ctx, bson.D{{"_id", 0.0}}, bson.D{{"$set", bson.D{{"x", 1}}}}, options.UpdateOne().SetUpsert(true))
	})
	_, _ = c.InsertOne(ctx, bson.D{{"_id", int32(5)}, {"x", 0}})
	r, err := c.ReplaceOne(ctx, bson.D{{"_id", int32(5)}}, bson.D{{"_id", 5.0}, {"x", 1}})
	var all []bson.M
	cur, _ := c.Find(ctx, bson.D{})
	_ = cur.All(ctx, &all)
	t.Logf("replace existing int 5 by 5.0: %+v %v %v", r, err, all)
	for _, d := range all {
		t.Logf("   _id type %T", d["_id"])
	}
}

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// review6Deleted makes project p on a fresh server with no argon serve in
// front (ARGON_URI: the working database is never known clean, so every
// write asks the log), with docs committed in c, then deletes the
// document whose _id is del as an application would, without committing.
func review6Deleted(t *testing.T, p, docs string, del any) string {
	t.Helper()
	dir, app, db := projectOnServer(t, p, docs)
	r, err := app.Database(db).Collection("c").DeleteOne(context.Background(), bson.D{{Key: "_id", Value: del}})
	if err != nil || r.DeletedCount != 1 {
		t.Fatalf("application's delete of %v: %v, %v", del, r, err)
	}
	return dir
}

// review6Unbuildable reports, when the committed head of main can no
// longer be materialised (find --at main folds it into a view), what
// restore, a checkout of the head and fsck say.
func review6Unbuildable(t *testing.T, dir string) {
	t.Helper()
	_, findOut, findErr := review5Argon(dir, "find", "c", "--at", "main")
	if strings.Contains(findErr, "duplicate key") || strings.Contains(findErr, "E11000") {
		_, _, restoreErr := review5Argon(dir, "restore", "--yes")
		_, _, coErr := review5Argon(dir, "checkout", "-b", "copy")
		_, fsckOut, _ := review5Argon(dir, "fsck")
		_, log, _ := review5Argon(dir, "log", "--entries")
		t.Errorf("the committed head can no longer be materialised: %s\nrestore --yes: %scheckout -b copy: %sfsck: %slog --entries:\n%s",
			strings.TrimSpace(findErr), restoreErr, coErr, fsckOut, log)
	} else {
		t.Logf("find --at main:\n%s%s", findOut, findErr)
	}
}

// FerretDB's unique _id index (embedded and over PostgreSQL) compares the
// _id's JSON text: an ObjectId and its hex string, a date and the 64-bit
// int of its milliseconds are one _id there, though not to MongoDB. On a
// clean branch the second of each pair fails on the duplicate key; after
// an application deleted the committed first one (uncommitted), an insert
// of the second is refused as over its uncommitted delete
// (engineEqualIDs); taken, the head held both, which no working database
// on that engine can hold. On MongoDB they are two _ids, and the insert is
// an insert.
func TestReview6InsertOverDeletedEngineEqualID(t *testing.T) {
	oid := bson.NewObjectID()
	for _, tc := range []struct {
		name   string
		docs   string
		del    any
		insert string
	}{
		{name: "objectid then hex string", docs: `{"_id": {"$oid": "` + oid.Hex() + `"}}`, del: oid,
			insert: `{"_id": "` + oid.Hex() + `"}`},
		{name: "hex string then objectid", docs: `{"_id": "` + oid.Hex() + `"}`, del: oid.Hex(),
			insert: `{"_id": {"$oid": "` + oid.Hex() + `"}}`},
		{name: "date then int64 millis", docs: `{"_id": {"$date": {"$numberLong": "1700000000000"}}}`, del: bson.DateTime(1700000000000),
			insert: `{"_id": {"$numberLong": "1700000000000"}}`},
		// More ids than the check looks up one by one: the collection's
		// committed state, folded, answers.
		{name: "hex string among many, objectid deleted", docs: `{"_id": {"$oid": "` + oid.Hex() + `"}}`, del: oid,
			insert: manyIDs(300, `{"_id": "`+oid.Hex()+`"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := review6Deleted(t, "r6eng", tc.docs, tc.del)
			code, out, errOut := review5Argon(dir, "insert", "c", tc.insert)
			if code != 1 || !strings.Contains(errOut, "uncommitted changes") {
				t.Errorf("argon insert c %s after an application deleted the committed %s: exit %d\n%s%s"+
					"want exit 1 and the uncommitted-changes refusal (on a clean branch the engine refuses it as a duplicate key)",
					tc.insert, tc.docs, code, out, errOut)
			}
			review6Unbuildable(t, dir)
		})
	}
}

// An upsert whose filter names the _id by equality other than as
// {_id: value} alone ({_id: 2.0, x: 1}, {_id: {$eq: 2.0}}) inserts a
// document with that _id. upsertID cannot know it (namesID(filter)), so
// Modify checks nothing (refuseDeletedIDs gets an empty list) and
// widens; nothing checks the server's UpsertedID afterwards either. Over
// a committed {_id: 2} an application deleted, the upsert of 2.0 commits a
// second key of the same value (the head cannot be built again); the
// upsert of 2 itself records its new document over the application's
// uncommitted delete as a change of the committed one (issue 7).
func TestReview6UpsertByFilterNamingIDOverDeleted(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"update filter _id 2.0 and x", []string{"update", "c", `{"_id": 2.0, "x": 1}`, `{"$set": {"y": 1}}`, "--upsert"}},
		{"update filter _id $eq 2.0", []string{"update", "c", `{"_id": {"$eq": 2.0}}`, `{"$set": {"y": 1}}`, "--upsert"}},
		{"update filter _id 2 and x", []string{"update", "c", `{"_id": 2, "x": 1}`, `{"$set": {"y": 1}}`, "--upsert"}},
		{"replace filter _id 2.0 and x", []string{"replace", "c", `{"_id": 2.0, "x": 1}`, `{"x": 1, "y": 1}`, "--upsert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := review6Deleted(t, "r6ups", `[{"_id": 1, "x": 1}, {"_id": 2, "x": 1}]`, int32(2))
			code, out, errOut := review5Argon(dir, tc.args...)
			_, log, _ := review5Argon(dir, "log", "--entries")
			if code != 1 || !strings.Contains(errOut, "uncommitted changes") {
				t.Errorf("argon %v after an application deleted the committed {_id: 2}: exit %d\n%s%s"+
					"want exit 1 and the uncommitted-changes refusal\nlog --entries:\n%s",
					tc.args, code, out, errOut, log)
			}
			review6Unbuildable(t, dir)
		})
	}
}

// What held (passes): the deleted-document check goes by value for an
// _id nested in a document ({a: 2} over a deleted {a: 2.0}: the fold
// path), for 0 over a deleted -0.0 (stored 0.0), for the 64-bit 2^53 over
// a deleted double 2^53, for the double -2^63 over a deleted 64-bit
// MinInt64, and for the 64-bit 2^31 over a deleted double 2^31.
func TestReview6DeletedIDsByValueHold(t *testing.T) {
	for _, tc := range []struct {
		name   string
		docs   string
		del    any
		insert string
	}{
		{name: "nested", docs: `{"_id": {"a": 2.0}}`, del: bson.D{{Key: "a", Value: 2.0}}, insert: `{"_id": {"a": 2}}`},
		{name: "zero over negative zero", docs: `{"_id": -0.0}`, del: 0.0, insert: `{"_id": 0}`},
		{name: "2^53", docs: `{"_id": 9007199254740992.0}`, del: float64(1 << 53), insert: `{"_id": {"$numberLong": "9007199254740992"}}`},
		{name: "min int64", docs: `{"_id": {"$numberLong": "-9223372036854775808"}}`, del: int64(-1 << 63), insert: `{"_id": -9223372036854775808.0}`},
		{name: "2^31", docs: `{"_id": 2147483648.0}`, del: float64(1 << 31), insert: `{"_id": {"$numberLong": "2147483648"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := review6Deleted(t, "r6held", tc.docs, tc.del)
			code, out, errOut := review5Argon(dir, "insert", "c", tc.insert)
			if code != 1 || !strings.Contains(errOut, "uncommitted changes") {
				t.Errorf("argon insert c %s after an application deleted the committed %s: exit %d\n%s%s", tc.insert, tc.docs, code, out, errOut)
			}
		})
	}
}

// manyIDs is an insert argument of n documents {_id: "m<i>"} and last.
func manyIDs(n int, last string) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"_id": "m%d"}, `, i)
	}
	return b.String() + last + "]"
}

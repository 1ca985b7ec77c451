package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// connectAs connects to uri as application app ("": none given) until
// the test ends.
func connectAs(t *testing.T, uri, app string) *mongo.Client {
	t.Helper()
	o := options.Client().ApplyURI(uri)
	if app != "" {
		o.SetAppName(app)
	}
	c, err := mongo.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// appWrite starts an insert of _id into db.c by client app and returns
// the channel its error arrives on.
func appWrite(app *mongo.Client, db string, id any) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := app.Database(db).Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: id}})
		done <- err
	}()
	return done
}

// waits reports whether a write started with appWrite is still waiting
// after d; it fails the test if the write failed.
func waits(t *testing.T, done <-chan error, d time.Duration) bool {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		return false
	case <-time.After(d):
		return true
	}
}

// A hold and its release ride on argon's own commands (Carrier): the hold
// on an insert into another database, granted before the insert goes on
// and kept when it succeeds; the release on an update of the held
// database, once the engine answered it. The engine never sees their
// fields, and the answers carry the database's write tokens.
func TestCarriedHoldAndRelease(t *testing.T) {
	uri, _ := serveAt(t, t.TempDir())
	ctx := context.Background()
	connect := func(app string) *mongo.Client { return connectAs(t, uri, app) }
	argon, other, app := connect(holdAppPrefix+"cli"), connect(holdAppPrefix+"cli2"), connect("")
	const db, meta = "ar_p__main", "argon_p"
	if _, err := argon.Database(db).Collection("_argon").InsertOne(ctx, bson.D{{Key: "_id", Value: "m"}, {Key: "v", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	run := func(c *mongo.Client, dbName string, cmd bson.D) (bson.Raw, error) {
		return c.Database(dbName).RunCommand(ctx, cmd).Raw()
	}
	hold := bson.E{Key: carryHold, Value: bson.D{{Key: "db", Value: db}, {Key: "ttlMillis", Value: int64(60000)}}}
	insertCarrying := func(c *mongo.Client, id string) (bson.Raw, error) {
		into := meta
		if c == app {
			into = "appdb" // argon's databases take argon's writes only
		}
		return run(c, into, bson.D{{Key: "insert", Value: "leases"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: id}}}}, hold})
	}

	// A failed insert holds nothing: the hold is let go with its answer.
	if _, err := argon.Database(meta).Collection("leases").InsertOne(ctx, bson.D{{Key: "_id", Value: "l1"}}); err != nil {
		t.Fatal(err)
	}
	ans, err := insertCarrying(argon, "l1")
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("a second insert of l1: %v, want a duplicate key error", err)
	}
	if ans != nil {
		if _, err := ans.LookupErr(answerHeld); err == nil {
			t.Fatalf("a failed insert's answer says the database is held: %v", ans)
		}
	}
	if waits(t, appWrite(app, db, 1), 10*time.Second) {
		t.Fatal("an application's write waited after a carried hold whose command failed")
	}

	// A carried hold: granted, with a token, and kept.
	ans, err = insertCarrying(argon, "l2")
	if err != nil {
		t.Fatal(err)
	}
	token, _ := ans.Lookup(answerHeld, "token").StringValueOK()
	if token == "" {
		t.Fatalf("the carrying insert's answer gives no write token: %v", ans)
	}
	if _, err := ans.LookupErr(carryHold); err == nil {
		t.Fatalf("the answer carries the request's field: %v", ans)
	}
	n, _ := argon.Database(meta).Collection("leases").CountDocuments(ctx, bson.D{{Key: "_id", Value: "l2"}})
	if n != 1 {
		t.Fatalf("the carrying insert inserted %d documents, want 1", n)
	}
	blocked := appWrite(app, db, 2)
	if !waits(t, blocked, 300*time.Millisecond) {
		t.Fatal("an application's write passed while the database was held")
	}
	// Another argon process's carried hold is not granted, and does not
	// wait for the first.
	start := time.Now()
	ans, err = insertCarrying(other, "l3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ans.LookupErr(answerHeld); err == nil {
		t.Fatalf("a second process's carried hold was granted while the first held: %v", ans)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a second process's carried hold waited %v for the first", d)
	}

	// The release rides on an update of the held database.
	ans, err = run(argon, db, bson.D{{Key: "update", Value: "_argon"}, {Key: "updates", Value: bson.A{bson.D{
		{Key: "q", Value: bson.D{{Key: "_id", Value: "m"}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}}}}}},
		{Key: carryRelease, Value: true}})
	if err != nil {
		t.Fatal(err)
	}
	rtoken, _ := ans.Lookup(answerRelease, "token").StringValueOK()
	if rtoken == "" || rtoken == token {
		t.Fatalf("the release's token is %q after %q, want a new one (the update moved it)", rtoken, token)
	}
	if n, _ := ans.Lookup("nModified").AsInt64OK(); n != 1 {
		t.Fatalf("the carrying update modified %d documents: %v", n, ans)
	}
	if waits(t, blocked, 10*time.Second) {
		t.Fatal("an application's write still waited after the carried release")
	}

	// A client that is not argon's gets the field taken off, and nothing
	// held.
	ans, err = insertCarrying(app, "l4")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ans.LookupErr(answerHeld); err == nil {
		t.Fatalf("an application's carried hold was granted: %v", ans)
	}
	if waits(t, appWrite(other, db, 3), 10*time.Second) {
		t.Fatal("a write waited after an application's carried hold")
	}
}

// A follow-up command rides on another (argonThen): the serve passes it
// on once the carrying command succeeded, as the client's own write, and
// answers with both; never after a failure, never for an application,
// and never one that would hold or carry a follow-up itself. The
// marker's update and the hold's release ride on a commit's slot this way.
func TestCarriedFollowUp(t *testing.T) {
	uri, _ := serveAt(t, t.TempDir())
	ctx := context.Background()
	argon, app := connectAs(t, uri, holdAppPrefix+"cli"), connectAs(t, uri, "")
	const db, meta = "ar_p__main", "argon_p"
	marker := argon.Database(db).Collection("_argon")
	if _, err := marker.InsertOne(ctx, bson.D{{Key: "_id", Value: "m"}, {Key: "v", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	setV := func(v int, extra ...bson.E) bson.D {
		return append(bson.D{{Key: "update", Value: "_argon"}, {Key: "updates", Value: bson.A{bson.D{
			{Key: "q", Value: bson.D{{Key: "_id", Value: "m"}}}, {Key: "u", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: v}}}}}}}},
			{Key: "$db", Value: db}}, extra...)
	}
	insertThen := func(c *mongo.Client, into, id string, then bson.D) (bson.Raw, error) {
		return c.Database(into).RunCommand(ctx, bson.D{{Key: "insert", Value: "slots"},
			{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: id}}}}, {Key: carryThen, Value: then}}).Raw()
	}
	v := func() int32 {
		var m struct{ V int32 }
		if err := marker.FindOne(ctx, bson.D{{Key: "_id", Value: "m"}}).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m.V
	}

	// Hold db the old way, then let the follow-up release it.
	if err := argon.Database(db).RunCommand(ctx, bson.D{{Key: holdCommand, Value: 1}, {Key: "ttlMillis", Value: int64(60000)}}).Err(); err != nil {
		t.Fatal(err)
	}
	held, err := WriteToken(ctx, argon, db)
	if err != nil {
		t.Fatal(err)
	}
	blocked := appWrite(app, db, 1)
	ans, err := insertThen(argon, meta, "s1", setV(1, bson.E{Key: carryRelease, Value: true}))
	if err != nil {
		t.Fatal(err)
	}
	then, ok := ans.Lookup(answerThen).DocumentOK()
	if !ok || v() != 1 {
		t.Fatalf("a follow-up of a successful insert: answer %v, marker v %d; want its answer and v 1", ans, v())
	}
	if n, _ := then.Lookup("nModified").AsInt64OK(); n != 1 {
		t.Fatalf("the follow-up's answer: %v", then)
	}
	released, _ := then.Lookup(answerRelease, "token").StringValueOK()
	e0, all0, n0, ok0 := parseToken(held)
	e1, all1, n1, ok1 := parseToken(released)
	if !ok0 || !ok1 || e0 != e1 || all1 != all0 || n1 != n0+1 {
		t.Fatalf("tokens %q at the hold and %q at the release: want the follow-up counted as one write to %s", held, released, db)
	}
	if waits(t, blocked, 10*time.Second) {
		t.Fatal("an application's write still waited after the follow-up's release")
	}

	// A failed insert: no follow-up.
	ans, err = insertThen(argon, meta, "s1", setV(2))
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("a second insert of s1: %v, want a duplicate key error", err)
	}
	if v() != 1 {
		t.Fatalf("the follow-up of a failed insert was passed on: marker v %d", v())
	}
	// Follow-ups that would hold, or carry a follow-up, are not passed on.
	for _, bad := range []bson.D{
		setV(3, bson.E{Key: carryHold, Value: bson.D{{Key: "db", Value: db}}}),
		setV(3, bson.E{Key: carryThen, Value: setV(4)}),
		{{Key: "find", Value: "_argon"}, {Key: "$db", Value: db}},
	} {
		ans, err := insertThen(argon, meta, fmt.Sprintf("s%d", time.Now().UnixNano()), bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ans.LookupErr(answerThen); err == nil || v() != 1 {
			t.Fatalf("follow-up %v was passed on: answer %v, marker v %d", bad, ans, v())
		}
	}
	// An application's follow-up is taken off and not passed on.
	ans, err = insertThen(app, "appdb", "a1", bson.D{{Key: "insert", Value: "c"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: "x"}}}}, {Key: "$db", Value: "appdb"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ans.LookupErr(answerThen); err == nil {
		t.Fatalf("an application's follow-up was passed on: %v", ans)
	}
	if n, _ := app.Database("appdb").Collection("c").CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("an application's follow-up inserted %d documents", n)
	}
}

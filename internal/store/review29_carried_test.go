package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Was a defect (fixed: carriedIn leaves a carried field in first place
// alone, so the engine refuses it as an unknown command). The guard
// classifies a request (classify: its command is its first key,
// and that decides whether it is a write and to which database) before
// carriedIn takes the carried fields off; it then passes on the stripped
// command, whose first key may be another one. An application (no argon
// name, no spoofing) that puts argonReleaseWrites first gets its command
// classified as "argonReleaseWrites", a write to no particular database
// (db ""), which argonDBs.refusal lets through (it refuses by database
// name); the engine then runs the insert or dropDatabase that follows.
// Before this change the engine got the field as the command's name and
// answered "no such command". Shown: an insert into argon's log
// (argon_p.slots) and a dropDatabase of argon_p, both refused without the
// field, both applied with it (the latter also skips
// serveIndexer.dropping/dropped). The _argon marker stays protected: its
// rule goes by the collection, which commandTarget reads from the
// stripped command.
func TestReview29CarriedFieldFirstBypassesArgonDBsRefusal(t *testing.T) {
	uri, _ := serveAt(t, t.TempDir())
	ctx := context.Background()
	argon, app := connectAs(t, uri, holdAppPrefix+"cli"), connectAs(t, uri, "")
	const meta = "argon_p"
	// argon's client makes argon_p a metadata database (it creates the
	// log's unique index on slots, as wal.EnsureSchema does).
	makeMetadata(t, argon.Database(meta))
	run := func(cmd bson.D) error { return app.Database(meta).RunCommand(ctx, cmd).Err() }
	insertSlot := bson.D{{Key: "insert", Value: "slots"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: "forged"}}}}}
	drop := bson.D{{Key: "dropDatabase", Value: 1}}

	// Without the field: refused, as designed.
	if err := run(insertSlot); err == nil {
		t.Fatal("an application's insert into argon's log was not refused")
	}
	if err := run(drop); err == nil {
		t.Fatal("an application's dropDatabase of argon's log was not refused")
	}

	// With argonReleaseWrites first: the same commands reach the engine.
	withField := func(cmd bson.D) bson.D { return append(bson.D{{Key: carryRelease, Value: true}}, cmd...) }
	errSlot := run(withField(insertSlot))
	if n, _ := argon.Database(meta).Collection("slots").CountDocuments(ctx, bson.D{{Key: "_id", Value: "forged"}}); n != 0 {
		t.Errorf("an application inserted a slot into argon's log by putting %s first (err %v)", carryRelease, errSlot)
	}
	errDrop := run(withField(drop))
	if n, _ := argon.Database(meta).Collection("slots").CountDocuments(ctx, bson.D{}); n == 0 {
		t.Errorf("an application dropped argon's log (argon_p) by putting %s first (err %v)", carryRelease, errDrop)
	}
}

// review29Msg is an OP_MSG with section 0 body, a document sequence, and
// optionally a checksum.
func review29Msg(body bson.D, withSeq, checksum bool) []byte {
	b, _ := bson.Marshal(body)
	out := make([]byte, headerBytes+4)
	binary.LittleEndian.PutUint32(out[4:], 7)
	binary.LittleEndian.PutUint32(out[12:], opMsg)
	if checksum {
		binary.LittleEndian.PutUint32(out[headerBytes:], flagChecksum)
	}
	out = append(out, 0)
	out = append(out, b...)
	if withSeq {
		d, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
		seq := append([]byte("documents\x00"), d...)
		n := make([]byte, 4)
		binary.LittleEndian.PutUint32(n, uint32(4+len(seq)))
		out = append(out, 1)
		out = append(out, n...)
		out = append(out, seq...)
	}
	if checksum {
		out = append(out, 0, 0, 0, 0)
	}
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

// Not a defect (checked): carriedIn, withoutFields, withSectionZero,
// withFields and answerFailed, fed mutated and truncated messages that
// carry the fields (as a hostile application could send them: refusal
// lets malformed documents through), never panic, and what carriedIn
// passes on is a well-formed message without the fields whenever it
// strips them.
func TestReview29CarriedWireFuzz(t *testing.T) {
	seeds := [][]byte{
		review29Msg(bson.D{{Key: "insert", Value: "leases"}, {Key: carryHold, Value: bson.D{{Key: "db", Value: "ar_p__main"}, {Key: "ttlMillis", Value: int64(5)}}}, {Key: "$db", Value: "argon_p"}}, true, false),
		review29Msg(bson.D{{Key: "update", Value: "_argon"}, {Key: carryRelease, Value: true}, {Key: "$db", Value: "ar_p__main"}}, false, true),
		review29Msg(bson.D{{Key: carryRelease, Value: bson.D{{Key: "x", Value: bson.A{1, "a"}}}}, {Key: carryHold, Value: "s"}, {Key: "$db", Value: "a"}}, true, true),
	}
	rng := rand.New(rand.NewSource(29))
	for i := 0; i < 300000; i++ {
		msg := append([]byte(nil), seeds[i%len(seeds)]...)
		for k := rng.Intn(4); k >= 0; k-- {
			switch rng.Intn(4) {
			case 0:
				msg[rng.Intn(len(msg))] = byte(rng.Intn(256))
			case 1:
				if len(msg) > headerBytes+5 {
					msg = msg[:headerBytes+5+rng.Intn(len(msg)-headerBytes-5)]
				}
			case 2:
				if len(msg) <= headerBytes+5 {
					continue
				}
				p := headerBytes + 5 + rng.Intn(len(msg)-headerBytes-5)
				if p+4 <= len(msg) {
					binary.LittleEndian.PutUint32(msg[p:], uint32(rng.Int31n(1<<12))-1024)
				}
			case 3:
				if len(msg) > headerBytes+4 {
					msg[headerBytes+4] = byte(rng.Intn(3))
				}
			}
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic %v on %x", r, msg)
				}
			}()
			c, out, ok := carriedIn(msg)
			_ = c
			if ok {
				if body, found := sectionZero(out); found {
					if _, err := body.LookupErr(carryHold); err == nil && len(out) != len(msg) {
						t.Fatalf("stripped message still carries %s: %x", carryHold, out)
					}
				}
				_, _, _ = classify(out)
				_ = refusal(out)
			}
			if body, found := sectionZero(msg); found {
				_ = answerFailed(body)
				ans := withSectionZero(msg, withFields(body, bson.D{{Key: answerHeld, Value: bson.D{{Key: "token", Value: "t"}}}}))
				_, _ = sectionZero(ans)
			}
		}()
	}
}

// dropAnswerRelay relays connections to upstream and, when an answer
// holds marker, closes that connection instead of passing it on: a
// connection lost after the serve answered. It returns its URI.
func dropAnswerRelay(t *testing.T, upstream string, marker []byte) string {
	t.Helper()
	addr := testRelay(t, upstream, nil, func(msg []byte) bool {
		return !bytes.Contains(msg, marker) // lost with the connection
	})
	return "mongodb://" + addr + "/?directConnection=true"
}

// Was a defect (fixed: Done releases after any error but the engine's
// write error). A carried hold granted by the serve whose answer is lost
// with its connection (or cut off by the caller's context) was never let go by the
// client: Carrier.Done sends the explicit release only for an error that
// is not a mongo.ServerError, but the Go driver reports a network error,
// and a context cancelled while it waits for the answer, as a
// mongo.CommandError (driver.Error with the NetworkError label), which is
// a ServerError. The serve keeps the hold for the process's tag, and an
// application's writes to the database wait until the hold's TTL (the
// lease TTL, up to 10 minutes) or until the process closes its last
// connection, while the process holds nothing (its serveHolds has depth
// 0, no renewal). Before, Hold released on any error but code 59.
func TestReview29CarriedHoldLostAnswerIsNeverReleased(t *testing.T) {
	t.Parallel()
	serveURI, _ := serveAt(t, t.TempDir())
	serveAddr := serveURI[len("mongodb://") : len(serveURI)-1]
	uri := dropAnswerRelay(t, serveAddr, []byte(answerHeld))
	ctx := context.Background()
	argon := connectAs(t, uri, holdAppPrefix+"lost")
	app := connectAs(t, serveURI, "")
	const db, meta = "ar_p__main", "argon_p"
	if _, err := argon.Database(meta).Collection("leases").InsertOne(ctx, bson.D{{Key: "_id", Value: "l0"}}); err != nil {
		t.Fatal(err)
	}
	s := newServeHolds(argon, nil, true)
	const ttl = 60 * time.Second
	c := s.holdOn(db, ttl)
	if c == nil {
		t.Fatal("no carrier")
	}
	f := c.Field()
	ans, err := argon.Database(meta).RunCommand(ctx, bson.D{{Key: "insert", Value: "leases"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: "l1"}}}}, {Key: "ordered", Value: true}, f}).Raw()
	var se mongo.ServerError
	t.Logf("carrying insert: err %v (network %v, ServerError %v)", err, mongo.IsNetworkError(err), errors.As(err, &se))
	if err == nil {
		t.Fatal("the answer was not lost")
	}
	if rel := c.Done(ans, err); rel != nil {
		t.Fatal("Done adopted a hold whose answer was lost")
	}
	s.mu.Lock()
	depth := s.depth[db]
	s.mu.Unlock()
	if depth != 0 {
		t.Fatalf("the process counts %d holds of %s", depth, db)
	}
	// The process is alive and holds nothing; an application's write
	// should pass.
	done := appWrite(app, db, 1)
	if waits(t, done, 5*time.Second) {
		t.Errorf("an application's write waits for a hold the process does not know it has (lost answer, %v): it lasts the hold's TTL (%v) or the process", err, ttl)
		// The explicit release Done skipped frees it.
		_ = s.send(ctx, db, true, false, ttl)
		if waits(t, done, 10*time.Second) {
			t.Fatal("the application's write still waits after an explicit release")
		}
	}
}

// Was a defect (fixed with the one above). The same as
// TestReview29CarriedHoldLostAnswerIsNeverReleased, with no
// network fault: the carrying insert is cut off by its caller's context
// while the guard's tryHold waits for an application's write passed on
// just before (settle; here 3 s at the engine). The driver reports the
// expired context as a mongo.CommandError (NetworkError label), so Done
// sends no release; the guard then grants the hold, passes the insert on
// and keeps the hold because the insert succeeded. The explicit Hold
// released after any such error (and its release, arriving during
// settle, found the hold in place and ended it).
func TestReview29CarriedHoldCutOffByContextIsNeverReleased(t *testing.T) {
	t.Parallel()
	serveURI, _ := serveAt(t, t.TempDir())
	serveAddr := serveURI[len("mongodb://") : len(serveURI)-1]
	marker := []byte("slow-app-write")
	slow, got := slowRelay(t, serveAddr, marker, 3*time.Second)
	uri := guardAt(t, slow)
	ctx := context.Background()
	argon, app := connectAs(t, uri, holdAppPrefix+"cut"), connectAs(t, uri, "")
	const db, meta = "ar_p__main", "argon_p"
	if _, err := app.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	if err := argon.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := app.Database(db).Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: 0}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "app", Value: string(marker)}}}})
		slowDone <- err
	}()
	<-got // the application's write is passed on, not answered yet
	s := newServeHolds(argon, nil, true)
	c := s.holdOn(db, time.Minute)
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	ans, err := argon.Database(meta).RunCommand(cctx, bson.D{{Key: "insert", Value: "leases"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: "l1"}}}}, {Key: "ordered", Value: true}, c.Field()}).Raw()
	cancel()
	var se mongo.ServerError
	t.Logf("carrying insert: err %v (ServerError %v)", err, errors.As(err, &se))
	if err == nil {
		t.Fatal("the insert was not cut off")
	}
	if rel := c.Done(ans, err); rel != nil {
		t.Fatal("Done adopted a hold")
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the guard passes the insert on once settled
	if waits(t, appWrite(app, db, 1), 5*time.Second) {
		t.Errorf("an application's write waits for a hold the process gave up on (%v)", err)
	}
}

package store

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A hold of a working database's writes, and its release, can ride on a
// command argon sends to argon serve anyway, instead of taking a message
// of their own (issue 6 counts a one-document insert's messages): the
// hold on the insert that takes the lease, the release on the update
// that advances the working database's marker. The guard takes the field
// off before the engine sees the command.
//
//   - {insert: ..., argonHoldOn: {db: DB, ttlMillis: N}}: the guard
//     holds DB's writes for the client before it passes the command on,
//     but only when no other client holds them (it never waits for one:
//     the writer's own wait for the lease, with its notice and its
//     timeout, stays in charge), and lets them go again when the command
//     fails. The answer then carries argonHeld: {token: T}, T being DB's
//     write token as the hold began (see writeHolds). Without argonHeld
//     in the answer nothing is held, and the client holds as before.
//
//   - {update: ..., $db: DB, argonReleaseWrites: true}: once the engine
//     answered the command, the guard notes DB's write token and ends
//     the client's hold of DB; the answer carries argonReleased:
//     {token: T}.
//
//   - {insert: ..., argonThen: {update: ..., $db: DB, ...}}: once the
//     engine answered the insert, and only when it succeeded, the guard
//     passes the command argonThen holds on to the engine as the
//     client's own next write would go (argonThen may carry
//     argonReleaseWrites itself, nothing else of these), and answers the
//     insert once that command was answered, with argonThen: its answer.
//     An answer without argonThen means the command was not passed on.
//     The writer's marker update rides on its slot's insert this way
//     (commit's writer.insertCommit): the commit's last round trip.
//
// An argon serve that knows these fields says so in its serve.json
// (ServeInfo.CarriedHolds for the first two, ServeInfo.FollowUps for
// argonThen): one from before them would pass the field on to the engine,
// which refuses a command with a field it does not know.
const (
	carryHold     = "argonHoldOn"
	carryRelease  = "argonReleaseWrites"
	carryThen     = "argonThen"
	answerHeld    = "argonHeld"
	answerRelease = "argonReleased"
)

// carried is a hold, a release or a follow-up asked for by a field of a
// command.
type carried struct {
	hold    string // the database to hold, lower case
	ttl     int64
	release bool
	// then is the follow-up command's body (nil: none).
	then bson.Raw
}

// carriedIn finds a carried hold, release or follow-up in request msg and
// returns msg without its field. ok is false when msg carries none.
func carriedIn(msg []byte) (c carried, out []byte, ok bool) {
	body, found := sectionZero(msg)
	if !found {
		return carried{}, msg, false
	}
	// The command is its first field, which the guard classified the
	// request by: a carried field there is no command of argon's, and
	// taken off it would leave another field for the engine to take as
	// the command (found by review: an application's
	// {argonReleaseWrites: true, dropDatabase: 1} of argon's log passed
	// the guard as a write to no database in particular).
	if first, err := body.IndexErr(0); err != nil || isCarried(first.Key()) {
		return carried{}, msg, false
	}
	h, herr := body.LookupErr(carryHold)
	r, rerr := body.LookupErr(carryRelease)
	th, terr := body.LookupErr(carryThen)
	if herr != nil && rerr != nil && terr != nil {
		return carried{}, msg, false
	}
	if terr == nil {
		c.then, _ = th.DocumentOK()
	}
	if herr == nil {
		if d, isDoc := h.DocumentOK(); isDoc {
			db, _ := d.Lookup("db").StringValueOK()
			c.hold = strings.ToLower(db)
			c.ttl, _ = d.Lookup("ttlMillis").AsInt64OK()
		}
	}
	if rerr == nil {
		c.release, _ = r.BooleanOK()
	}
	stripped, err := withoutFields(body, carryHold, carryRelease, carryThen)
	if err != nil {
		return carried{}, msg, false
	}
	return c, withSectionZero(msg, stripped), true
}

// isCarried reports the name of a carried field.
func isCarried(key string) bool {
	return key == carryHold || key == carryRelease || key == carryThen
}

// withoutFields is doc without its top-level fields named keys.
func withoutFields(doc bson.Raw, keys ...string) (bson.Raw, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, len(doc))
	for _, el := range elems {
		drop := false
		for _, k := range keys {
			drop = drop || el.Key() == k
		}
		if !drop {
			out = append(out, el...)
		}
	}
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out, nil
}

// withFields is doc with the fields of d added at its end.
func withFields(doc bson.Raw, d bson.D) bson.Raw {
	add, err := bson.Marshal(d)
	if err != nil || len(doc) < 5 {
		return doc
	}
	out := make([]byte, 0, len(doc)+len(add))
	out = append(out, doc[:len(doc)-1]...)
	out = append(out, add[4:]...) // its elements and the final 0
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

// withSectionZero is OP_MSG msg with its section 0 replaced by body, its
// other sections kept, and no checksum (the message changed).
func withSectionZero(msg []byte, body bson.Raw) []byte {
	secs, _ := sections(msg)
	out := make([]byte, headerBytes+4, len(msg)+len(body))
	copy(out, msg[:headerBytes+4])
	binary.LittleEndian.PutUint32(out[headerBytes:], flags(msg)&^flagChecksum)
	for len(secs) > 0 {
		kind := secs[0]
		rest := secs[1:]
		switch kind {
		case 0:
			_, after, ok := bsonDoc(rest)
			if !ok {
				return msg
			}
			out = append(out, 0)
			out = append(out, body...)
			secs = after
		case 1:
			if len(rest) < 4 {
				return msg
			}
			size := int(int32(binary.LittleEndian.Uint32(rest)))
			if size < 4 || size > len(rest) {
				return msg
			}
			out = append(out, secs[:1+size]...)
			secs = rest[size:]
		default:
			return msg
		}
	}
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

// answerFailed reports an answer that says its command failed: not ok,
// or with write errors.
func answerFailed(body bson.Raw) bool {
	ok, isNum := body.Lookup("ok").AsFloat64OK()
	if !isNum || ok != 1 {
		return true
	}
	_, werr := body.LookupErr("writeErrors")
	_, wcerr := body.LookupErr("writeConcernError")
	return werr == nil || wcerr == nil
}

// carry runs the guard's side of c for a request of client tag to
// database db (see above) and returns what to do with the request's
// answer (nil: nothing).
func carry(c carried, db, tag string, writes *writeLog, holds *writeHolds) func([]byte) []byte {
	switch {
	case tag == "":
		return nil
	case c.hold != "":
		if !holds.tryHold(c.hold, tag, holdTTLOf(c.ttl)) {
			return nil
		}
		token := writes.token(c.hold)
		return func(ans []byte) []byte {
			body, ok := sectionZero(ans)
			if !ok || answerFailed(body) {
				holds.release(c.hold, tag)
				return ans
			}
			return withSectionZero(ans, withFields(body, bson.D{{Key: answerHeld, Value: bson.D{{Key: "token", Value: token}}}}))
		}
	case c.release:
		return func(ans []byte) []byte {
			// Answered, so applied: the token counts it, and a write let
			// through by the release is not in the token.
			token := writes.token(db)
			holds.release(db, tag)
			body, ok := sectionZero(ans)
			if !ok {
				return ans
			}
			return withSectionZero(ans, withFields(body, bson.D{{Key: answerRelease, Value: bson.D{{Key: "token", Value: token}}}}))
		}
	}
	return nil
}

// then is the answer hook of a request carrying follow-up command body
// (see above): after the request's own hook (after, nil: none), a
// request that succeeded has body passed on by follow, and its answer
// waits for the follow-up's (nil is returned: nothing goes now). follow
// reports false when it did not pass the command on; the answer then goes
// as it is.
func then(body bson.Raw, after func([]byte) []byte, follow func(bson.Raw, func([]byte) []byte) bool) func([]byte) []byte {
	return func(ans []byte) []byte {
		if after != nil {
			ans = after(ans)
		}
		first, ok := sectionZero(ans)
		if !ok || answerFailed(first) {
			return ans
		}
		sent := follow(body, func(next []byte) []byte {
			got, ok := sectionZero(next)
			if !ok {
				got, _ = bson.Marshal(bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: "the follow-up's answer could not be read"}})
			}
			return withSectionZero(ans, withFields(first, bson.D{{Key: answerThen, Value: got}}))
		})
		if !sent {
			return ans
		}
		return nil
	}
}

// answerThen is the field of an answer that holds the follow-up's.
const answerThen = carryThen

// requestMsg is the OP_MSG request id with command body.
func requestMsg(id int32, body bson.Raw) []byte {
	n := headerBytes + 4 + 1 + len(body)
	out := make([]byte, n)
	binary.LittleEndian.PutUint32(out[0:], uint32(n))
	binary.LittleEndian.PutUint32(out[4:], uint32(id))
	binary.LittleEndian.PutUint32(out[12:], opMsg)
	copy(out[headerBytes+5:], body) // flags 0, section kind 0
	return out
}

// Carrier is a hold or a release of a database's writes riding on a
// command this process sends to argon serve anyway (see above). Done must
// be called with the command's answer or error once it was sent.
type Carrier struct {
	s       *serveHolds
	db      string
	ttl     time.Duration
	release bool
	// n0 and all0 are this process's own write counts before the
	// command (see ownWrites).
	n0, all0 int64
	done     bool
}

// Field is the field to add to the carrying command.
func (c *Carrier) Field() bson.E {
	if c.release {
		return bson.E{Key: carryRelease, Value: true}
	}
	return bson.E{Key: carryHold, Value: bson.D{{Key: "db", Value: c.db}, {Key: "ttlMillis", Value: c.ttl.Milliseconds()}}}
}

// holdOn returns a Carrier of a hold of db, or nil when the serve does not
// know carried holds or this process holds db already (a nested hold
// takes a message of its own). The serveHolds stay locked until Done.
func (s *serveHolds) holdOn(db string, ttl time.Duration) *Carrier {
	return s.carrier(db, 0, &Carrier{s: s, db: db, ttl: ttl})
}

// releaseOn returns a Carrier of the release of db, which this process
// holds once, or nil (the caller releases as before). The serveHolds stay
// locked until Done.
func (s *serveHolds) releaseOn(db string) *Carrier {
	return s.carrier(db, 1, &Carrier{s: s, db: db, release: true})
}

// carrier returns c, with this process's own write counts now, when the
// serve knows carried holds and this process holds db depth times; it
// then leaves s.mu locked (Done unlocks it).
func (s *serveHolds) carrier(db string, depth int, c *Carrier) *Carrier {
	if !s.carried {
		return nil
	}
	s.mu.Lock()
	if s.depth[db] != depth {
		s.mu.Unlock()
		return nil
	}
	if c.release {
		c.ttl = s.ttl[db]
	}
	if s.own != nil {
		c.n0, c.all0, _ = s.own.counts(db)
	}
	return c
}

// Done takes the answer to the carrying command (err: its error). For a
// hold, it returns the function that releases it, or nil when nothing
// was held (the caller holds as before). For a release, it returns a
// no-op function when the serve released the hold, or nil when the
// caller must still release it.
func (c *Carrier) Done(answer bson.Raw, err error) func() {
	s := c.s
	if c.done {
		return nil
	}
	c.done = true
	defer s.mu.Unlock()
	var got struct {
		Held     *struct{ Token string } `bson:"argonHeld"`
		Released *struct{ Token string } `bson:"argonReleased"`
	}
	if err == nil {
		err = bson.Unmarshal(answer, &got)
	}
	if c.release {
		if err != nil || got.Released == nil {
			return nil
		}
		s.drop(c.db)
		// The token counts the carrying write: it stands for this
		// process's writes when that write was its only one since.
		if s.own != nil {
			if n1, all1, ok := s.own.counts(c.db); ok && n1 == c.n0+1 && all1 == c.all0 {
				s.released[c.db] = tokenCounts{token: got.Released.Token, n: n1, all: all1}
			}
		}
		return func() {}
	}
	if err != nil || got.Held == nil {
		var we mongo.WriteException
		if err != nil && !errors.As(err, &we) {
			// Lost with its answer (the driver reports a network error
			// or a timeout as a CommandError too), perhaps after the
			// serve held: let it go. A write error is the engine's
			// answer, on which the serve let the hold go itself (found
			// by review: a dropped connection left the hold for its TTL).
			_ = s.send(context.Background(), c.db, true, false, c.ttl)
		}
		return nil
	}
	tc := tokenCounts{}
	if s.own != nil {
		if n1, all1, ok := s.own.counts(c.db); ok && n1 == c.n0 && all1 == c.all0 {
			tc = tokenCounts{token: got.Held.Token, n: n1, all: all1}
		}
	}
	return s.adopt(c.db, c.ttl, tc)
}

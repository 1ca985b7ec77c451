package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The embedded engine (FerretDB v1.24.2) closes a client's connection when
// a request holds some BSON types, in a document or in a filter: measured
// with the official Node.js driver, Decimal128, MinKey, MaxKey, JavaScript
// code and NaN doubles. A driver then sees "connection closed" instead of
// an error it can handle. `argon serve` therefore listens itself and
// passes each request on to the engine only when it holds none of them;
// otherwise it answers the request with a MongoDB error reply (code 2,
// BadValue, naming the field and the type) and the connection stays open.

const (
	opMsg       = 2013
	maxMsgBytes = 48 * 1024 * 1024 // MongoDB's maxMessageSizeBytes
	headerBytes = 16
	// flagBits of OP_MSG
	flagChecksum   = 1 << 0
	flagMoreToCome = 1 << 1
)

// UnstorableTypes are the BSON types FerretDB v1 (the embedded engine, or
// a FerretDB server) cannot store, named for messages: measured, it
// refuses some and drops the connection on the others. The guard of argon
// serve and argon's own checks (workdb.CheckDocument) share this list.
var UnstorableTypes = map[bson.Type]string{
	bson.TypeDecimal128:    "a Decimal128",
	bson.TypeMinKey:        "a MinKey",
	bson.TypeMaxKey:        "a MaxKey",
	bson.TypeJavaScript:    "JavaScript code",
	bson.TypeCodeWithScope: "JavaScript code with scope",
	bson.TypeSymbol:        "a symbol",
	bson.TypeDBPointer:     "a DBPointer",
	bson.TypeUndefined:     "undefined",
}

// guardProxy accepts clients on ln and relays each to the engine at
// engineAddr, refusing requests the engine would drop the connection on.
// It counts the writes it passes on in writes (see writeLog), tells ix of
// those that create or drop collections and databases (see
// serveIndexer; nil: none), and counts its clients in act.
// Writes of other clients wait while argon's own client holds their
// database (see writeHolds).
func guardProxy(ln net.Listener, engineAddr string, writes *writeLog, ix *serveIndexer, holds *writeHolds, act *activity, argon *argonDBs) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		act.open()
		go func() {
			defer act.close()
			relay(c, engineAddr, writes, ix, holds, argon)
		}()
	}
}

// activity counts a serve's open client connections, and since when it
// has had none.
type activity struct {
	mu    sync.Mutex
	conns int
	since time.Time
}

// firstClientGrace is how long a serve waits for its first client
// however short its idle time: the command that started it connects only
// once it has seen its serve.json.
const firstClientGrace = 10 * time.Second

func newActivity() *activity { return &activity{since: time.Now().Add(firstClientGrace)} }

func (a *activity) open() {
	a.mu.Lock()
	a.conns++
	a.mu.Unlock()
}

func (a *activity) close() {
	a.mu.Lock()
	a.conns--
	if a.conns == 0 {
		a.since = time.Now()
	}
	a.mu.Unlock()
}

// idleFor says how long the serve has had no client (0 while it has one).
func (a *activity) idleFor() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conns > 0 || time.Now().Before(a.since) {
		return 0
	}
	return time.Since(a.since)
}

func relay(client net.Conn, engineAddr string, writes *writeLog, ix *serveIndexer, holds *writeHolds, argon *argonDBs) {
	defer client.Close()
	server, err := net.Dial("tcp", engineAddr)
	if err != nil {
		return
	}
	defer server.Close()
	var wmu sync.Mutex // whole messages to the client, from either side
	// This client's requests passed on and not answered yet.
	out := newOutstanding(writes, ix)
	// tag names the client's process when it is argon's (see writeHolds).
	greeted, tag, own := false, "", false
	// endTag counts this connection of tag's process as closed, once.
	var endTag func()
	// closing: the client left; nothing more is passed on (pass).
	var closing atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer client.Close()
		// gone: the client cannot be written to any more; the engine's
		// answers are still read, so that requests passed on are seen
		// answered (see the end of relay).
		gone := false
		for {
			msg, err := readMessage(server)
			if err != nil {
				return
			}
			// The engine answers a write once it is applied.
			forward, after := out.answer(msg)
			if !forward {
				continue
			}
			if after != nil {
				if msg = after(msg); msg == nil {
					continue // answered with a follow-up's (see Carrier)
				}
			}
			if gone {
				continue
			}
			wmu.Lock()
			_, err = client.Write(msg)
			wmu.Unlock()
			if err != nil {
				gone = true
				client.Close()
			}
		}
	}()
	var smu sync.Mutex // whole messages to the engine, from either side
	// pass passes request msg on to the engine (cmd, db, write: as
	// classify says), to be answered through after (nil: as it is).
	pass := func(msg []byte, cmd, db string, write bool, after func([]byte) []byte) error {
		// Counted and sent in one step: the engine answers in the
		// order it reads.
		smu.Lock()
		defer smu.Unlock()
		req := request{db: db, write: write, cmd: cmd, after: after}
		if write && ix != nil {
			req.coll, req.file = commandTarget(msg)
			if cmd == "dropDatabase" {
				ix.dropping(db) // waits while the indexer has a file open
			}
			ix.passed(cmd, db, req.coll)
		}
		// Counted before it can reach the engine, which answers it even
		// when the client expects no answer (w: 0). A write waits while
		// another client holds its database (writeHolds), and is counted
		// before any hold can be granted after it. Once the client left,
		// nothing is counted or passed on: a follow-up that waited for a
		// hold meanwhile would otherwise be counted as a write whose
		// client left, and its database would have no token any more
		// (found by review).
		counted := false
		dropped := ""
		count := func() {
			if closing.Load() {
				return
			}
			if write && !own {
				if dropped = argon.droppedRefusal(db); dropped != "" {
					return
				}
			}
			out.sent(msg, req)
			counted = true
		}
		if write {
			holds.pass(db, tag, count)
		} else {
			count()
		}
		if dropped != "" {
			if flags(msg)&flagMoreToCome != 0 {
				return nil // the client expects no reply (w: 0)
			}
			wmu.Lock()
			_, err := client.Write(errorReply(msg, dropped, 13, "Unauthorized"))
			wmu.Unlock()
			return err
		}
		if !counted {
			return errClientLeft
		}
		_, err := server.Write(msg)
		return err
	}
	// follow passes on, for argon's own client, the follow-up command
	// body carried by a request (see Carrier), once that request was
	// answered: it goes as the client's own write would, its answer
	// through after. It reports false when it could not be passed on.
	nextID := int32(math.MinInt32) // the driver's request ids are positive
	follow := func(body bson.Raw, after func([]byte) []byte) bool {
		nextID++
		msg := requestMsg(nextID, body)
		cmd, db, write := classify(msg)
		if !write || db == "" || refusal(msg) != "" {
			return false
		}
		var inner func([]byte) []byte
		if c, stripped, ok := carriedIn(msg); ok {
			if c.then != nil || c.hold != "" {
				return false
			}
			msg = stripped
			inner = carry(c, db, tag, writes, holds)
		}
		coll, _ := commandTarget(msg)
		argon.wrote(db, coll, cmd, msg)
		argon.ownWrite(db, cmd)
		argon.reserved(cmd, coll, msg)
		return pass(msg, cmd, db, write, func(ans []byte) []byte {
			if inner != nil {
				ans = inner(ans)
			}
			return after(ans)
		}) == nil
	}
	for {
		msg, err := readMessage(client)
		if err != nil {
			break
		}
		if why := refusal(msg); why != "" {
			code, codeName := int32(2), "BadValue"
			if why == noTransactions {
				code, codeName = 20, "IllegalOperation"
			}
			if flags(msg)&flagMoreToCome != 0 {
				continue // the client expects no reply (w: 0)
			}
			wmu.Lock()
			_, err = client.Write(errorReply(msg, why, code, codeName))
			wmu.Unlock()
			if err != nil {
				break
			}
			continue
		}
		cmd, db, write := classify(msg)
		if !greeted && isHandshake(cmd) {
			// The first handshake names the client (see writeHolds).
			greeted = true
			own = isArgonClient(handshakeBody(msg))
			if tag = holdTag(handshakeBody(msg)); tag != "" {
				holds.connected(tag)
				endTag = sync.OnceFunc(func() { holds.disconnected(tag) })
				defer endTag()
			}
		}
		// A hold or release riding on this command (see Carrier): the
		// engine never sees its field.
		var after func([]byte) []byte
		if c, stripped, ok := carriedIn(msg); ok {
			msg = stripped
			if flags(msg)&flagMoreToCome == 0 {
				after = carry(c, db, tag, writes, holds)
				if c.then != nil && tag != "" {
					after = then(c.then, after, follow)
				}
			}
		}
		if cmd == holdCommand {
			if flags(msg)&flagMoreToCome != 0 {
				continue
			}
			var ans []byte
			if tag == "" {
				ans = errorReply(msg, holdCommand+" is for argon's own client", 2, "BadValue")
			} else {
				body, _ := sectionZero(msg)
				release, _ := body.Lookup("release").BooleanOK()
				renew, _ := body.Lookup("renew").BooleanOK()
				ttl, _ := body.Lookup("ttlMillis").AsInt64OK()
				// The database's write token as the hold begins and
				// ends: no other client's write moves it in between, so
				// the holder needs no token request of its own there.
				var token string
				switch {
				case release:
					token = writes.token(db)
					holds.release(db, tag)
				case renew:
					holds.hold(db, tag, true, holdTTLOf(ttl))
				default:
					holds.hold(db, tag, false, holdTTLOf(ttl))
					token = writes.token(db)
				}
				ans = reply(msg, bson.D{{Key: "ok", Value: 1.0}, {Key: "token", Value: token}})
			}
			wmu.Lock()
			_, err = client.Write(ans)
			wmu.Unlock()
			if err != nil {
				break
			}
			continue
		}
		if cmd == writesCommand {
			if flags(msg)&flagMoreToCome != 0 {
				continue
			}
			wmu.Lock()
			_, err = client.Write(reply(msg, bson.D{{Key: "ok", Value: 1.0}, {Key: "token", Value: writes.token(db)}}))
			wmu.Unlock()
			if err != nil {
				break
			}
			continue
		}
		if write {
			// argon's own databases take argon's writes only (argonDBs).
			coll, _ := commandTarget(msg)
			if own {
				argon.wrote(db, coll, cmd, msg)
				argon.ownWrite(db, cmd)
				argon.reserved(cmd, coll, msg)
			} else if why := cmp.Or(argon.refusal(db, coll), argon.renameRefusal(cmd, msg)); why != "" {
				if flags(msg)&flagMoreToCome != 0 {
					continue
				}
				wmu.Lock()
				_, err = client.Write(errorReply(msg, why, 13, "Unauthorized"))
				wmu.Unlock()
				if err != nil {
					break
				}
				continue
			}
		}
		if err := pass(msg, cmd, db, write, after); err != nil {
			break
		}
	}
	// The client left. Its process's holds end with its last connection,
	// now; what it passed on is still followed: a write the engine is
	// still applying stays pending (writeLog), so a hold granted from
	// here on waits for it (settle) instead of letting it land under the
	// new holder, a repair of the keys the gone writer announced
	// included (issue 7: a killed client's batch became visible). It is
	// waited for up to drainWait: seen answered, it is no write whose
	// client left, which would leave its database without a token until
	// the serve restarts.
	closing.Store(true)
	if endTag != nil {
		endTag()
	}
	// (Not past the engine's end: the reader then stops, and no answer
	// can come.)
	for deadline := time.Now().Add(writes.drainWait()); !out.idle() && time.Now().Before(deadline); {
		select {
		case <-done:
			deadline = time.Now()
		case <-time.After(time.Millisecond):
		}
	}
	smu.Lock() // a pass in progress ends first
	server.Close()
	smu.Unlock()
	<-done
	out.abandon()
}

// drainWait is how long a relay whose client left waits for the answers
// to the requests it passed on: as long as a hold lasts unrenewed, so that
// a writer that takes over a gone one's lease (which takes at least that
// long) finds its writes answered or waits for them. It was 2 s until the
// twenty-third session. (A guard's writeLog can set another, for tests.)
const drainWait = holdTTL

// errClientLeft is pass's answer once the client has left.
var errClientLeft = errors.New("the client left")

// readMessage reads one whole wire-protocol message.
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [headerBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(hdr[:4])))
	if n < headerBytes || n > maxMsgBytes {
		return nil, fmt.Errorf("message of %d bytes", n)
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[headerBytes:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

func flags(msg []byte) uint32 {
	if opCode(msg) != opMsg || len(msg) < headerBytes+4 {
		return 0
	}
	return binary.LittleEndian.Uint32(msg[16:20])
}

// sections returns the sections of OP_MSG msg, after its flags and without
// its checksum; false for another message.
func sections(msg []byte) ([]byte, bool) {
	if opCode(msg) != opMsg || len(msg) < headerBytes+5 {
		return nil, false
	}
	body := msg[headerBytes+4:]
	if flags(msg)&flagChecksum != 0 && len(body) >= 4 {
		body = body[:len(body)-4]
	}
	return body, true
}

// noTransactions answers a request that is part of a multi-document
// transaction: the engine has none, and would answer with a puzzling
// "unknown field autocommit".
const noTransactions = "the embedded engine has no transactions: use a MongoDB replica set (argon --uri) for code that needs them"

// inTransaction reports a command body that starts, runs in, commits or
// aborts a transaction.
func inTransaction(body bson.Raw) bool {
	if _, err := body.LookupErr("autocommit"); err == nil {
		return true
	}
	if _, err := body.LookupErr("startTransaction"); err == nil {
		return true
	}
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 {
		return false
	}
	switch elems[0].Key() {
	case "commitTransaction", "abortTransaction":
		return true
	}
	return false
}

// eachDocument calls fn with each document of OP_MSG msg: the command
// body (seq false), then the documents of each document sequence (seq
// true, n counting them within it), until fn returns false. It reports
// false when msg is not an OP_MSG or a section does not parse; fn has
// seen the documents before that.
func eachDocument(msg []byte, fn func(seq bool, n int, doc bson.Raw) bool) bool {
	body, ok := sections(msg)
	if !ok {
		return false
	}
	for len(body) > 0 {
		kind := body[0]
		body = body[1:]
		switch kind {
		case 0: // one document
			doc, rest, ok := bsonDoc(body)
			if !ok {
				return false
			}
			if !fn(false, 0, doc) {
				return true
			}
			body = rest
		case 1: // a document sequence: size, identifier, documents
			if len(body) < 4 {
				return false
			}
			size := int(int32(binary.LittleEndian.Uint32(body)))
			if size < 4 || size > len(body) {
				return false
			}
			seq := body[4:size]
			body = body[size:]
			if i := bytes.IndexByte(seq, 0); i >= 0 {
				seq = seq[i+1:]
			}
			for n := 0; len(seq) > 0; n++ {
				doc, rest, ok := bsonDoc(seq)
				if !ok {
					return false
				}
				if !fn(true, n, doc) {
					return true
				}
				seq = rest
			}
		default:
			return false
		}
	}
	return true
}

// refusal says why the engine cannot take request msg, or "" when it can.
// Only OP_MSG is inspected; other messages (the legacy OP_QUERY handshake)
// pass as they are.
func refusal(msg []byte) string {
	why := ""
	eachDocument(msg, func(seq bool, n int, doc bson.Raw) bool {
		switch {
		case !seq && inTransaction(doc):
			why = noTransactions
		case !seq:
			why = cmp.Or(guardDoc(doc, ""), misEvaluatedIn(doc, false))
		default:
			if w := cmp.Or(guardDoc(doc, ""), misEvaluatedIn(doc, true)); w != "" {
				why = fmt.Sprintf("document %d: %s", n+1, w)
			}
		}
		return why == ""
	})
	return why
}

// MisEvaluated names the first update operator in update that FerretDB
// v1 accepts and then evaluates otherwise than MongoDB, silently
// (measured on the embedded engine, the same on a plain database there;
// review40, review41), or returns op "": a $pull whose value is a
// document (a condition such as {$gte: 2}, or a query on the elements'
// fields such as {_id: 7}) or a regular expression removes there only
// the elements equal to that value, where MongoDB removes every element
// it matches; $push's $sort, $slice and $position are ignored there (what
// names the modifier).
func MisEvaluated(update bson.Raw) (op, field, what string) {
	ops, err := update.Elements()
	if err != nil {
		return "", "", ""
	}
	for _, o := range ops {
		fields, ok := o.Value().DocumentOK()
		if !ok || (o.Key() != "$pull" && o.Key() != "$push") {
			continue
		}
		elems, err := fields.Elements()
		if err != nil {
			continue
		}
		for _, f := range elems {
			if o.Key() == "$pull" && f.Value().Type == bson.TypeRegex {
				// A condition too, in MongoDB: the strings it
				// matches (review41).
				return "$pull", f.Key(), ""
			}
			arg, ok := f.Value().DocumentOK()
			if !ok {
				continue
			}
			if o.Key() == "$pull" {
				return "$pull", f.Key(), ""
			}
			for _, m := range []string{"$sort", "$slice", "$position"} {
				if _, err := arg.LookupErr(m); err == nil {
					return "$push", f.Key(), m
				}
			}
		}
	}
	return "", "", ""
}

// misEvaluatedIn says why the update statements of command body doc (an
// update's statements, or findAndModify's update) or statement doc (one
// of a document sequence) are refused, or "".
func misEvaluatedIn(doc bson.Raw, seq bool) string {
	var updates []bson.Raw
	if seq {
		if u, ok := doc.Lookup("u").DocumentOK(); ok {
			updates = append(updates, u)
		}
	} else if st, ok := doc.Lookup("updates").ArrayOK(); ok {
		vals, _ := st.Values()
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok {
				if u, ok := d.Lookup("u").DocumentOK(); ok {
					updates = append(updates, u)
				}
			}
		}
	} else if first, err := doc.IndexErr(0); err == nil && strings.EqualFold(first.Key(), "findAndModify") {
		// Any case of the name: the engine takes the old findandmodify
		// too (review41).
		if u, ok := doc.Lookup("update").DocumentOK(); ok {
			updates = append(updates, u)
		}
	}
	for _, u := range updates {
		switch op, field, what := MisEvaluated(u); op {
		case "$pull":
			return fmt.Sprintf("$pull of %q by a condition, a document or a pattern: the embedded engine would remove only the elements equal to it, where MongoDB removes every element it matches (use a MongoDB server; $pull of a plain value, and $pullAll, work)", field)
		case "$push":
			return fmt.Sprintf("$push to %q with %s: the embedded engine would ignore %s (use a MongoDB server)", field, what, what)
		}
	}
	return ""
}

// bsonDoc splits the BSON document at the start of b from what follows.
func bsonDoc(b []byte) (bson.Raw, []byte, bool) {
	if len(b) < 5 {
		return nil, nil, false
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > len(b) {
		return nil, nil, false
	}
	return bson.Raw(b[:n]), b[n:], true
}

func guardDoc(doc bson.Raw, path string) string {
	elems, err := doc.Elements()
	if err != nil {
		return ""
	}
	for _, el := range elems {
		p := el.Key()
		if path != "" {
			p = path + "." + p
		}
		if why := guardValue(el.Value(), p); why != "" {
			return why
		}
	}
	return ""
}

func guardValue(v bson.RawValue, path string) string {
	if what, bad := UnstorableTypes[v.Type]; bad {
		return fmt.Sprintf("field %q is %s, which the embedded engine cannot store or compare (use a MongoDB server)", path, what)
	}
	switch v.Type {
	case bson.TypeDouble:
		if f, ok := v.DoubleOK(); ok && math.IsNaN(f) {
			return fmt.Sprintf("field %q is NaN, which the embedded engine cannot store or compare (use a MongoDB server)", path)
		}
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		return guardDoc(bson.Raw(v.Value), path)
	}
	return ""
}

// errorReply is the OP_MSG reply {ok: 0, errmsg, code, codeName} to
// request req.
func errorReply(req []byte, why string, code int32, codeName string) []byte {
	return reply(req, bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: why},
		{Key: "code", Value: code}, {Key: "codeName", Value: codeName}})
}

// reply is the OP_MSG reply with document d to request req.
func reply(req []byte, d bson.D) []byte {
	doc, err := bson.Marshal(d)
	if err != nil {
		doc, _ = bson.Marshal(bson.D{{Key: "ok", Value: 0.0}})
	}
	n := headerBytes + 4 + 1 + len(doc)
	out := make([]byte, n)
	binary.LittleEndian.PutUint32(out[0:], uint32(n))
	binary.LittleEndian.PutUint32(out[4:], binary.LittleEndian.Uint32(req[4:8])^0x5a5a5a5a) // a request id of our own
	copy(out[8:12], req[4:8])                                                               // responseTo: the request's id
	binary.LittleEndian.PutUint32(out[12:], opMsg)
	out[headerBytes+4] = 0 // flags 0, then section kind 0
	copy(out[headerBytes+5:], doc)
	return out
}

// isHandshake reports a command that opens a connection.
func isHandshake(cmd string) bool {
	return cmd == "hello" || cmd == "isMaster" || cmd == "ismaster"
}

// handshakeBody is the command document of a handshake, in OP_MSG or in
// the legacy OP_QUERY.
func handshakeBody(msg []byte) bson.Raw {
	if opCode(msg) == opQuery {
		return queryDoc(msg)
	}
	body, _ := sectionZero(msg)
	return body
}

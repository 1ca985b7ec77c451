package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// With argon serve, every client reaches the engine through the guard, so
// the guard sees every request that can change a database. It counts them
// per database, and tells a client, for a database, a write token: the
// serve's epoch (random, new at each start) and the counts of writes
// passed on to it and to all databases, given only while no write to it is
// waiting for its answer. Two equal tokens mean that no write reached the
// database between them, and that every write before them was answered,
// so applied: what a scan between them read is what the database holds
// while the token stays the same. That is what the clean record needs
// (see DBFiles): it records a token instead of a files' fingerprint.
//
// The counting is conservative: any request the guard does not know to be
// a read counts as a write, and one it cannot follow to its answer (a
// legacy opcode the engine does not answer, a client gone before the
// answer) leaves the database without a token until the serve restarts. The assumption, written down
// in ARCHITECTURE: nothing writes to the engine but through the guard (its
// own port is a loopback port it does not publish).

// writesCommand asks the guard for a database's write token; the guard
// answers it itself: {ok: 1, token: "..."}, "" when there is none now.
const writesCommand = "argonWriteToken"

// dbCommands are the writes known to act on the database their $db names
// (measured on FerretDB v1.24.2, which ignores $db for renameCollection and
// takes the database from its arguments): any other write counts against
// every database.
var dbCommands = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true, "findandmodify": true,
	"create": true, "createIndexes": true, "drop": true, "dropDatabase": true, "dropIndexes": true,
	"collMod": true, "compact": true,
}

// readCommands are the commands that change no database. Everything else
// counts as a write. aggregate is a read unless its pipeline has $out or
// $merge.
var readCommands = map[string]bool{
	"find": true, "getMore": true, "killCursors": true, "count": true, "distinct": true,
	"listCollections": true, "listIndexes": true, "listDatabases": true,
	"hello": true, "isMaster": true, "ismaster": true, "ping": true, "buildInfo": true, "buildinfo": true,
	"endSessions": true, "dbStats": true, "dbstats": true, "collStats": true, "collstats": true,
	"dataSize": true, "explain": true, "getParameter": true, "getLog": true, "serverStatus": true,
	"hostInfo": true, "connectionStatus": true, "whatsmyuri": true, "getCmdLineOpts": true,
	"saslStart": true, "saslContinue": true, "logout": true, "listCommands": true,
	"validate": true, "getFreeMonitoringStatus": true, "aggregate": true,
}

type writeLog struct {
	epoch string
	mu    sync.Mutex
	// gen counts writes passed on, per database; all counts those whose
	// database the guard cannot tell (they count against every one).
	gen map[string]int64
	all int64
	// pending counts writes passed on and not answered, per database
	// ("" for every database); lost says the guard lost track of which
	// write an answer was to.
	pending map[string]int
	lost    bool
	// gone counts writes whose client left before their answer, per
	// database: the engine may still apply them, so the database has no
	// token any more; a hold does not wait for them (settle).
	gone map[string]int
	// drain, when set, replaces drainWait for the relays of this guard
	// (tests).
	drain time.Duration
}

// drainWait is how long a relay of this guard whose client left waits
// for the answers to the requests it passed on.
func (l *writeLog) drainWait() time.Duration {
	if l.drain > 0 {
		return l.drain
	}
	return drainWait
}

func newWriteLog() *writeLog {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &writeLog{epoch: hex.EncodeToString(b[:]), gen: map[string]int64{}, pending: map[string]int{}, gone: map[string]int{}}
}

// sent records a write to db ("" for unknown: every database) passed on
// to the engine, which will answer it once it is applied.
func (l *writeLog) sent(db string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if db == "" {
		l.all++
	} else {
		l.gen[db]++
	}
	l.pending[db]++
}

// lose gives up following answers: no database has a token any more.
func (l *writeLog) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost = true
}

// settle waits until every write to db (and every write whose database is
// unknown) passed on so far has been answered, for up to d; writes whose
// client left are not waited for (see gone).
func (l *writeLog) settle(db string, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		idle := l.pending[db] <= 0 && l.pending[""] <= 0
		l.mu.Unlock()
		if idle || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// abandoned records that the client of a write to db left before its
// answer.
func (l *writeLog) abandoned(db string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[db]--
	l.gone[db]++
}

// answered records the answer to a write to db.
func (l *writeLog) answered(db string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[db]--
}

// token returns db's write token, or "" while a write to it may still
// change it.
func (l *writeLog) token(db string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[db] > 0 || l.pending[""] > 0 || l.gone[db] > 0 || l.gone[""] > 0 || l.lost {
		return ""
	}
	return fmt.Sprintf("serve:%s:%d:%d", l.epoch, l.all, l.gen[db])
}

// classify says what request msg does: asks for a token (token), or
// writes to db ("" when the guard cannot tell which database: every one);
// write is false for a read.
func classify(msg []byte) (cmd, db string, write bool) {
	switch opCode(msg) {
	case opMsg:
	case opQuery:
		// The legacy handshake: reads only.
		if name := queryCommand(msg); name == "isMaster" || name == "ismaster" || name == "hello" {
			return name, "", false
		}
		return "", "", true
	default:
		return "", "", true
	}
	body, ok := sectionZero(msg)
	if !ok {
		return "", "", true
	}
	return classifyBody(body)
}

// classifyBody is classify for a command's body (its section 0: its name
// first, its $db).
func classifyBody(body bson.Raw) (cmd, db string, write bool) {
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 {
		return "", "", true
	}
	cmd = elems[0].Key()
	// The engine takes the last of repeated keys, this the first: a
	// command with $db twice counts against every database.
	dbs := 0
	for _, el := range elems {
		if el.Key() == "$db" {
			dbs++
			db, _ = el.Value().StringValueOK()
		}
	}
	if dbs != 1 {
		db = ""
	}
	// Database names are one file each, and on a file system that
	// ignores case AR_X and ar_x are one database.
	db = strings.ToLower(db)
	if cmd == writesCommand || cmd == holdCommand {
		return cmd, db, false
	}
	if !readCommands[cmd] || (cmd == "aggregate" && writesOut(body)) {
		if !dbCommands[cmd] || db == "admin" {
			// renameCollection and the like name other databases.
			db = ""
		}
		return cmd, db, true
	}
	return cmd, db, false
}

// writesOut reports an aggregate whose pipeline writes ($out, $merge).
func writesOut(body bson.Raw) bool {
	p, err := body.LookupErr("pipeline")
	if err != nil {
		return true
	}
	stages, ok := p.ArrayOK()
	if !ok {
		return true
	}
	vals, err := stages.Values()
	if err != nil {
		return true
	}
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return true
		}
		el, err := d.IndexErr(0)
		if err != nil {
			continue
		}
		if k := el.Key(); k == "$out" || k == "$merge" {
			return true
		}
	}
	return false
}

const opQuery = 2004

// queryCommand is the first key of an OP_QUERY's query document.
func queryCommand(msg []byte) string {
	doc := queryDoc(msg)
	if doc == nil {
		return ""
	}
	el, err := doc.IndexErr(0)
	if err != nil {
		return ""
	}
	return el.Key()
}

// queryDoc is an OP_QUERY's query document, or nil.
func queryDoc(msg []byte) bson.Raw {
	b := msg[headerBytes:]
	if len(b) < 4 {
		return nil
	}
	b = b[4:] // flags
	for i, c := range b {
		if c == 0 {
			b = b[i+1:]
			break
		}
	}
	if len(b) < 8 {
		return nil
	}
	doc, _, ok := bsonDoc(b[8:]) // numberToSkip, numberToReturn
	if !ok {
		return nil
	}
	return doc
}

// sectionZero is the command document of OP_MSG msg.
func sectionZero(msg []byte) (bson.Raw, bool) {
	var body bson.Raw
	eachDocument(msg, func(seq bool, _ int, doc bson.Raw) bool {
		if !seq {
			body = doc
		}
		return seq
	})
	return body, body != nil
}

// outstanding follows one client's requests to their answers. The engine
// answers a connection's requests one at a time, in order; a request id
// used again while outstanding, or an answer that is not to the oldest
// request, leaves the log unable to tell which write was answered: it
// then gives no token any more (lose).
//
// The engine (FerretDB v1.24.2) answers every request, even one with
// moreToCome set (w: 0), whose client expects no answer: such a request
// is outstanding like any other, and its answer is kept from the client.
type outstanding struct {
	mu    sync.Mutex
	queue []request
	ids   map[int32]bool
	log   *writeLog
	ix    *serveIndexer
}

type request struct {
	id    int32
	db    string
	write bool
	// cmd is the command's name; coll the collection it names and file
	// its database as sent (writes only, for serveIndexer).
	cmd, coll, file string
	// silent: the client expects no answer (moreToCome).
	silent bool
	// after, when set, is done with the answer before it goes to the
	// client, and gives what goes (see Carrier).
	after func([]byte) []byte
}

func newOutstanding(l *writeLog, ix *serveIndexer) *outstanding {
	return &outstanding{ids: map[int32]bool{}, log: l, ix: ix}
}

// sent records request msg (r: a write to r.db, or a read), about to be
// passed on to the engine, which answers it.
func (o *outstanding) sent(msg []byte, r request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.id = requestID(msg)
	if o.ids[r.id] {
		o.lose()
	}
	o.ids[r.id] = true
	r.silent = opCode(msg) == opMsg && flags(msg)&flagMoreToCome != 0
	o.queue = append(o.queue, r)
	if r.write {
		o.log.sent(r.db)
	}
}

// idle reports whether every request passed on was answered.
func (o *outstanding) idle() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue) == 0
}

// lose gives up following this connection's answers (see writeLog.lose);
// a dropDatabase among its requests can then no longer be followed to its
// end (see serveIndexer). o.mu is held.
func (o *outstanding) lose() {
	o.log.lose()
	o.abandonDrops()
}

// abandon is called when the connection has ended: the engine may still
// carry out requests it was not seen to answer.
func (o *outstanding) abandon() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.abandonDrops()
	for _, r := range o.queue {
		if r.write {
			o.log.abandoned(r.db)
		}
	}
	o.queue = nil
}

func (o *outstanding) abandonDrops() {
	if o.ix == nil {
		return
	}
	for _, r := range o.queue {
		if r.cmd == "dropDatabase" {
			o.ix.lost()
			return
		}
	}
}

// answer records the engine's answer msg, and says whether the client
// expects it and what to do with it before it goes (the request's after).
func (o *outstanding) answer(msg []byte) (forward bool, after func([]byte) []byte) {
	if flags(msg)&flagMoreToCome != 0 {
		return true, nil // more answers to the same request follow
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 || o.queue[0].id != responseTo(msg) {
		o.lose()
		return true, nil
	}
	r := o.queue[0]
	o.queue = o.queue[1:]
	delete(o.ids, r.id)
	if r.write {
		o.log.answered(r.db)
		if o.ix != nil {
			o.ix.answered(r.cmd, r.db, r.file, r.coll)
		}
	}
	return !r.silent, r.after
}

func requestID(msg []byte) int32  { return int32(binary.LittleEndian.Uint32(msg[4:8])) }
func responseTo(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[8:12])) }

// WriteToken asks the argon serve at the other end of client for database
// db's write token (see writeLog). It fails when there is none now, or
// when the server is not an argon serve.
func WriteToken(ctx context.Context, client *mongo.Client, db string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var res struct {
		Token string `bson:"token"`
	}
	if err := client.Database(db).RunCommand(ctx, bson.D{{Key: writesCommand, Value: 1}}).Decode(&res); err != nil {
		return "", err
	}
	if res.Token == "" {
		return "", errors.New("a write to it is in progress or was not followed to its answer")
	}
	return res.Token, nil
}

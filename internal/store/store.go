// Package store opens the MongoDB deployment argon works on: a server named
// by a URI, or the embedded FerretDB engine kept in the workspace.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/gofrs/flock"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Options say which deployment to open.
type Options struct {
	// URI of a MongoDB deployment. Empty means the embedded engine.
	URI string
	// Dir is the workspace's .argon directory; the embedded engine keeps its
	// data in Dir/data and its lock in Dir/lock.
	Dir string
	// LockTimeout bounds how long to wait for another argon process that
	// holds the workspace.
	LockTimeout time.Duration
	// ServerSelectionTimeout bounds how long to look for a server.
	ServerSelectionTimeout time.Duration
	// Monitor, when set, sees every command the client sends (tests count
	// round trips with it).
	Monitor *event.CommandMonitor
	// Shared runs the embedded engine as the workspace engine, an argon
	// serve the first command starts and every command joins (see
	// shared.go); Idle is how long it waits without a client before it
	// ends (0: DefaultIdle).
	Shared bool
	Idle   time.Duration
}

// Store is an open connection to a deployment.
type Store struct {
	Client *mongo.Client
	// Embedded reports whether the engine runs inside this process or in an
	// `argon serve` of the same workspace.
	Embedded bool
	// Served reports whether the embedded engine is served by `argon serve`.
	Served bool
	// own counts the writes the client sends (see ownWrites).
	own *ownWrites
	// holds, for a client of argon serve, holds working databases'
	// writes (see writeHolds).
	holds *serveHolds
	// Exclusive reports that this process runs the embedded engine itself
	// under the workspace lock: no other process can use the deployment.
	Exclusive bool
	// Notices are one-line messages for the user from opening the store.
	Notices []string
	// URI is the connection string in use (credentials included).
	URI string
	// FerretDB reports a FerretDB server at --uri (its buildInfo says
	// so): it has the embedded engine's limits on types and field names.
	FerretDB bool

	// dataDir is the embedded engine's data directory ("" for a server).
	dataDir string
	stop    func()
	scratch Scratch
}

// LockedError reports that another process holds the workspace.
type LockedError struct{ PID int }

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("workspace is locked by pid %d", e.PID)
	}
	return "workspace is locked by another argon process"
}

// ServingError reports an argon serve that already holds the workspace:
// another cannot start (exit 5, as the workspace is locked).
type ServingError struct {
	PID int
	URI string
}

func (e *ServingError) Error() string {
	return fmt.Sprintf("argon serve is already running for this workspace (pid %d, %s)", e.PID, e.URI)
}

// UnreachableError reports that no server answered in time.
type UnreachableError struct {
	URI     string
	Timeout time.Duration
	Err     error
}

func (e *UnreachableError) Error() string {
	msg := e.Err.Error()
	// The driver's server selection error lists the topology; the last
	// dial error in it is what a user can act on.
	if i := strings.LastIndex(msg, "Last error: "); i >= 0 {
		msg = strings.TrimRight(msg[i+len("Last error: "):], " }],")
	}
	if strings.Contains(msg, "auth error") || strings.Contains(msg, "AuthenticationFailed") {
		// Reached, and the login refused (a new-user run read "cannot
		// reach" here).
		return fmt.Sprintf("MongoDB at %s refused the login: %s", Redact(e.URI), RedactIn(msg, e.URI))
	}
	return fmt.Sprintf("cannot reach MongoDB at %s within %s: %s", Redact(e.URI), e.Timeout, RedactIn(msg, e.URI))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Describe names the engine for humans: the redacted URI, or the embedded
// engine and where its data lives.
func (s *Store) Describe() string {
	switch {
	case s.Served:
		return "embedded (served at " + s.URI + ")"
	case s.Embedded:
		return "embedded"
	case s.FerretDB:
		return Redact(s.URI) + " (FerretDB)"
	default:
		return Redact(s.URI)
	}
}

// EngineInfo is what --json says of the engine in use.
type EngineInfo struct {
	// Kind is "embedded" (the workspace's engine, run by this process or
	// an argon serve) or "server" (a deployment at a URI).
	Kind string `json:"kind"`
	// URI is where the engine is reached, password hidden; empty for an
	// embedded engine this process runs itself.
	URI string `json:"uri,omitempty"`
	// Served: an embedded engine reached through argon serve.
	Served bool `json:"served"`
	// FerretDB: the engine is FerretDB (always, when embedded).
	FerretDB bool `json:"ferretdb"`
}

// Engine describes the engine for --json.
func (s *Store) Engine() EngineInfo {
	switch {
	case s.Served:
		return EngineInfo{Kind: "embedded", URI: Redact(s.URI), Served: true, FerretDB: true}
	case s.Embedded:
		return EngineInfo{Kind: "embedded", FerretDB: true}
	default:
		return EngineInfo{Kind: "server", URI: Redact(s.URI), FerretDB: s.FerretDB}
	}
}

// Close disconnects and stops the embedded engine if this process runs it.
func (s *Store) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Client.Disconnect(ctx)
	if s.stop != nil {
		s.stop()
	}
	s.scratch.Close()
}

// Open connects to the deployment that opts name.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.ServerSelectionTimeout == 0 {
		opts.ServerSelectionTimeout = 5 * time.Second
	}
	if opts.URI != "" {
		return openURI(ctx, opts.URI, opts.ServerSelectionTimeout, true, opts.Monitor, "argon")
	}
	if opts.Dir == "" {
		return nil, errors.New("no MongoDB URI given and no workspace to run the embedded engine in")
	}
	return openEmbedded(ctx, opts)
}

// app is the client's application name: "argon", or for a client of
// argon serve holdAppPrefix and a tag of its own (see writeHolds).
// openServed opens a client of the argon serve at uri.
func openServed(ctx context.Context, si *ServeInfo, opts Options, ping bool) (*Store, error) {
	s, err := openURI(ctx, si.URI, opts.ServerSelectionTimeout, ping, opts.Monitor, holdAppPrefix+newHoldTag())
	if err != nil {
		return nil, err
	}
	s.Embedded, s.Served = true, true
	s.holds = newServeHolds(s.Client, s.own, si.CarriedHolds)
	s.holds.followUps = si.FollowUps
	return s, nil
}

func openURI(ctx context.Context, uri string, sel time.Duration, ping bool, mon *event.CommandMonitor, app string) (*Store, error) {
	co := options.Client().ApplyURI(uri).SetServerSelectionTimeout(sel).SetAppName(app)
	own := newOwnWrites()
	co.SetMonitor(own.monitor(mon))
	if err := co.Validate(); err != nil {
		return nil, fmt.Errorf("invalid MongoDB URI %s: %s", Redact(uri), RedactIn(err.Error(), uri))
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("invalid MongoDB URI %s: %s", Redact(uri), RedactIn(err.Error(), uri))
	}
	s := &Store{Client: client, URI: uri, own: own}
	if ping {
		// buildInfo instead of ping: the same one round trip proves the
		// server is there and says which server it is.
		pctx, cancel := context.WithTimeout(ctx, sel)
		defer cancel()
		var info struct {
			FerretDB *string `bson:"ferretdbVersion"`
		}
		err := client.Database("admin").RunCommand(pctx, bson.D{{Key: "buildInfo", Value: 1}}, options.RunCmd().SetReadPreference(readpref.Primary())).Decode(&info)
		if err != nil {
			_ = client.Disconnect(context.Background())
			return nil, &UnreachableError{URI: uri, Timeout: sel, Err: err}
		}
		s.FerretDB = info.FerretDB != nil
	}
	return s, nil
}

// ServeInfo is what `argon serve` leaves in the workspace so that other
// argon processes connect to it instead of embedding their own engine.
type ServeInfo struct {
	PID int    `json:"pid"`
	URI string `json:"uri"`
	// Dir is the workspace's .argon directory the serve serves: a
	// workspace copied with its serve.json is not the one served.
	Dir string `json:"dir,omitempty"`
	// CarriedHolds: the serve takes holds of writes and their releases
	// carried by other commands (see Carrier).
	CarriedHolds bool `json:"carried_holds,omitempty"`
	// FollowUps: the serve passes on follow-up commands carried by
	// another (argonThen; see Carrier). A flag of its own: serves built
	// between the two features say carried_holds and would pass
	// argonThen on to the engine, which refuses it (found by review).
	FollowUps bool `json:"follow_ups,omitempty"`
}

func servePath(dir string) string { return filepath.Join(dir, "serve.json") }
func lockPath(dir string) string  { return filepath.Join(dir, "lock") }

// ReadServeInfo returns the running `argon serve` of the workspace in dir,
// or nil when none runs.
func ReadServeInfo(dir string) *ServeInfo {
	b, err := os.ReadFile(servePath(dir))
	if err != nil {
		return nil
	}
	var si ServeInfo
	if json.Unmarshal(b, &si) != nil || si.PID <= 0 || si.URI == "" {
		return nil
	}
	if si.Dir != "" && !sameDir(si.Dir, dir) {
		return nil
	}
	if si.PID != os.Getpid() && !alive(si.PID) {
		return nil
	}
	return &si
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

func lockHolder(dir string) int {
	b, _ := os.ReadFile(lockPath(dir))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// acquire takes the workspace lock, waiting at most timeout. While waiting,
// a running `argon serve` is returned instead: the caller connects to it.
func acquire(ctx context.Context, dir string, timeout time.Duration) (*flock.Flock, *ServeInfo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	fl := flock.New(lockPath(dir), flock.SetPermissions(0o600))
	deadline := time.Now().Add(timeout)
	for {
		ok, err := fl.TryLock()
		if err != nil {
			return nil, nil, fmt.Errorf("lock workspace: %w", err)
		}
		if ok {
			_ = os.WriteFile(lockPath(dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
			return fl, nil, nil
		}
		if si := ReadServeInfo(dir); si != nil {
			return nil, si, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, &LockedError{PID: lockHolder(dir)}
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ReadOnlyError reports a workspace whose engine files cannot be written.
type ReadOnlyError struct {
	Dir string
	Err error
}

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("the workspace's data folder %s is not writable (%v): the embedded engine writes to its files even to read them; make the folder writable, or copy the workspace somewhere writable", e.Dir, e.Err)
}

func (e *ReadOnlyError) Unwrap() error { return e.Err }

// checkWritable tells a read-only workspace (read-only mount, permissions,
// a full disk) apart before the engine fails on it with SQLite's words, by
// writing and removing a file in dir.
func checkWritable(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil // created by the engine's start
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return &ReadOnlyError{Dir: dir, Err: errors.Unwrap(err)}
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

func openEmbedded(ctx context.Context, opts Options) (*Store, error) {
	if opts.Shared {
		return openShared(ctx, opts)
	}
	fl, si, err := acquire(ctx, opts.Dir, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	if si != nil {
		s, err := openServed(ctx, si, opts, false)
		if err != nil {
			return nil, err
		}
		s.dataDir = filepath.Join(opts.Dir, "data")
		return s, nil
	}
	data := filepath.Join(opts.Dir, "data")
	if err := checkWritable(data); err != nil {
		_ = fl.Unlock()
		return nil, err
	}
	eng, err := StartEngine(data, "127.0.0.1:0")
	if err != nil {
		_ = fl.Unlock()
		return nil, err
	}
	s, err := openURI(ctx, eng.URI, opts.ServerSelectionTimeout, false, opts.Monitor, "argon")
	if err != nil {
		eng.Stop()
		_ = fl.Unlock()
		return nil, err
	}
	s.Embedded, s.Exclusive = true, true
	s.dataDir = data
	s.Notices = eng.Notices
	s.stop = func() {
		eng.Stop()
		_ = fl.Unlock()
	}
	return s, nil
}

// Engine is a running embedded FerretDB.
type Engine struct {
	URI string
	// Notices describe database files set aside before the start (see
	// sweepDataDir).
	Notices []string
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartEngine runs FerretDB with its SQLite handler over dataDir, listening
// on addr (host:port; port 0 picks a free one). Its logger is silenced.
func StartEngine(dataDir, addr string) (*Engine, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(abs, "%?#") {
		// FerretDB puts the folder into SQLite URIs unescaped.
		return nil, fmt.Errorf("the embedded engine cannot run in %s: its path has a %%, ? or #; use a folder without them, or a server with --uri", abs)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	newEngine := func() (*ferretdb.FerretDB, error) { return newFerretDB("file:"+abs+"/", addr) }
	// The engine opens every database file as it starts, and refuses to
	// start when one lacks its metadata table: only then are the files
	// swept (checking each costs about 4 ms, which a workspace of 100
	// working databases paid at every command when the sweep ran first).
	var notices []string
	f, err := newEngine()
	if err != nil && strings.Contains(err.Error(), metadataTable) {
		if notices, err = sweepDataDir(abs); err != nil {
			return nil, fmt.Errorf("start embedded engine: %w", err)
		}
		f, err = newEngine()
	}
	if err != nil {
		return nil, fmt.Errorf("start embedded engine: %w", err)
	}
	e := runEngine(f)
	e.Notices = notices
	return e, nil
}

// newFerretDB makes a FerretDB with its SQLite handler over the SQLite URL
// url, listening on addr, its logger silenced.
func newFerretDB(url, addr string) (*ferretdb.FerretDB, error) {
	return ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    slog.New(slog.DiscardHandler),
		Handler:   "sqlite",
		SQLiteURL: url,
	})
}

// runEngine runs f until the returned Engine is stopped.
func runEngine(f *ferretdb.FerretDB) *Engine {
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	e.URI = f.MongoDBURI()
	return e
}

// Stop shuts the engine down and waits for it.
func (e *Engine) Stop() {
	e.cancel()
	<-e.done
}

// Serve runs the embedded engine of the workspace in dir for other
// processes, on addr, until ctx ends. ready is called with the URI once
// clients can connect.
func Serve(ctx context.Context, dir, addr string, lockTimeout time.Duration, ready func(uri string)) error {
	return ServeIdle(ctx, dir, addr, lockTimeout, 0, ready)
}

// ServeIdle is Serve that also ends once it has had no client for idle
// (0: never). It withdraws its serve.json before it stops listening, so a
// client that finds it then either connects while it still listens, or
// finds none and starts another.
func ServeIdle(ctx context.Context, dir, addr string, lockTimeout, idle time.Duration, ready func(uri string)) error {
	fl, si, err := acquire(ctx, dir, lockTimeout)
	if err != nil {
		return err
	}
	if si != nil {
		return &ServingError{PID: si.PID, URI: si.URI}
	}
	defer func() { _ = fl.Unlock() }()
	data := filepath.Join(dir, "data")
	if err := checkWritable(data); err != nil {
		return err
	}
	// The engine listens on a loopback port of its own; clients reach it
	// through the guard, which answers the requests it would drop the
	// connection on (see guard.go).
	eng, err := StartEngine(data, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer eng.Stop()
	// Before any client can connect (see idIndexes).
	indexAll(data)
	argon := metadataDBsIn(data)
	engineURL, err := url.Parse(eng.URI)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	act := newActivity()
	// Stopped before the engine (deferred after it): no file open then.
	ix := newServeIndexer(data)
	go ix.run()
	defer ix.close()
	writes := newWriteLog()
	go guardProxy(ln, engineURL.Host, writes, ix, newWriteHolds(writes), act, argon)
	uri := "mongodb://" + ln.Addr().String() + "/"
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(ServeInfo{PID: os.Getpid(), URI: uri, Dir: abs, CarriedHolds: true, FollowUps: true})
	if err := writeFileAtomic(servePath(dir), b); err != nil {
		return err
	}
	defer os.Remove(servePath(dir))
	ready(uri)
	var tick <-chan time.Time
	if idle > 0 {
		t := time.NewTicker(max(idle/8, 10*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if act.idleFor() >= idle {
				// Withdrawn first, then no new client; one that
				// connected at the last moment is served to its end.
				_ = os.Remove(servePath(dir))
				_ = ln.Close()
				for act.idleFor() == 0 {
					time.Sleep(10 * time.Millisecond)
				}
				return nil
			}
		}
	}
}

// writeFileAtomic writes b to path by a rename, so that a reader sees the
// whole file or none.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

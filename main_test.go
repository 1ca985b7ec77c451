package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/rogpeppe/go-internal/testscript"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/commit"
	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
)

var update = flag.Bool("update", os.Getenv("ARGON_UPDATE") != "", "rewrite the golden output in testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"argon":       func() { installTestHooks(); os.Exit(mainCheckingSecrets()) },
		"argonworker": concurrencyWorker,
		"argonmix":    mixWorker,
		"argonnames":  namesWorker,
	})
}

// testSecrets are placed in the URI of every script of a server run (see
// setupScript): argon must never print them.
var testSecrets = []string{"argon-secret-token", "argon-secret-session", "argon-secret-keypass", "argon-secret-password"}

// mainCheckingSecrets runs argon with its stdout and stderr passed through
// as they come, and fails the command (exit 99, naming the secret) when
// either carried one of testSecrets: a server run of the whole golden
// suite with secrets in the URI then proves that no command, output or
// error prints them.
func mainCheckingSecrets() int {
	if os.Getenv("ARGON_TEST_SECRETS") == "" {
		return cmd.Main()
	}
	var mu sync.Mutex
	var seen bytes.Buffer
	var wg sync.WaitGroup
	pass := func(real **os.File) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		dst := *real
		*real = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					_, _ = dst.Write(buf[:n])
					mu.Lock()
					seen.Write(buf[:n])
					mu.Unlock()
				}
				if err != nil {
					return
				}
			}
		}()
		return w
	}
	outW, errW := pass(&os.Stdout), pass(&os.Stderr)
	realErr := os.NewFile(2, "stderr")
	code := cmd.Main()
	outW.Close()
	errW.Close()
	wg.Wait()
	for _, s := range testSecrets {
		if bytes.Contains(seen.Bytes(), []byte(s)) {
			fmt.Fprintf(realErr, "argon-test: a secret of the URI was printed: %s\n", s)
			return 99
		}
	}
	return code
}

// installTestHooks lets a test stop a writer at an exact step of the
// commit protocol: ARGON_TEST_KILL_AT=POINT kills the process there (as a
// crash would), ARGON_TEST_PAUSE_AT=POINT:FILE waits there until FILE
// exists (creating FILE.paused first, so the test knows it got there).
// Production builds never set commit.Hook.
func installTestHooks() {
	kill := os.Getenv("ARGON_TEST_KILL_AT")
	pause, file, _ := strings.Cut(os.Getenv("ARGON_TEST_PAUSE_AT"), ":")
	if kill == "" && pause == "" {
		return
	}
	commit.Hook = func(point string) {
		if point == kill {
			p, _ := os.FindProcess(os.Getpid())
			_ = p.Kill()
			select {}
		}
		if point == pause && file != "" {
			_ = os.WriteFile(file+".paused", nil, 0o600)
			for {
				if _, err := os.Stat(file); err == nil {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

// TestScripts runs the golden command-line tests in testdata/script against
// the embedded engine, or against the MongoDB at ARGON_TEST_URI when set.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *update,
		Setup:               setupScript,
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "remote":
				return os.Getenv("ARGON_TEST_URI") != "", nil
			case "ferretdb": // the embedded engine, or a FerretDB server
				return testEngine(t).ferretDB, nil
			case "pgstore": // a server keeping its data in PostgreSQL
				return os.Getenv("ARGON_TEST_STORE") == "postgresql", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"app":       cmdApp,
			"dropdb":    cmdDropDB,
			"exits":     cmdExits,
			"gendoc":    cmdGendoc,
			"genbatch":  cmdGenbatch,
			"holdlock":  cmdHoldLock,
			"waitserve": cmdWaitServe,
			"waitgone":  cmdWaitGone,
		},
	})
}

func setupScript(env *testscript.Env) error {
	home := filepath.Join(env.WorkDir, ".home")
	env.Setenv("HOME", home)
	env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	env.Setenv("ARGON_AUTHOR", "tester")
	env.Setenv("ARGON_COMMIT_DATE", "2026-01-02T03:04:05Z")
	env.Setenv("NO_COLOR", "1")
	if app, err := filepath.Abs("testdata/node/app.js"); err == nil {
		env.Setenv("NODE_APP", app)
	}
	if app, err := filepath.Abs("testdata/node/reseed.js"); err == nil {
		env.Setenv("NODE_RESEED", app)
	}
	for name, file := range map[string]string{"NODE_TYPES": "types.js", "NODE_SEED": "seed.js", "NODE_COMPARE": "compare.js"} {
		if app, err := filepath.Abs(filepath.Join("testdata/node", file)); err == nil {
			env.Setenv(name, app)
		}
	}
	// What scripts need to know of the engine: the prefix of working
	// database names, and how argon names the engine in its refusals.
	env.Setenv("WDB_PREFIX", "ar_")
	env.Setenv("META_DB", wal.DefaultDatabase)
	env.Setenv("ENGINE_DESC", "embedded") // as argon status names it
	env.Setenv("ENGINE", `the embedded engine`)
	env.Setenv("ADVICE", `\(use a MongoDB server with --uri\)`)
	if uri := os.Getenv("ARGON_TEST_URI"); uri != "" {
		// Each script gets its own metadata database (and so its own
		// working databases) on the shared server, dropped at the end.
		var b [4]byte
		_, _ = rand.Read(b[:])
		db := "argon_test_" + hex.EncodeToString(b[:])
		env.Setenv("ARGON_URI", uri)
		if os.Getenv("ARGON_TEST_SECRETS") != "" {
			// URI options that carry secrets, which the server ignores
			// here; mainCheckingSecrets fails any command that prints one.
			secret := uri + "?apiToken=" + testSecrets[0] +
				"&clientSecret=" + testSecrets[1] +
				"&tlsCertificateKeyFilePassword=" + testSecrets[2]
			// And a password: FerretDB over PostgreSQL takes PLAIN
			// authentication and hands it to PostgreSQL, which trusts
			// the deployment's user whatever the password.
			if pg, err := url.Parse(os.Getenv("ARGON_TEST_POSTGRESQL_URL")); err == nil && pg.User != nil &&
				os.Getenv("ARGON_TEST_STORE") == "postgresql" {
				secret = "mongodb://" + pg.User.Username() + ":" + testSecrets[3] + "@" +
					strings.TrimPrefix(secret, "mongodb://") + "&authMechanism=PLAIN"
			}
			env.Setenv("ARGON_URI", secret)
			env.Setenv("ARGON_TEST_SECRETS", "1")
		}
		env.Setenv("ARGON_DB", db)
		env.Setenv("META_DB", db)
		// The server is there for applications as `argon serve` would be.
		env.Setenv("SERVE_URI", uri)
		env.Setenv("SERVE_ADDR", strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/"))
		desc := store.Redact(env.Getenv("ARGON_URI")) // as argon status names it
		facts, err := probeEngine()
		if err != nil {
			return err
		}
		if facts.ferretDB {
			desc += " (FerretDB)"
		}
		env.Setenv("ENGINE_DESC", desc)
		env.Setenv("WDB_PREFIX", wal.DatabasePrefix(db))
		env.Setenv("ENGINE", `the server \(FerretDB\)`)
		env.Setenv("ADVICE", `\(MongoDB can\)`)
		env.Defer(func() { dropTestDatabases(uri, db) })
	}
	return nil
}

// engineFacts is what the tests know of the engine they run on.
type engineFacts struct{ ferretDB bool }

var (
	engineOnce sync.Once
	engine     engineFacts
)

// testEngine tells which engine the tests run on: the embedded engine
// (FerretDB), or the server at ARGON_TEST_URI, asked with buildInfo.
func testEngine(t testing.TB) engineFacts {
	e, err := probeEngine()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var engineErr error

func probeEngine() (engineFacts, error) {
	engineOnce.Do(func() {
		uri := os.Getenv("ARGON_TEST_URI")
		if uri == "" {
			engine.ferretDB = true
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			engineErr = err
			return
		}
		defer c.Disconnect(ctx)
		var info bson.M
		if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
			engineErr = err
			return
		}
		_, engine.ferretDB = info["ferretdbVersion"]
	})
	return engine, engineErr
}

// dropTestDatabases drops a script's metadata database and every database
// argon made for it (their names start with its prefix).
func dropTestDatabases(uri, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return
	}
	defer c.Disconnect(ctx)
	names, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return
	}
	prefix := wal.DatabasePrefix(db)
	for _, n := range names {
		if n == db || strings.HasPrefix(n, prefix) {
			_ = c.Database(n).Drop(ctx)
		}
	}
}

// cmdExits runs a program like exec and checks its exit code, so that
// scripts pin argon's documented codes, not only success or failure:
//
//	exits CODE PROGRAM [ARGS...]
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdApp plays an application writing to a working database directly
// with the Go driver, outside argon:
//
//	app URI DB insert COLL DOC
//	app URI DB update COLL FILTER UPDATE
//	app URI DB delete COLL FILTER
//	app URI DB createindex COLL KEYS NAME [unique]
//	app URI DB dropindex COLL NAME
func cmdApp(ts *testscript.TestScript, neg bool, args []string) {
	// -argon: the client names itself as argon's does, which argon serve
	// lets write argon's own databases (to damage the log on purpose).
	name := "app"
	if len(args) > 0 && args[0] == "-argon" {
		name, args = "argon", args[1:]
	}
	if len(args) < 5 {
		ts.Fatalf("usage: app [-argon] URI DB insert|update|delete COLL JSON...")
	}
	parse := func(s string) bson.Raw {
		var d bson.D
		ts.Check(bson.UnmarshalExtJSON([]byte(s), false, &d))
		raw, err := bson.Marshal(d)
		ts.Check(err)
		return raw
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(args[0]).SetAppName(name))
	ts.Check(err)
	defer c.Disconnect(ctx)
	coll := c.Database(args[1]).Collection(args[3])
	switch args[2] {
	case "insert":
		_, err = coll.InsertOne(ctx, parse(args[4]))
	case "update":
		_, err = coll.UpdateOne(ctx, parse(args[4]), parse(args[5]))
	case "delete":
		_, err = coll.DeleteOne(ctx, parse(args[4]))
	case "createindex":
		opts := options.Index().SetName(args[5])
		if len(args) > 6 && args[6] == "unique" {
			opts.SetUnique(true)
		}
		_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: parse(args[4]), Options: opts})
	case "dropindex":
		err = coll.Indexes().DropOne(ctx, args[4])
	default:
		ts.Fatalf("unknown app operation %q", args[2])
	}
	if neg {
		if err == nil {
			ts.Fatalf("the application's %s succeeded", args[2])
		}
		ts.Logf("refused: %v", err)
		return
	}
	ts.Check(err)
}

// cmdDropDB drops a database of the workspace's engine behind argon's
// back, as a user with mongosh might (the engine is started for the
// purpose when no server is configured):
//
//	dropdb NAME
func cmdDropDB(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: dropdb NAME")
	}
	uri := ts.Getenv("ARGON_URI")
	name := args[0]
	if uri == "" {
		eng, err := store.StartEngine(ts.MkAbs(".argon/data"), "127.0.0.1:0")
		ts.Check(err)
		defer eng.Stop()
		uri = eng.URI
	} else if db := ts.Getenv("ARGON_DB"); db != "" {
		// Working databases of a non-default metadata database carry its
		// prefix instead of "ar_".
		name = wal.DatabasePrefix(db) + strings.TrimPrefix(name, "ar_")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	ts.Check(err)
	defer c.Disconnect(ctx)
	ts.Check(c.Database(name).Drop(ctx))
}

// cmdGendoc writes a document of about SIZE bytes to FILE:
//
//	gendoc FILE SIZE
func cmdGendoc(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gendoc FILE SIZE")
	}
	size, err := strconv.Atoi(args[1])
	ts.Check(err)
	doc := `{"_id": "big", "s": "` + strings.Repeat("x", size) + `"}`
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(doc), 0o644))
}

// cmdGenbatch writes N documents {"_id": i, "v": i} for i = 1000..,
// one per line, except that document DUP (1-based) repeats _id ID:
//
//	genbatch FILE N DUP ID
func cmdGenbatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: genbatch FILE N DUP ID")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	dup, err := strconv.Atoi(args[2])
	ts.Check(err)
	var b strings.Builder
	for i := 1; i <= n; i++ {
		id := strconv.Itoa(1000 + i)
		if i == dup {
			id = args[3]
		}
		fmt.Fprintf(&b, "{\"_id\": %s, \"v\": %d}\n", id, i)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(b.String()), 0o644))
}

// cmdHoldLock takes the workspace lock as another argon process would and
// records PID as its holder, until the script ends. It waits up to a
// minute for a holder that is ending (an argon serve stops its engine
// after it withdrew its serve.json):
//
//	holdlock PID
func cmdHoldLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: holdlock PID")
	}
	path := ts.MkAbs(".argon/lock")
	fl := flock.New(path)
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := fl.TryLock()
		ts.Check(err)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("workspace lock is still held after a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Check(os.WriteFile(path, []byte(args[0]+"\n"), 0o600))
	ts.Defer(func() { _ = fl.Unlock() })
}

// cmdWaitServe waits until `argon serve` of the workspace is ready, and
// sets $SERVE_URI to its connection string and $SERVE_ADDR to its
// host:port:
//
//	waitserve
func cmdWaitServe(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(ts.MkAbs(".argon/serve.json"))
		if err == nil && len(b) > 0 {
			var uri string
			if i := strings.Index(string(b), `"uri":"`); i >= 0 {
				uri = string(b)[i+7:]
				uri = uri[:strings.IndexByte(uri, '"')]
			}
			ts.Setenv("SERVE_URI", uri)
			ts.Setenv("SERVE_ADDR", strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/"))
			ts.Setenv("ENGINE_DESC", "embedded (served at "+uri+")")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("argon serve did not start")
}

// cmdWaitGone waits, up to a minute, until a file is gone (a workspace
// engine's serve.json once it has ended):
//
//	waitgone FILE
func cmdWaitGone(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitgone FILE")
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(ts.MkAbs(args[0])); errors.Is(err, fs.ErrNotExist) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("%s is still there after a minute", args[0])
}

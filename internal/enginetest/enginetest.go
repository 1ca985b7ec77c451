// Package enginetest gives tests a MongoDB to work on: the embedded engine
// in a temporary folder, or the server at ARGON_TEST_URI when it is set.
package enginetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/store"
)

// Server is a running deployment for one test.
type Server struct {
	URI      string
	Client   *mongo.Client
	Embedded bool
	// DataDir is the embedded engine's data folder ("" on a server).
	DataDir string
	// DB is a metadata database name no other test uses.
	DB string
	// FerretDB is set when the server at ARGON_TEST_URI is FerretDB.
	FerretDB bool
}

// Frontends returns the MongoDB URIs of the server the tests run against,
// for processes to split over: ARGON_TEST_URI, and a second frontend over
// the same store when ARGON_TEST_POSTGRESQL_URL names the PostgreSQL
// database behind it (scripts/server-deployment.sh sets both). The second
// frontend is started here, now, and stopped when t ends: a FerretDB v1
// frontend loads the catalog of databases and collections once, when it
// first serves a request, and never sees one another frontend creates
// afterwards, so it must start after the test has created what it uses.
// The databases mine selects must look the same through both frontends:
// a catalog load that races with another test dropping a database fails
// ("relation ..._ferretdb_database_metadata does not exist") and leaves
// the frontend with the part it loaded before, for good (FerretDB
// v1.24.2; measured: 2 of 20 starts while databases were being dropped),
// so a frontend that does not see them all is replaced. On the embedded
// engine it returns nothing; on a server without that variable,
// ARGON_TEST_URI alone.
func Frontends(t testing.TB, mine func(db string) bool) []string {
	t.Helper()
	uri := os.Getenv("ARGON_TEST_URI")
	if uri == "" {
		return nil
	}
	pg := os.Getenv("ARGON_TEST_POSTGRESQL_URL")
	if pg == "" {
		return []string{uri}
	}
	want, err := catalog(uri, mine)
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		f, err := ferretdb.New(&ferretdb.Config{
			Listener:      ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
			Logger:        slog.New(slog.DiscardHandler),
			Handler:       "postgresql",
			PostgreSQLURL: pg,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = f.Run(ctx)
		}()
		stop := func() {
			cancel()
			<-done
		}
		second := f.MongoDBURI()
		// Its first load of the catalog can fail outright, or keep part
		// of it, when it races with a drop (the facts table): either
		// way, another is started.
		got, err := catalog(second, mine)
		if err == nil && got == want {
			t.Cleanup(stop)
			return []string{uri, second}
		}
		stop()
		if err != nil {
			got = err.Error()
		}
		if attempt == 5 {
			t.Fatalf("a second frontend does not see the test's databases after %d starts:\n%s\nwant:\n%s", attempt, got, want)
		}
		t.Logf("a second frontend loaded part of the catalog (%s); starting another", strings.TrimSpace(got))
	}
}

// catalog lists the databases mine selects and their collections, as the
// frontend at uri sees them.
func catalog(uri string, mine func(string) bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return "", err
	}
	defer c.Disconnect(ctx)
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return "", err
	}
	sort.Strings(dbs)
	var b strings.Builder
	for _, db := range dbs {
		if !mine(db) {
			continue
		}
		colls, err := c.Database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return "", err
		}
		sort.Strings(colls)
		fmt.Fprintf(&b, "%s: %s\n", db, strings.Join(colls, " "))
	}
	return b.String(), nil
}

// Start returns a deployment for t, stopped and cleaned up when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{DB: "t_" + randomHex(4)}
	if uri := os.Getenv("ARGON_TEST_URI"); uri != "" {
		s.URI = uri
	} else {
		s.DataDir = filepath.Join(t.TempDir(), "data")
		eng, err := store.StartEngine(s.DataDir, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(eng.Stop)
		s.URI, s.Embedded = eng.URI, true
	}
	c, err := mongo.Connect(options.Client().ApplyURI(s.URI).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if !s.Embedded {
			_ = c.Database(s.DB).Drop(ctx)
		}
		_ = c.Disconnect(ctx)
	})
	s.Client = c
	if !s.Embedded {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var info bson.M
		if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
			t.Fatal(err)
		}
		_, s.FerretDB = info["ferretdbVersion"]
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

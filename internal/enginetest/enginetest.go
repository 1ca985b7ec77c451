// Package enginetest gives tests a MongoDB to work on: the embedded engine
// in a temporary folder, or the server at ARGON_TEST_URI when it is set.
package enginetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/store"
)

// Server is a running deployment for one test.
type Server struct {
	URI      string
	Client   *mongo.Client
	Embedded bool
	// DB is a metadata database name no other test uses.
	DB string
}

// Start returns a deployment for t, stopped and cleaned up when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{DB: "t_" + randomHex(4)}
	if uri := os.Getenv("ARGON_TEST_URI"); uri != "" {
		s.URI = uri
	} else {
		eng, err := store.StartEngine(filepath.Join(t.TempDir(), "data"), "127.0.0.1:0")
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
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

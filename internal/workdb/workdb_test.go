package workdb

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/enginetest"
	"github.com/argon-db/argon/internal/wal"
)

func setup(t *testing.T) (*enginetest.Server, *wal.Repo, *wal.Branch) {
	t.Helper()
	srv := enginetest.Start(t)
	r := wal.Open(srv.Client, srv.DB)
	ctx := context.Background()
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	_, b, err := r.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	return srv, r, b
}

func doc(t *testing.T, d bson.D) bson.Raw {
	raw, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Writers on separate connections insert concurrently into one branch:
// all succeed, and the working database equals the fold of the log.
func TestConcurrentInserts(t *testing.T) {
	srv, r0, b := setup(t)
	ctx := context.Background()
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
			if err != nil {
				errs <- err
				return
			}
			defer c.Disconnect(ctx)
			r := wal.Open(c, srv.DB)
			for i := 0; i < each; i++ {
				wb := Open(r, b)
				wb.ScanReads = srv.Embedded
				_, err := wb.Insert(ctx, "c", []bson.Raw{doc(t, bson.D{{Key: "_id", Value: fmt.Sprintf("w%d-%d", w, i)}})}, wal.CommitInfo{Message: "m"})
				if err != nil {
					errs <- fmt.Errorf("w%d-%d: %w", w, i, err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wb := Open(r0, b)
	got, err := wb.Find(ctx, "c", Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each {
		t.Fatalf("%d documents, want %d", len(got), workers*each)
	}
}

// The documents storedAsSent accepts come back from the engine byte for
// byte; the ones it rejects really are changed by the engine, or the
// shortcut would be pointless for them.
func TestStoredAsSent(t *testing.T) {
	srv := enginetest.Start(t)
	if !srv.Embedded {
		t.Skip("the shortcut is for the embedded engine")
	}
	ctx := context.Background()
	c := srv.Client.Database(srv.DB + "_w").Collection("c")
	cases := []struct {
		doc  bson.D
		same bool
	}{
		{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: bson.D{{Key: "x", Value: 1.5}, {Key: "y", Value: bson.A{"s", int64(2), bson.D{{Key: "z", Value: true}}}}}}}, true},
		{bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: bson.D{{Key: "_id", Value: 1}, {Key: "b", Value: 2}}}}, true},
		{bson.D{{Key: "_id", Value: 3}, {Key: "n", Value: bson.D{{Key: "b", Value: 2}, {Key: "_id", Value: 1}}}}, false},
		{bson.D{{Key: "_id", Value: 4}, {Key: "z", Value: math.Copysign(0, -1)}}, false},
		{bson.D{{Key: "a", Value: 1}, {Key: "_id", Value: 5}}, false},
		{bson.D{{Key: "_id", Value: 6}, {Key: "arr", Value: bson.A{bson.D{{Key: "k", Value: 1}, {Key: "_id", Value: 2}}}}}, false},
	}
	for _, tc := range cases {
		raw, _ := bson.Marshal(tc.doc)
		if got := storedAsSent(raw); got != tc.same {
			t.Errorf("storedAsSent(%v) = %v, want %v", bson.Raw(raw), got, tc.same)
		}
		if _, err := c.InsertOne(ctx, raw); err != nil {
			t.Fatal(err)
		}
		id := bson.Raw(raw).Lookup("_id")
		back, err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		if same := bytes.Equal(back, raw); same != tc.same {
			t.Errorf("engine returned %v for %v: same=%v, storedAsSent said %v", back, bson.Raw(raw), same, tc.same)
		}
	}
}

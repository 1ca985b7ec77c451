package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/argon-db/argon/internal/enginetest"
)

// A holder's heartbeats, running beside its announcements of keys, never
// write old keys back: on FerretDB an update rewrites the whole document
// it read, so two updates of one lease at once can lose one.
func TestLeaseUpdatesKeepTheLastKeys(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	r := Open(srv.Client, srv.DB)
	if err := r.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	l := &Lease{TL: "tl", N: 1, Token: "tok", KeysKnown: true}
	if err := r.InsertLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	var keys []KeyRef
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.Heartbeat(ctx, l); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 150; i++ {
		keys = append(keys, KeyRef{Coll: "c", Key: []byte(fmt.Sprintf("k%d", i))})
		if err := r.Announce(ctx, l, keys); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadLease(ctx, "tl", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !got.KeysKnown || len(got.Keys) != len(keys) {
			close(stop)
			wg.Wait()
			t.Fatalf("after announcing %d keys the lease names %d (known %v)", len(keys), len(got.Keys), got.KeysKnown)
		}
	}
	close(stop)
	wg.Wait()
}

// The schema creates the leases collection, so that an embedded engine
// that opens the database next adds argon's index for lookups by _id to
// it (store.IndexIDs indexes the collections that exist); and it can be
// ensured again.
func TestEnsureSchemaCreatesLeases(t *testing.T) {
	srv := enginetest.Start(t)
	ctx := context.Background()
	r := Open(srv.Client, srv.DB)
	for i := 0; i < 2; i++ {
		if err := r.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
	}
	names, err := r.DB.ListCollectionNames(ctx, map[string]any{"name": collLeases})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 {
		t.Fatalf("collections named %s after EnsureSchema: %v", collLeases, names)
	}
}

package wal

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

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

// A lease's keys are stored as one binary value and read back as they
// were, indexes and empty keys included; a record holding them as an
// array of documents, as leases did before, reads the same.
func TestLeaseKeysRoundTrip(t *testing.T) {
	keys := KeyList{{Coll: "c", Key: []byte{0x10, 1, 0, 0, 0}}, {Coll: "c", Key: []byte("ix_1"), Index: true}, {Coll: "", Key: nil}, {Coll: "d.e", Key: bytes.Repeat([]byte{0xff}, 300)}}
	raw, err := bson.Marshal(&Lease{ID: "tl:1", Keys: keys, KeysKnown: true})
	if err != nil {
		t.Fatal(err)
	}
	if typ := bson.Raw(raw).Lookup("keys").Type; typ != bson.TypeBinary {
		t.Fatalf("keys stored as %s, want binary", typ)
	}
	same := func(what string, got KeyList) {
		t.Helper()
		if len(got) != len(keys) {
			t.Fatalf("%s: %d keys, want %d", what, len(got), len(keys))
		}
		for i := range keys {
			if got[i].Coll != keys[i].Coll || !bytes.Equal(got[i].Key, keys[i].Key) || got[i].Index != keys[i].Index {
				t.Fatalf("%s: key %d is %+v, want %+v", what, i, got[i], keys[i])
			}
		}
	}
	var back Lease
	if err := bson.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	same("binary", back.Keys)
	old, err := bson.Marshal(bson.D{{Key: "_id", Value: "tl:1"}, {Key: "known", Value: true}, {Key: "keys", Value: []KeyRef(keys)}})
	if err != nil {
		t.Fatal(err)
	}
	var fromOld Lease
	if err := bson.Unmarshal(old, &fromOld); err != nil {
		t.Fatal(err)
	}
	same("array", fromOld.Keys)
	none, _ := bson.Marshal(&Lease{ID: "tl:2", KeysKnown: true})
	if bson.Raw(none).Lookup("keys").Type != 0 {
		t.Fatal("a lease without keys stores a keys field")
	}
	for _, b := range [][]byte{{}, {2}, {1, 0, 5, 'c'}, {1, 0, 1, 'c', 9}, {1, 2, 1, 'c', 0}} {
		bad, _ := bson.Marshal(bson.D{{Key: "keys", Value: bson.Binary{Data: b}}})
		var l Lease
		if err := bson.Unmarshal(bad, &l); err == nil {
			t.Errorf("keys %x decoded to %+v", b, l.Keys)
		}
	}
}

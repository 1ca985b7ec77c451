package wal

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/enginetest"
)

// review8IDs returns the _id values of every BSON type argon may key a
// document by, as wal.KeyOf encodes them.
func review8IDs(t *testing.T) [][]byte {
	t.Helper()
	dec, _ := bson.ParseDecimal128("-1.2345E+10")
	oid := bson.NewObjectID()
	vals := []any{
		"", "a", "ünïcødé ☃", "with\x00nul", strings.Repeat("long", 500),
		int32(0), int32(-7), int64(math.MaxInt64), int64(math.MinInt64),
		0.0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 1.5e300,
		dec, oid, true, false,
		bson.DateTime(0), bson.NewDateTimeFromTime(time.Unix(1700000000, 123e6)),
		nil, bson.MinKey{}, bson.MaxKey{}, bson.Undefined{},
		bson.Regex{Pattern: "^a.*$", Options: "i"},
		bson.Binary{Subtype: 0, Data: []byte{0, 1, 2, 0xff}},
		bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0xab}, 16)},
		bson.Binary{Subtype: 0x80, Data: nil},
		bson.Timestamp{T: 5, I: 6},
		bson.D{{Key: "x", Value: int32(1)}, {Key: "y", Value: bson.D{{Key: "z", Value: "w"}}}},
		bson.D{},
		bson.A{int32(1), "two", bson.A{}},
		bson.JavaScript("function(){}"),
		bson.Symbol("sym"),
		bson.CodeWithScope{Code: "x", Scope: bson.D{{Key: "a", Value: int32(1)}}},
		bson.DBPointer{DB: "db.c", Pointer: oid},
	}
	var out [][]byte
	for _, v := range vals {
		raw, err := bson.Marshal(bson.D{{Key: "_id", Value: v}})
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		out = append(out, KeyOf(bson.Raw(raw).Lookup("_id")))
	}
	return out
}

func review8Keys(t *testing.T) KeyList {
	var keys KeyList
	for i, k := range review8IDs(t) {
		coll := []string{"c", "", "a.b.c", "ü", strings.Repeat("x", 200)}[i%5]
		keys = append(keys, KeyRef{Coll: coll, Key: k})
	}
	ix, _ := bson.Marshal(bson.D{{Key: "n", Value: "ix_1"}})
	keys = append(keys,
		KeyRef{Coll: "c", Key: KeyOf(bson.Raw(ix).Lookup("n")), Index: true},
		KeyRef{Coll: "", Key: []byte("raw index"), Index: true},
		// The same bytes as a document key and as an index key: distinct.
		KeyRef{Coll: "c", Key: KeyOf(bson.Raw(ix).Lookup("n"))},
		KeyRef{Coll: "c", Key: nil},
		KeyRef{Coll: "", Key: nil, Index: true},
	)
	return keys
}

func review8Same(t *testing.T, what string, got, want []KeyRef) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].Coll != want[i].Coll || !bytes.Equal(got[i].Key, want[i].Key) || got[i].Index != want[i].Index {
			t.Fatalf("%s: key %d is %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// rawLease returns the stored lease record as the server holds it.
func review8Raw(t *testing.T, r *Repo, id string) bson.Raw {
	t.Helper()
	raw, err := r.DB.Collection(collLeases).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func review8Repo(t *testing.T) *Repo {
	srv := enginetest.Start(t)
	r := Open(srv.Client, srv.DB)
	if err := r.EnsureSchema(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// Every key shape goes through the server and every lease update (insert,
// heartbeat, widen, narrow, announce, forget) without a byte changing; the
// stored value stays one binary of subtype 0.
func TestReview8LeaseKeysThroughServerUpdates(t *testing.T) {
	r := review8Repo(t)
	ctx := context.Background()
	keys := review8Keys(t)
	l := &Lease{TL: "tl", N: 1, Token: "tok", TTLMillis: 1000, KeysKnown: true, Keys: keys, Host: "h"}
	if err := r.InsertLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	check := func(step string, known bool, want []KeyRef) {
		t.Helper()
		got, err := r.ReadLease(ctx, "tl", 1)
		if err != nil || got == nil {
			t.Fatalf("%s: %v %v", step, got, err)
		}
		if got.KeysKnown != known || got.Token != "tok" || got.Host != "h" || got.TTLMillis != 1000 {
			t.Fatalf("%s: lease %+v", step, got)
		}
		review8Same(t, step, got.Keys, want)
		raw := review8Raw(t, r, got.ID)
		v, err := raw.LookupErr("keys")
		if want == nil {
			if err == nil {
				t.Fatalf("%s: keys stored as %s, want none", step, v.Type)
			}
			return
		}
		if v.Type != bson.TypeBinary {
			t.Fatalf("%s: keys stored as %s", step, v.Type)
		}
		if st, _ := v.Binary(); st != bson.TypeBinaryGeneric {
			t.Fatalf("%s: subtype %x", step, st)
		}
	}
	check("insert", true, keys)
	for i := 0; i < 3; i++ {
		if err := r.Heartbeat(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	check("heartbeat", true, keys)
	if err := r.Widen(ctx, l); err != nil {
		t.Fatal(err)
	}
	check("widen", false, keys)
	if err := r.Narrow(ctx, l); err != nil {
		t.Fatal(err)
	}
	check("narrow", true, keys)
	more := append(append([]KeyRef(nil), keys...), KeyRef{Coll: "z", Key: []byte{2, 1, 0, 0, 0, 0}})
	if err := r.Announce(ctx, l, more); err != nil {
		t.Fatal(err)
	}
	check("announce", true, more)
	review8Same(t, "in memory after announce", l.Keys, more)
	if err := r.Heartbeat(ctx, l); err != nil {
		t.Fatal(err)
	}
	check("heartbeat after announce", true, more)
	if err := r.ForgetKeys(ctx, l); err != nil {
		t.Fatal(err)
	}
	check("forget", true, nil)
	if err := r.Heartbeat(ctx, l); err != nil {
		t.Fatal(err)
	}
	check("heartbeat after forget", true, nil)
}

// Zero keys, nil keys, keys unknown: as stored, as read back.
func TestReview8LeaseEmptyKeys(t *testing.T) {
	r := review8Repo(t)
	ctx := context.Background()
	type c struct {
		name  string
		known bool
		keys  KeyList
	}
	for i, tc := range []c{{"unknown", false, nil}, {"known, nil", true, nil}, {"known, empty", true, KeyList{}}} {
		l := &Lease{TL: "tl", N: int64(i + 1), Token: "t", KeysKnown: tc.known, Keys: tc.keys}
		if err := r.InsertLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		if _, err := review8Raw(t, r, l.ID).LookupErr("keys"); err == nil {
			t.Errorf("%s: a keys field is stored", tc.name)
		}
		got, err := r.ReadLease(ctx, "tl", l.N)
		if err != nil || got.KeysKnown != tc.known || len(got.Keys) != 0 {
			t.Errorf("%s: read back %+v, %v", tc.name, got, err)
		}
		// Announcing zero keys: known, none.
		for _, a := range [][]KeyRef{nil, {}} {
			if err := r.Announce(ctx, l, a); err != nil {
				t.Fatal(err)
			}
			if err := r.Heartbeat(ctx, l); err != nil {
				t.Fatal(err)
			}
			got, err := r.ReadLease(ctx, "tl", l.N)
			if err != nil || !got.KeysKnown || len(got.Keys) != 0 {
				t.Errorf("%s: after announcing %#v: %+v, %v", tc.name, a, got, err)
			}
		}
	}
}

// A record written by an older argon, keys as an array of {c, k, i}
// documents, reads through the server, survives heartbeats and widen (on
// FerretDB a rewrite of the whole document), and an announcement turns
// it into the binary form.
func TestReview8OldArrayLeaseThroughServer(t *testing.T) {
	r := review8Repo(t)
	ctx := context.Background()
	keys := review8Keys(t)
	old := bson.D{{Key: "_id", Value: leaseID("tl", 1)}, {Key: "tl", Value: "tl"}, {Key: "n", Value: int64(1)},
		{Key: "token", Value: "old"}, {Key: "beat", Value: int64(0)}, {Key: "ttl_ms", Value: int64(30000)},
		{Key: "known", Value: true}, {Key: "keys", Value: []KeyRef(keys)}, {Key: "host", Value: "oldhost"}}
	if _, err := r.DB.Collection(collLeases).InsertOne(ctx, old); err != nil {
		t.Fatal(err)
	}
	if typ := review8Raw(t, r, leaseID("tl", 1)).Lookup("keys").Type; typ != bson.TypeArray {
		t.Fatalf("old record stored keys as %s", typ)
	}
	l, err := r.ReadLease(ctx, "tl", 1)
	if err != nil {
		t.Fatal(err)
	}
	review8Same(t, "old array", l.Keys, keys)
	if err := r.Heartbeat(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := r.Widen(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := r.Narrow(ctx, l); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadLease(ctx, "tl", 1)
	if err != nil {
		t.Fatal(err)
	}
	review8Same(t, "old array after updates", got.Keys, keys)
	if typ := review8Raw(t, r, leaseID("tl", 1)).Lookup("keys").Type; typ != bson.TypeArray {
		t.Fatalf("keys stored as %s after updates of other fields", typ)
	}
	if err := r.Announce(ctx, l, keys[:3]); err != nil {
		t.Fatal(err)
	}
	got, err = r.ReadLease(ctx, "tl", 1)
	if err != nil {
		t.Fatal(err)
	}
	review8Same(t, "after announce", got.Keys, keys[:3])
	// An old record with an empty array, and with null.
	for i, v := range []any{bson.A{}, nil} {
		id := leaseID("tl", int64(10+i))
		if _, err := r.DB.Collection(collLeases).InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tl", Value: "tl"},
			{Key: "n", Value: int64(10 + i)}, {Key: "known", Value: true}, {Key: "keys", Value: v}}); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadLease(ctx, "tl", int64(10+i))
		if err != nil || !got.KeysKnown || len(got.Keys) != 0 {
			t.Errorf("old keys %v: %+v, %v", v, got, err)
		}
	}
}

// Lists at the limits commit.go lets a lease announce (intentKeys =
// 20000 keys, intentBytes = 1 MiB counting 16 bytes a key) round-trip
// through the server and its updates.
func TestReview8LeaseKeysAtLimits(t *testing.T) {
	r := review8Repo(t)
	ctx := context.Background()
	many := make([]KeyRef, 20000)
	for i := range many {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("k%07d", i)}})
		many[i] = KeyRef{Coll: "coll", Key: KeyOf(bson.Raw(raw).Lookup("_id")), Index: i%997 == 0}
	}
	// About 1 MiB: 3000 keys of 330 bytes (+16 each counted).
	big := make([]KeyRef, 3000)
	for i := range big {
		k := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0}, 110)
		big[i] = KeyRef{Coll: "c", Key: k}
	}
	for n, keys := range [][]KeyRef{many, big} {
		l := &Lease{TL: "tl", N: int64(n + 1), Token: "t"}
		if err := r.InsertLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := r.Announce(ctx, l, keys); err != nil {
			t.Fatal(err)
		}
		if err := r.Heartbeat(ctx, l); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d keys: announce + heartbeat %v", len(keys), time.Since(start))
		got, err := r.ReadLease(ctx, "tl", l.N)
		if err != nil {
			t.Fatal(err)
		}
		review8Same(t, fmt.Sprintf("%d keys", len(keys)), got.Keys, keys)
		// The void a taker inserts copies them, as an array.
		v := &Slot{TL: "tl", N: l.N, Kind: SlotVoid, Token: "v", Dirty: true, KeysKnown: got.KeysKnown, Keys: got.Keys, Taker: true}
		if err := r.InsertSlot(ctx, v); err != nil {
			t.Fatal(err)
		}
		s, err := r.ReadSlot(ctx, "tl", l.N)
		if err != nil || s == nil {
			t.Fatal(s, err)
		}
		review8Same(t, fmt.Sprintf("void of %d keys", len(keys)), s.Keys, keys)
	}
}

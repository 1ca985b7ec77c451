package commit

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// holdFails is a DBFiles whose hold of the writes fails: a writer then
// gives its slot back before it prepared the working database.
type holdFails struct{}

func (holdFails) Fingerprint(string) (string, error) { return "", errors.New("no files") }
func (holdFails) Clean(string) string                { return "" }
func (holdFails) SetClean(string, string) error      { return nil }
func (holdFails) KeepClean(string) error             { return nil }
func (holdFails) Building(string)                    {}
func (holdFails) Built(string) error                 { return nil }
func (holdFails) HoldWrites(context.Context, string, time.Duration) (func(), error) {
	return nil, errors.New("argon serve is gone")
}

// A writer that gives its slot back before it repaired the dirty void
// below it (its hold of the writes failed) fills the slot with a void that
// names the same keys: the next writer still repairs them. A clean void
// there hid them for good (found by review).
func TestUnpreparedReleaseKeepsADirtyVoidDirty(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	w := New().Open(r, b)
	for _, id := range []string{"a", "z"} { // z last: this Branch's last write touched z alone
		if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: 1}})}, wal.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := r.HeadSlot(ctx, b.Timeline, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A write that did not commit: it changed "a" in the working database
	// and its slot is a dirty void naming "a".
	if _, err := w.DB.Collection("c").UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 99}}}}); err != nil {
		t.Fatal(err)
	}
	key := wal.KeyRef{Coll: "c", Key: wal.KeyOf(bson.Raw(mustMarshal(bson.D{{Key: "_id", Value: "a"}})).Lookup("_id"))}
	if err := r.InsertLease(ctx, &wal.Lease{TL: b.Timeline, N: head.N + 1, Token: "gone", TTLMillis: 30000, KeysKnown: true, Keys: []wal.KeyRef{key}}); err != nil {
		t.Fatal(err)
	}
	if err := r.InsertSlot(ctx, &wal.Slot{TL: b.Timeline, N: head.N + 1, Kind: wal.SlotVoid, Base: head.LSN, LSN: head.LSN,
		Token: "gone", Time: time.Now(), Dirty: true, KeysKnown: true, Keys: []wal.KeyRef{key}}); err != nil {
		t.Fatal(err)
	}

	w.Files = holdFails{}
	if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "b"}})}, wal.CommitInfo{}); err == nil {
		t.Fatal("the insert succeeded without its hold")
	}
	s, err := r.HeadSlot(ctx, b.Timeline, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != head.N+2 || s.Kind != wal.SlotVoid || !s.Dirty || !s.KeysKnown || len(s.Keys) != 1 || string(s.Keys[0].Key) != string(key.Key) {
		t.Fatalf("the slot given back is %+v, want a dirty void naming the key of the one below", s)
	}

	w.Files = nil
	if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "b"}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	var got bson.M
	if err := w.DB.Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["v"] != int32(1) {
		t.Errorf("a holds v %v after the next write, want the committed 1", got["v"])
	}
}

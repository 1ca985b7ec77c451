package commit

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// fsck finds a committed head holding two documents whose _ids are equal
// by value (the 32-bit 2 and 2.0): a state no server can hold, which
// argon's writes refuse to commit (the log below is written directly). A
// branch whose head is fine is not reported.
func TestFsckFindsEqualIDsInAHead(t *testing.T) {
	_, r, b := waltest.Project(t)
	ctx := context.Background()
	commitIDs(t, r, b, int32(2), "x", 2.0, int64(3), int32(3), int32(4))
	want := fmt.Sprint([]string{
		`branch main at LSN 6: collection c holds 2 documents whose _ids are equal by value: {"$numberInt":"2"}, {"$numberDouble":"2.0"}; a checkout, restore or find --at of this state fails on a duplicate key`,
		`branch main at LSN 6: collection c holds 2 documents whose _ids are equal by value: {"$numberLong":"3"}, {"$numberInt":"3"}; a checkout, restore or find --at of this state fails on a duplicate key`,
	})
	if got := fsckProblems(t, r, false); fmt.Sprint(got) != want {
		t.Fatalf("fsck: %q\nwant %q", got, want)
	}
	if _, err := r.CreateBranch(ctx, "p", "clean", b, 1); err != nil {
		t.Fatal(err)
	}
	if got := fsckProblems(t, r, false); fmt.Sprint(got) != want {
		t.Fatalf("fsck with a clean branch too: %q\nwant %q", got, want)
	}
}

// On FerretDB, fsck also finds a head holding two _ids that engine's
// unique index takes for one (an ObjectId and its hex string, a date and
// the integer of its milliseconds); elsewhere they are two values.
func TestFsckFindsFerretDBEqualIDs(t *testing.T) {
	_, r, b := waltest.Project(t)
	oid := bson.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	commitIDs(t, r, b, oid, oid.Hex(), bson.DateTime(1700000000000), int64(1700000000000), "other",
		bson.Binary{Subtype: 0, Data: []byte{1, 2}}, "AQI=", bson.Binary{Subtype: 4, Data: []byte{3}},
		bson.Timestamp{T: 1, I: 2}, int32(9), bson.Timestamp{T: 0, I: 9},
		bson.D{{Key: "a", Value: oid}}, bson.D{{Key: "a", Value: oid.Hex()}})
	r.Scans = true
	want := fmt.Sprint([]string{
		`branch main at LSN 13: collection c holds 2 documents whose _ids are one value to FerretDB's unique index: {"$oid":"0102030405060708090a0b0c"}, "0102030405060708090a0b0c"; a checkout, restore or find --at of this state fails on a duplicate key`,
		`branch main at LSN 13: collection c holds 2 documents whose _ids are one value to FerretDB's unique index: {"$date":{"$numberLong":"1700000000000"}}, {"$numberLong":"1700000000000"}; a checkout, restore or find --at of this state fails on a duplicate key`,
		`branch main at LSN 13: collection c holds 2 documents whose _ids are one value to FerretDB's unique index: {"$binary":{"base64":"AQI=","subType":"00"}}, "AQI="; a checkout, restore or find --at of this state fails on a duplicate key`,
		`branch main at LSN 13: collection c holds 2 documents whose _ids are one value to FerretDB's unique index: {"$numberInt":"9"}, {"$timestamp":{"t":0,"i":9}}; a checkout, restore or find --at of this state fails on a duplicate key`,
		`branch main at LSN 13: collection c holds 2 documents whose _ids are one value to FerretDB's unique index: {"a": {"$oid":"0102030405060708090a0b0c"}}, {"a": "0102030405060708090a0b0c"}; a checkout, restore or find --at of this state fails on a duplicate key`,
	})
	if got := fsckProblems(t, r, false); fmt.Sprint(got) != want {
		t.Fatalf("fsck on FerretDB: %q\nwant %q", got, want)
	}
	r.Scans = false
	if got := fsckProblems(t, r, false); len(got) != 0 {
		t.Fatalf("fsck elsewhere: %q, want none", got)
	}
}

// commitIDs commits, as slot 1 of b, a put of {_id: id} into c for each
// of ids, written to the log directly: argon's writes refuse such heads.
func commitIDs(t *testing.T, r *wal.Repo, b *wal.Branch, ids ...any) {
	t.Helper()
	ctx := context.Background()
	var es []wal.Entry
	for i, id := range ids {
		e, err := wal.PutEntry("c", mustMarshal(bson.D{{Key: "_id", Value: id}}))
		if err != nil {
			t.Fatal(err)
		}
		e.TL, e.LSN, e.Token = b.Timeline, int64(i+1), "tok"
		es = append(es, e)
	}
	if _, err := r.SpillEntries(ctx, "p", es); err != nil {
		t.Fatal(err)
	}
	s := &wal.Slot{TL: b.Timeline, N: 1, Kind: wal.SlotCommit, Base: 0, LSN: int64(len(es)), Token: "tok", Spilled: true, Stats: wal.Stats(es)}
	if err := r.InsertSlot(ctx, s); err != nil {
		t.Fatal(err)
	}
}

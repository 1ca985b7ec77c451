package commit

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// An upsert whose new _id argon cannot know from the filter and the
// change ({_id: 5} with $set of _id 5.0) is made by the server in a
// scratch collection and inserted by its _id, announced first: a writer
// killed after it leaves a lease naming that key, and the next holder
// takes the document out again instead of rebuilding the working
// database, so an application's uncommitted document stays. (Until the
// twenty-third session such an upsert widened its lease: the next holder
// rebuilt, and the application's document was lost.)
func TestKilledUpsertOfUnknownIDIsRepaired(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	scan := srv.Embedded || srv.FerretDB
	w := New().Open(r, b)
	w.ScanReads = scan
	if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: int32(1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	// An application's uncommitted document.
	if _, err := w.DB.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	r2 := *r
	r2.Exclusive = true
	var lease *wal.Lease
	review34KillAt(t, &r2, b, scan, "applied", func(ctx context.Context, w *workdb.Branch) error {
		_, err := w.Modify(ctx, "c", workdb.Modification{
			Filter: mustMarshal(bson.D{{Key: "_id", Value: int32(5)}}),
			Update: mustMarshal(bson.D{{Key: "$set", Value: bson.D{{Key: "_id", Value: 5.0}, {Key: "v", Value: int32(9)}}}}),
			Upsert: true,
		}, workdb.Limits{Engine: workdb.EmbeddedEngine}, wal.CommitInfo{})
		return err
	})
	h, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if lease, err = r.ReadLease(ctx, b.Timeline, h.Slot.N+1); err != nil || lease == nil {
		t.Fatalf("the killed writer's lease: %v, %v", lease, err)
	}
	if !lease.KeysKnown || len(lease.Keys) != 1 {
		t.Errorf("the killed writer's lease: known %v, %d keys; want the upserted document's key, known", lease.KeysKnown, len(lease.Keys))
	}
	w3 := New().Open(&r2, b)
	w3.ScanReads = scan
	var notices []string
	w3.Notice = func(s string) { notices = append(notices, s) }
	changes, _, err := w3.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range changes {
		got = append(got, fmt.Sprintf("%s %s %s", ch.Kind, ch.Coll, workdb.FormatValue(ch.ID)))
	}
	if len(got) != 1 || got[0] != `added c "app"` {
		t.Errorf("after the takeover: changes %q, want only the application's document (notices %q)", got, notices)
	}
}

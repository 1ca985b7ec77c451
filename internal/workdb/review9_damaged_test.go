package workdb_test

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/workdb"
)

// An earlier read's view whose record remains but whose database was
// dropped: no image anywhere, so before 950ce4c a read of a later LSN
// materialised a view of its own from the log. fsck reports the view as a
// problem; the later read must still answer the log's state (a read
// checks, after reading a view, that its database still holds its owner
// record). A view that lost a document but kept its database is not
// detected by reads (fsck reports it; ARCHITECTURE, "Reads are laid over
// a view below them").
func TestReview9DamagedEarlierViewAsBase(t *testing.T) {
	for _, damage := range []string{"dropped"} {
		t.Run(damage, func(t *testing.T) {
			h := newR9(t)
			h.insert("c", h.docs(0, 20)...) // 1..20
			at := h.head()
			h.view(h.b.Timeline, at, "c")
			var rec struct {
				DB string `bson:"db"`
			}
			id := fmt.Sprintf("%s:%012d/c", h.b.Timeline, at)
			if err := h.r.DB.Collection("views").FindOne(h.ctx, bson.D{{Key: "_id", Value: id}}).Decode(&rec); err != nil {
				t.Fatal(err)
			}
			db := h.r.Client.Database(rec.DB)
			if damage == "dropped" {
				if err := db.Drop(h.ctx); err != nil {
					t.Fatal(err)
				}
			} else if _, err := db.Collection("c").DeleteOne(h.ctx, bson.D{{Key: "_id", Value: int32(4)}}); err != nil {
				t.Fatal(err)
			}
			problems, _, err := workdb.VerifyViews(h.ctx, h.r, map[string]bool{h.b.Timeline: true}, false)
			if err != nil || len(problems) != 1 {
				t.Fatalf("fsck's check of views: %v, %v", problems, err)
			}
			t.Logf("fsck: %s", problems[0])
			h.set("c", int32(3), bson.D{{Key: "v", Value: 33}}) // at+1
			v := workdb.OpenCollViews(h.r, h.b.Timeline, at+1)
			var built []string
			v.Built = func(c string, l int64) { built = append(built, fmt.Sprintf("%s@%d", c, l)) }
			got, err := v.Count(h.ctx, "c", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != 20 {
				t.Errorf("count at %d over a view at %d that %s: %d (materialised %v), want 20", at+1, at, damage, got, built)
			}
		})
	}
}

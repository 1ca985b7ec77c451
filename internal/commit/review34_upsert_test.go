package commit

// Review 34 of fbede15 (every lease starts naming only its intent keys;
// safety rests on "announce each key before changing it").

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

type review34Killed struct{}

// review34KillAt runs write on a fresh Branch of r (exclusive: every other
// lease is a dead process's), killing it (a panic) at hook point.
func review34KillAt(t *testing.T, r *wal.Repo, b *wal.Branch, scan bool, point string, write func(ctx context.Context, w *workdb.Branch) error) {
	t.Helper()
	armed := true
	Hook = func(p string) {
		if p == point && armed {
			armed = false
			panic(review34Killed{})
		}
	}
	t.Cleanup(func() { Hook = nil })
	func() {
		defer func() {
			if x := recover(); x != nil {
				if _, ok := x.(review34Killed); !ok {
					panic(x)
				}
			}
		}()
		w := New().Open(r, b)
		w.ScanReads = scan
		w.Notice = func(string) {}
		err := write(context.Background(), w)
		t.Fatalf("the writer was not stopped: %v", err)
	}()
	Hook = nil
}

// review34Docs is collection c as the working database holds it.
func review34Docs(t *testing.T, w *workdb.Branch) []string {
	t.Helper()
	ctx := context.Background()
	cur, err := w.DB.Collection("c").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for cur.Next(ctx) {
		id := cur.Current.Lookup("_id")
		out = append(out, fmt.Sprintf("%s %s", id.Type, cur.Current))
	}
	_ = cur.Close(ctx)
	return out
}

// An upsert whose $setOnInsert gives the new document the _id -0.0: the
// writer announces that key (known up front: upsertID), the embedded
// engine stores 0.0 (another key), and the writer dies before committing.
// The next holder repairs the announced key -0.0 only: the dead writer's
// document stays, and argon reports it as an application's uncommitted
// addition (argon commit would record it).
func TestReview34KilledUpsertOfNegativeZeroID(t *testing.T) {
	for _, c := range []struct {
		name   string
		update bson.D
	}{
		{"setOnInsert", bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "_id", Value: math.Copysign(0, -1)}}}, {Key: "$set", Value: bson.D{{Key: "v", Value: int32(9)}}}}},
		{"nested", bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: math.Copysign(0, -1)}}}}}, {Key: "$set", Value: bson.D{{Key: "v", Value: int32(9)}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, r, b := waltest.Project(t)
			ctx := context.Background()
			scan := srv.Embedded || srv.FerretDB
			w := New().Open(r, b)
			w.ScanReads = scan
			if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: int32(1)}})}, wal.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
			r2 := *r
			r2.Exclusive = true
			review34KillAt(t, &r2, b, scan, "applied", func(ctx context.Context, w *workdb.Branch) error {
				_, err := w.Modify(ctx, "c", workdb.Modification{
					Filter: mustMarshal(bson.D{{Key: "x", Value: int32(5)}}),
					Update: mustMarshal(c.update),
					Upsert: true,
				}, workdb.Limits{Engine: workdb.EmbeddedEngine}, wal.CommitInfo{})
				return err
			})
			t.Logf("after the kill: %q", review34Docs(t, w))
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
			docs := review34Docs(t, w3)
			if len(changes) != 0 || len(docs) != 1 {
				t.Errorf("after the takeover: changes %q (want none: the dead writer's upsert is not an application's), c holds %q (want only \"a\"); notices %q",
					got, docs, notices)
			}
			if !strings.Contains(strings.Join(notices, "|"), "repaired") {
				t.Logf("notices: %q", notices)
			}
		})
	}
}

// review34Deep is a document nesting more than MongoDB's 100 levels: the
// embedded engine stores it, argon refuses it once read back
// (CheckDocument), so the write fails after the server's upsert.
func review34Deep() bson.D {
	d := bson.D{{Key: "x", Value: int32(1)}}
	for i := 0; i < 105; i++ {
		d = bson.D{{Key: "x", Value: d}}
	}
	return d
}

// Control (passes): the same upsert failing (not killed) after the server stored it: the
// failed write's own repair (fail, settle) must take its document out.
func TestReview34FailedUpsertOfNegativeZeroIDControl(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	scan := srv.Embedded || srv.FerretDB
	w := New().Open(r, b)
	w.ScanReads = scan
	if _, err := w.Insert(ctx, "c", []bson.Raw{mustMarshal(bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: int32(1)}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	_, err := w.Modify(ctx, "c", workdb.Modification{
		Filter: mustMarshal(bson.D{{Key: "x", Value: int32(5)}}),
		Update: mustMarshal(bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "_id", Value: math.Copysign(0, -1)}}}, {Key: "$set", Value: bson.D{{Key: "deep", Value: review34Deep()}}}}),
		Upsert: true,
	}, workdb.Limits{Engine: workdb.EmbeddedEngine}, wal.CommitInfo{})
	t.Logf("upsert: %v", err)
	if err == nil {
		t.Skip("the upsert did not fail")
	}
	changes, _, err := w.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("after the failed upsert: %d changes (%s %v), want none", len(changes), changes[0].Kind, changes[0].ID)
	}
}

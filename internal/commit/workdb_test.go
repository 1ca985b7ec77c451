package commit

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

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
	t.Parallel()
	srv, r0, b := waltest.Project(t)
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
				wb := New().Open(r, b)
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
	wb := New().Open(r0, b)
	got, err := wb.Find(ctx, "c", workdb.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each {
		t.Fatalf("%d documents, want %d", len(got), workers*each)
	}
}

// argon never drops a database it did not create and record: a database
// under a branch's working-database name with no record in workdbs, no
// marker of this project and data in it is refused by Rebuild and Drop,
// and its data stays; a recorded one is rebuilt as usual.
func TestNeverDropsWhatItDidNotRecord(t *testing.T) {
	srv, r, b := waltest.Project(t)
	ctx := context.Background()
	w := New().Open(r, b)
	if _, err := w.Insert(ctx, "c", []bson.Raw{doc(t, bson.D{{Key: "_id", Value: "argon's"}})}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	head, err := r.Head(ctx, b.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Rebuild(ctx, head.Slot, ""); err != nil {
		t.Fatalf("rebuild of a recorded database: %v", err)
	}
	// Now make it look foreign: no record, another project's marker, data.
	if _, err := srv.Client.Database(srv.DB).Collection("workdbs").DeleteOne(ctx, bson.D{{Key: "_id", Value: w.DB.Name()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection(workdb.MarkerCollection).UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "project", Value: "someone-else"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.DB.Collection("theirs").InsertOne(ctx, bson.D{{Key: "_id", Value: "keep me"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Rebuild(ctx, head.Slot, ""); err == nil {
		t.Fatal("rebuild dropped a database argon did not record")
	}
	if err := w.Drop(ctx); err == nil {
		t.Fatal("drop dropped a database argon did not record")
	}
	if n, err := w.DB.Collection("theirs").CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("their data: %d documents, %v", n, err)
	}
}

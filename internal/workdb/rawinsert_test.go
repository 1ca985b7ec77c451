package workdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/argon-db/argon/internal/wal/waltest"
)

// insertBatches sends FerretDB plain insert commands built from the
// documents' bytes, and every other server the driver's InsertMany; both
// insert every document in order, a document too large to share a
// command alone, and report a duplicate _id as the driver does, having
// inserted the documents before it and none after.
func TestInsertBatches(t *testing.T) {
	srv, r, _ := waltest.Project(t)
	ctx := context.Background()
	for _, ferret := range []bool{true, false} {
		if ferret && !(srv.Embedded || srv.FerretDB) {
			continue // the command form is for FerretDB only
		}
		t.Run(fmt.Sprintf("ferretdb=%v", ferret), func(t *testing.T) {
			r.FerretDB = ferret
			defer func() { r.FerretDB = srv.Embedded || srv.FerretDB }()
			c := srv.Client.Database(fmt.Sprintf("ar_rawinsert_%v", ferret)).Collection("c")
			defer func() { _ = c.Database().Drop(context.Background()) }()
			var docs []bson.Raw
			for i := 0; i < 2*batchSize+5; i++ {
				var id any = int32(i)
				if i%3 == 1 {
					id = fmt.Sprintf("s%d", i)
				}
				d, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "n", Value: int32(i)}})
				docs = append(docs, d)
			}
			// One document past the command's bound, in the middle.
			big, _ := bson.Marshal(bson.D{{Key: "_id", Value: "big"}, {Key: "pad", Value: strings.Repeat("x", rawInsertBytes+1)}})
			docs = append(docs[:batchSize+1], append([]bson.Raw{big}, docs[batchSize+1:]...)...)
			if err := insertBatches(ctx, r, c, docs, nil); err != nil {
				t.Fatal(err)
			}
			cur, err := c.Find(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			var got []bson.Raw
			for cur.Next(ctx) {
				got = append(got, append(bson.Raw(nil), cur.Current...))
			}
			if err := cur.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(docs) {
				t.Fatalf("read back %d documents, inserted %d", len(got), len(docs))
			}
			for i := range docs {
				if string(got[i]) != string(docs[i]) {
					t.Fatalf("document %d read back as %.80s, want %.80s", i, got[i].String(), docs[i].String())
				}
			}

			// A duplicate _id at index 2 of a new batch.
			dup := c.Database().Collection("dup")
			var more []bson.Raw
			for _, id := range []any{"a", "b", "a", "c"} {
				d, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}})
				more = append(more, d)
			}
			err = insertBatches(ctx, r, dup, more, nil)
			var bwe mongo.BulkWriteException
			if !mongo.IsDuplicateKeyError(err) || !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 2 {
				t.Fatalf("insert of a duplicate: %v, want a duplicate key error at index 2", err)
			}
			if n, err := dup.CountDocuments(ctx, bson.D{}); err != nil || n != 2 {
				t.Fatalf("after the duplicate: %d documents (%v), want the 2 before it", n, err)
			}
		})
	}
}

package commit

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal"
	"github.com/argon-db/argon/internal/wal/waltest"
	"github.com/argon-db/argon/internal/workdb"
)

// The first status of a branch builds its working database and scans it
// under the branch's lease; the release that follows writes the database
// again. The clean record it leaves must name the files as they are after
// that release: a record of the bytes the scan saw made every later write
// ask the log whether what it changes is committed (TestModel went from
// 18 s to 84 s when Changes recorded after Read returned).
func TestFirstStatusLeavesACurrentCleanRecord(t *testing.T) {
	w := embeddedBranch(t)
	ctx := context.Background()
	changes, _, err := w.Changes(ctx)
	if err != nil || len(changes) != 0 {
		t.Fatalf("changes of a new branch: %v, %v", changes, err)
	}
	fp, err := w.Files.Fingerprint(w.DB.Name())
	if err != nil {
		t.Fatal(err)
	}
	if rec := w.Files.Clean(w.DB.Name()); rec != fp {
		t.Errorf("clean record %q, files now %q: want the record to name the files", rec, fp)
	}
}

// A merge's write (ApplyPuts) and an index change on a database known
// clean leave it recorded clean, as inserts and updates do, and so does
// argon commit of an application's changes (in a process that runs the
// engine itself): before, the next status read the whole branch, and the
// next read of its past materialised a view instead of using the working
// database.
func TestMergeAndIndexWritesKeepTheCleanRecord(t *testing.T) {
	w := embeddedBranch(t)
	ctx := context.Background()
	if _, _, err := w.Changes(ctx); err != nil { // builds it, records it clean
		t.Fatal(err)
	}
	recorded := func(what string) {
		t.Helper()
		fp, err := w.Files.Fingerprint(w.DB.Name())
		if err != nil {
			t.Fatal(err)
		}
		if rec := w.Files.Clean(w.DB.Name()); rec != fp {
			t.Errorf("after %s: clean record %q, files now %q", what, rec, fp)
		}
	}
	doc := mustMarshal(bson.D{{Key: "_id", Value: "m"}, {Key: "v", Value: int32(1)}})
	if _, _, err := w.ApplyPuts(ctx, []workdb.Put{{Coll: "c", ID: bson.Raw(doc).Lookup("_id"), Doc: doc}}, 0, wal.CommitInfo{Message: "merge"}); err != nil {
		t.Fatal(err)
	}
	recorded("a merge's write")
	keys := mustMarshal(bson.D{{Key: "v", Value: 1}})
	if _, _, _, err := w.CreateIndex(ctx, "c", keys, workdb.IndexOptions{}, wal.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	recorded("an index creation")
	// An application's change (written straight to the database), then
	// argon commit: the database holds exactly the committed state.
	if _, err := w.DB.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "app"}}); err != nil {
		t.Fatal(err)
	}
	changes, _, _, err := w.CommitChanges(ctx, wal.CommitInfo{Message: "app"}, workdb.Limits{})
	if err != nil || len(changes) != 1 {
		t.Fatalf("commit of the application's change: %v, %v", changes, err)
	}
	recorded("argon commit")
}

// embeddedBranch opens main of a new project on the embedded engine as
// the CLI does there, its files fingerprinted.
func embeddedBranch(t *testing.T) *workdb.Branch {
	t.Helper()
	srv, r, main := waltest.Project(t)
	if !srv.Embedded {
		t.Skip("the embedded engine's files")
	}
	w := New().Open(r, main)
	w.ScanReads = true
	w.Files = store.FilesAt(srv.DataDir)
	return w
}

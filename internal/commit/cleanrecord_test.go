package commit

import (
	"context"
	"testing"

	"github.com/argon-db/argon/internal/store"
	"github.com/argon-db/argon/internal/wal/waltest"
)

// The first status of a branch builds its working database and scans it
// under the branch's lease; the release that follows writes the database
// again. The clean record it leaves must name the files as they are after
// that release: a record of the bytes the scan saw made every later write
// ask the log whether what it changes is committed (TestModel went from
// 18 s to 84 s when Changes recorded after Read returned).
func TestFirstStatusLeavesACurrentCleanRecord(t *testing.T) {
	srv, r, main := waltest.Project(t)
	if !srv.Embedded {
		t.Skip("the embedded engine's files")
	}
	ctx := context.Background()
	w := New().Open(r, main)
	w.ScanReads = true
	w.Files = store.FilesAt(srv.DataDir)
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

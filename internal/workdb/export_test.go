package workdb

import (
	"context"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// SetBulkLimits lowers the sizes at which a change of many documents on
// FerretDB deletes by filter and splits its deletes into _id ranges, so
// that small tests take every path; t's cleanup restores them.
func SetBulkLimits(t testing.TB, few, max int) {
	oldFew, oldMax := fewIDs, maxDelete
	fewIDs, maxDelete = few, max
	t.Cleanup(func() { fewIDs, maxDelete = oldFew, oldMax })
}

// SetRunBytes sets how many bytes of documents EachByID sorts in memory
// at a time; t's cleanup restores it.
func SetRunBytes(t testing.TB, n int) {
	old := runBytes
	runBytes = n
	t.Cleanup(func() { runBytes = old })
}

// ScanKept runs the scan of a status (scanSums keeping what it reads,
// against the committed fingerprint) and tells what it kept: the
// collections whose documents it kept, those it found unchanged, and
// the bytes of documents it holds in memory. ok is false when it kept
// nothing.
func ScanKept(ctx context.Context, db *mongo.Database, committed Sums) (kept, same []string, memBytes int, ok bool, err error) {
	_, s, err := scanSums(ctx, db, true, committed)
	if err != nil || s == nil {
		return nil, nil, 0, false, err
	}
	defer s.Close()
	for c, d := range s.docs {
		kept = append(kept, c)
		memBytes += len(d.mem)
	}
	for c := range s.same {
		same = append(same, c)
	}
	sort.Strings(kept)
	sort.Strings(same)
	return kept, same, memBytes, true, nil
}

package workdb

import "testing"

// SetBulkLimits lowers the sizes at which a change of many documents on
// FerretDB deletes by filter and splits its deletes into _id ranges, so
// that small tests take every path; t's cleanup restores them.
func SetBulkLimits(t testing.TB, few, max int) {
	oldFew, oldMax := fewIDs, maxDelete
	fewIDs, maxDelete = few, max
	t.Cleanup(func() { fewIDs, maxDelete = oldFew, oldMax })
}

// SetSpoolMemory sets how many bytes of a read's documents a Docs with
// Spill keeps in memory; t's cleanup restores it.
func SetSpoolMemory(t testing.TB, n int) {
	old := spoolMemory
	spoolMemory = n
	t.Cleanup(func() { spoolMemory = old })
}

// SetKeepMax sets how many bytes of documents a status scan keeps for
// the comparison that follows; t's cleanup restores it.
func SetKeepMax(t testing.TB, n int) {
	old := keepMax
	keepMax = n
	t.Cleanup(func() { keepMax = old })
}

// SetRunBytes sets how many bytes of documents EachByID sorts in memory
// at a time; t's cleanup restores it.
func SetRunBytes(t testing.TB, n int) {
	old := runBytes
	runBytes = n
	t.Cleanup(func() { runBytes = old })
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// review23 (399fe79, "Log and image reads ask the engine for small
// batches"). A batch is counted in documents, not bytes: storedBatch = 16
// chunks of the entries collection per reply, and a chunk holds up to 4
// MiB of records (chunkBytes; a larger document gets a chunk of its own,
// up to 16 MiB). The embedded engine (FerretDB) does not cut a reply at
// 16 MiB as MongoDB does: it sends the 16 chunks whole, and a reply past
// the 48 MiB wire limit is refused by the driver ("length of read message
// too large"). One commit of 1,400 documents of 40 KB (56 MB, 14 chunks
// of about 4 MiB) is enough: argon log --entries and argon fsck then fail
// on the branch for good, on the embedded engine and on a FerretDB
// server alike. (The batch of 101 before 399fe79 failed the
// same way; the commit that set the batch size left it so.) This checks
// that both read such a commit.
func TestReview23LogReadsOfLargeChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 56 MB and 52 MB of documents (run in the full suite, on the embedded engine)")
	}
	for _, c := range []struct {
		name      string
		docs, pad int
		fsck      bool
	}{
		{"14 chunks of 4 MiB", 1400, 40000, true},
		// A document past 4 MiB is a chunk alone: 4 of 13 MB are one
		// reply of 52 MB for any batch of more than 3. (fsck is left out
		// here: it also reads the working database's documents, which
		// fail alike; see TestReview23ReadsOfLargeDocuments.)
		{"4 chunks of 13 MB", 4, 13000000, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, run, _ := r23BigCommit(t, fmt.Sprintf("r23lb%d", c.docs), c.docs, c.pad)
			if code, _, errOut := run("log", "--entries", "-n", "1"); code != 0 {
				t.Errorf("argon log --entries -n 1: exit %d: %s", code, strings.TrimSpace(errOut))
			}
			if !c.fsck {
				return
			}
			if code, out, errOut := run("fsck"); code != 0 || !strings.Contains(out, " 0 problems") {
				t.Errorf("argon fsck: exit %d: %q %s", code, out, strings.TrimSpace(errOut))
			}
		})
	}
}

// r23BigCommit makes a workspace whose branch main holds one commit of
// docs documents {_id: i, pad: "xxx..."} of pad bytes, in collection big.
func r23BigCommit(t *testing.T, p string, docs, pad int) (string, func(args ...string) (int, string, string), func(args ...string) string) {
	t.Helper()
	dir, run, must := r23Workspace(t, p)
	var b strings.Builder
	s := strings.Repeat("x", pad)
	for i := 0; i < docs; i++ {
		fmt.Fprintf(&b, "{\"_id\": %d, \"pad\": %q}\n", i, s)
	}
	file := filepath.Join(dir, "big.json")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	must("insert", "big", "--file", file, "-m", "big")
	return dir, run, must
}

// review23, related to 399fe79 but older: the same engine behaviour hits
// the reads of documents. A collection of 4 documents of 13 MB (each
// under the 16 MiB limit; argon insert takes them) cannot be read back:
// argon find big and argon export main --dir D fail with "length of read
// message too large", since the engine sends the default first batch of
// 101 documents (52 MB) as one reply. MongoDB cuts a batch at 16 MiB;
// FerretDB does not, so argon must ask for small batches there.
func TestReview23ReadsOfLargeDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 52 MB of documents (run in the full suite, on the embedded engine)")
	}
	dir, run, _ := r23BigCommit(t, "r23ld", 4, 13000000)
	if code, out, errOut := run("count", "big"); code != 0 || strings.TrimSpace(out) != "4" {
		t.Fatalf("argon count big: exit %d: %q %s", code, out, errOut)
	}
	if code, _, errOut := run("find", "big", "{}", "--projection", `{"pad": 0}`); code != 0 {
		t.Fatalf("argon find big --projection: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run("find", "big", "{}"); code != 0 {
		t.Errorf("argon find big: exit %d: %s", code, strings.TrimSpace(errOut))
	}
	if code, _, errOut := run("export", "main", "--dir", filepath.Join(dir, "out")); code != 0 {
		t.Errorf("argon export main --dir: exit %d: %s", code, strings.TrimSpace(errOut))
	}
}

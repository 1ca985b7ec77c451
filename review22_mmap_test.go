//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/argon-db/argon/cmd"
	"github.com/argon-db/argon/internal/ui"
)

// review22Poke writes v at b[i] through a call the compiler cannot fold
// away (a store of a byte's own value is still a write to the page).
//
//go:noinline
func review22Poke(b []byte, i int, v byte) { b[i] = v }

// Review 22: argon status and argon's writes see a change an application
// writes through a shared writable mapping of the working database's file.
//
// Linux stamps a mapped file only when a clean page is first written
// through the mapping; later writes to the same page leave the size and
// both times as they were until the kernel writes the page back (tens of
// seconds later). So: the application writes a page (here the bytes it
// already held), status reads the files, finds them clean and records
// them; the application then changes documents on that page through the
// same mapping. A clean record that named the files' state (size, times)
// instead of their bytes, as tried in the seventeenth session, let status
// say "changes none" then, a write of that very document commit the
// application's change with its own, and argon restore without --yes
// discard it ("discarded: none"). The record names the bytes.
//
// The test fails when status -s does not list the application's changes,
// when the update of a changed document succeeds, or when restore
// without --yes discards a change.
func TestReview22MappedWriteIsSeen(t *testing.T) {
	if os.Getenv("ARGON_TEST_URI") != "" {
		t.Skip("a server's files are not argon's to read")
	}
	const p = "rma"
	dir, run := statusWorkspace(t, p)
	run("insert", "e", `[{"_id": 1, "s": "abcdefghijkl"}, {"_id": 2, "s": "mnopqrstuvwx"}]`)
	const clean = "## main (head 4)\n"
	if _, out := run("status", "-s"); out != clean {
		t.Fatalf("status -s printed %q", out)
	}

	path := dir + "/.argon/data/ar_" + p + "__main.sqlite"
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// Written back now: the kernel's periodic writeback is then
	// some 30 s away.
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	fi, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(fh.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer unix.Munmap(m)
	at := bytes.Index(m, []byte("abcdefghijkl"))
	if at < 0 || bytes.Count(m, []byte("abcdefghijkl")) != 1 {
		t.Fatalf("the document's string is not once in %s", path)
	}
	// The application writes the page (its own bytes again): the
	// file gets new times; status reads it, finds it clean and
	// records its state.
	review22Poke(m, at, m[at])
	time.Sleep(20 * time.Millisecond)
	if _, out := run("status", "-s"); out != clean {
		t.Fatalf("status -s after a write of the same bytes printed %q", out)
	}

	at2 := bytes.Index(m, []byte("mnopqrstuvwx"))
	if at2 < 0 || at2/4096 != at/4096 {
		t.Fatalf("the two documents are not on one page (%d, %d)", at, at2)
	}
	// The application changes both documents on that page, the
	// same size, through the same mapping.
	copy(m[at:], "ABCDEFGHIJKL")
	copy(m[at2:], "MNOPQRSTUVWX")

	const dirty = clean + "M e 1\nM e 2\n"
	if _, out := run("status", "-s"); out != dirty {
		t.Errorf("status -s after the application changed e 1 and e 2 through a mapping printed %q, want %q", out, dirty)
	}
	// A write of that document must refuse: it would commit the
	// application's change as its own.
	io, _, stdout, errOut := ui.Test()
	code := cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"update", "e", `{"_id": 1}`, `{"$set": {"n": 1}}`})
	if code == 0 {
		io2, _, show, _ := ui.Test()
		cmd.Run(context.Background(), &cmd.Factory{IO: io2, Dir: dir}, []string{"show"})
		t.Errorf("argon update of the changed document succeeded (%q), committing the application's uncommitted change:\n%s", stdout.String(), show.String())
	} else {
		t.Logf("update refused (exit %d): %s", code, errOut.String())
	}
	// argon restore without --yes, not on a terminal, must refuse to
	// discard the application's change to e 2.
	io, _, stdout, errOut = ui.Test()
	code = cmd.Run(context.Background(), &cmd.Factory{IO: io, Dir: dir}, []string{"restore"})
	if code == 0 {
		t.Errorf("argon restore without --yes succeeded (%q): it discarded the application's change to e 2 without asking", stdout.String())
	} else {
		t.Logf("restore refused (exit %d): %s", code, errOut.String())
	}
}

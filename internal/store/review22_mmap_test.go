//go:build linux

package store

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// review22Store writes v at b[i] through a call the compiler cannot fold
// away (a store of a byte's own value is still a write to the page).
//
//go:noinline
func review22Store(b []byte, i int, v byte) { b[i] = v }

// Review 22: a change written through a shared writable mapping of the
// database file (mmap, as SQLite built with SQLITE_MMAP_READWRITE, LMDB
// style tools or any program that edits a file in place through a
// mapping do) is seen by the next fingerprint.
//
// Linux stamps a mapped file only when a clean page is first written
// through the mapping (the write fault); later writes to that page,
// until the kernel writes it back (up to 30 s and more later), change the
// contents and leave the size, the contents time and the status time as
// they were. While fingerprints of large files named their state
// (device, inode, size, times; seventeenth session, taken back), the
// state recorded after the first write named different contents, and the
// clean record stayed true for files that no longer held the committed
// state. Every fingerprint reads the bytes now.
//
// The test fails when a fingerprint taken after such a write equals the
// clean record although the file's contents differ from it.
func TestReview22MappedWriteAfterARecordedState(t *testing.T) {
	f, path := bigDatabase(t)
	before := contents(t, path)
	fp0, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	// As a status whose scan found the database clean records it.
	if err := f.SetClean("w", fp0); err != nil {
		t.Fatal(err)
	}

	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// Written back now: the kernel's periodic writeback (which would
	// protect the page again and stamp the next write) is then 30 s away.
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

	// The application writes a page through its mapping, leaving the
	// contents as they were (or writes a change and takes it back): the
	// file gets new times.
	at := 4096*7 + 100
	review22Store(m, at, m[at])
	time.Sleep(20 * time.Millisecond)

	// argon status: the files are in a new state, so they are read; the
	// contents are the clean ones, and the state is recorded with them.
	fp1, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if fp1 != f.Clean("w") {
		t.Fatalf("fingerprint %s of unchanged contents, want the clean record %s", fp1, f.Clean("w"))
	}

	// The application now changes a byte of the same page through the
	// same mapping.
	review22Store(m, at+1, m[at+1]+1)

	changeSeen(t, f, path, before, "a change written through a mapping")
}

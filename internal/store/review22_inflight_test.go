//go:build linux && amd64

package store

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userfaultfd(2) ioctls and structures (linux/userfaultfd.h), which
// golang.org/x/sys does not name.
const (
	review22UffdAPI            = 0xAA
	review22UffdioAPI          = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	review22UffdioRegister     = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	review22UffdioCopy         = 0xC028AA03 // _IOWR(0xAA, 0x03, struct uffdio_copy)
	review22RegisterMissing    = 1
	review22UffdEventPagefault = 0x12
)

func review22Ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// Review 22: a write in progress while a fingerprint is taken is not
// hidden from later fingerprints. It was, while fingerprints of large
// files named their state (seventeenth session, taken back):
//
// The kernel stamps a file when a write(2) starts (file_modified, before
// any byte is copied), not when its bytes land. A fingerprint taken
// while a write is under way sees the new times, waits until the clock
// has passed them (settled), reads the contents (the part the write has
// not reached yet still old), finds the state unchanged after the read
// and records it with those contents. The rest of the write then lands
// with no new time: the recorded state now names contents it does not
// describe, and no later fingerprint reads them. Every fingerprint reads
// the files now.
//
// A single large write(2) of the file (dd with a large block size, a
// program that writes a buffer whole, a restore), whose source pages come
// in slowly (from a mapping of a file on slow storage, from swap, or a
// writer preempted in the kernel on a busy machine), is such a write;
// here userfaultfd(2) holds the writer at its second page, so that it is
// deterministic. It needs the privilege userfaultfd asks for kernel
// faults (CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1); the test is
// skipped without it.
//
// The test fails when, after the write completed, the fingerprint is
// still the clean record while the file's contents differ.
func TestReview22WriteInProgressIsNotHidden(t *testing.T) {
	f, path := bigDatabase(t)
	before := contents(t, path)
	fp0, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetClean("w", fp0); err != nil {
		t.Fatal(err)
	}

	ufd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	if e != 0 {
		t.Skipf("userfaultfd: %v", e)
	}
	defer unix.Close(int(ufd))
	api := [3]uint64{review22UffdAPI, 0, 0}
	if err := review22Ioctl(int(ufd), review22UffdioAPI, unsafe.Pointer(&api)); err != nil {
		t.Skipf("UFFDIO_API: %v", err)
	}

	const page = 4096
	at := int64(page * 9)
	// The source buffer of the write: its first page holds the file's own
	// bytes at at, its second page, the changed bytes, is not there yet
	// (the writer waits for it).
	buf, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.ReadAt(buf[:page], at); err != nil {
		t.Fatal(err)
	}
	second := make([]byte, page)
	if _, err := fh.ReadAt(second, at+page); err != nil {
		t.Fatal(err)
	}
	for i := range second {
		second[i] ^= 0x5a
	}
	reg := struct {
		start, len, mode, ioctls uint64
	}{uint64(uintptr(unsafe.Pointer(&buf[page]))), page, review22RegisterMissing, 0}
	if err := review22Ioctl(int(ufd), review22UffdioRegister, unsafe.Pointer(&reg)); err != nil {
		t.Skipf("UFFDIO_REGISTER: %v", err)
	}

	// The application's write of two pages in place, the same size.
	done := make(chan error, 1)
	go func() {
		n, err := unix.Pwrite(int(fh.Fd()), buf, at)
		if err == nil && n != len(buf) {
			err = errors.New("short write")
		}
		done <- err
	}()
	// The writer is now held at the second page, the file already stamped.
	msg := make([]byte, 32)
	if _, err := unix.Read(int(ufd), msg); err != nil {
		t.Fatal(err)
	}
	if msg[0] != review22UffdEventPagefault {
		t.Fatalf("userfaultfd event %#x", msg[0])
	}
	time.Sleep(5 * time.Millisecond)

	// argon status meanwhile: new times, so the files are read; what they
	// hold is still the clean contents.
	fp1, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if fp1 != fp0 {
		t.Logf("the fingerprint during the write already differs (%s): the defect needs the old contents read", fp1)
	}

	// The write goes on and completes.
	cp := struct {
		dst, src, len, mode uint64
		copied              int64
	}{binary.LittleEndian.Uint64(msg[16:24]) &^ (page - 1), uint64(uintptr(unsafe.Pointer(&second[0]))), page, 0, 0}
	if err := review22Ioctl(int(ufd), review22UffdioCopy, unsafe.Pointer(&cp)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write did not complete")
	}

	changeSeen(t, f, path, before, "a write that was under way during a fingerprint")
}

// Review 22: the same as TestReview22WriteInProgressIsNotHidden without
// any privilege, as it happens: an application writes a copy of the
// database file over it in place with one write(2) from a mapping of the
// copy whose pages are not in memory (they come from the disk as the
// kernel copies them: about a second for 64 MiB here), the one changed
// document near the end; a fingerprint (argon status) is taken while it
// runs. The file was stamped as the write began; the fingerprint reads
// the end before the write reaches it, so it names the old contents, and
// the state it records hides the change once the write is done.
//
// It depends on timing (the write must still be under way when the
// fingerprint is taken, and slower than the read): when the disk is fast
// enough for the write to end first, it finds nothing and passes.
//
// The test fails when, after the write completed, the fingerprint is
// still the clean record while the files' contents differ.
func TestReview22SlowWriteIsNotHidden(t *testing.T) {
	f, path := bigDatabase(t)
	before := contents(t, path)
	fp0, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetClean("w", fp0); err != nil {
		t.Fatal(err)
	}
	// The application's copy, one byte changed on the last page.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-100]++
	copyPath := filepath.Join(t.TempDir(), "copy.sqlite")
	if err := os.WriteFile(copyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_ = unix.Fdatasync(int(src.Fd()))
	_ = unix.Fadvise(int(src.Fd()), 0, 0, unix.FADV_DONTNEED)
	m, err := unix.Mmap(int(src.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer unix.Munmap(m)
	_ = unix.Madvise(m, unix.MADV_RANDOM)
	dst, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		if n, err := unix.Pwrite(int(dst.Fd()), m, 0); err != nil || n != len(m) {
			t.Errorf("write: %d, %v", n, err)
		}
		done <- time.Since(start)
	}()
	time.Sleep(20 * time.Millisecond)
	// argon status while the write runs.
	during, err := f.Fingerprint("w")
	if err != nil {
		t.Fatal(err)
	}
	took := <-done
	t.Logf("the write took %v; the fingerprint during it was the clean one: %v", took, during == fp0)

	changeSeen(t, f, path, before, "a write that was under way during a fingerprint")
}

//go:build !windows

package store

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileState describes the file at path without reading it: its device,
// inode, size and the times its contents and its status last changed
// ("-" for a missing file). A write through any process changes the
// contents' time and the status time; the status time cannot be set back
// by anyone (a backup restored with its old times still gets a new one).
// latest is the later of the two times; ok is false when the file cannot
// be described.
func fileState(path string) (state string, size, latest int64, ok bool) {
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); {
	case err == unix.ENOENT:
		return "-", 0, 0, true
	case err != nil:
		return "", 0, 0, false
	}
	m, c := st.Mtim.Nano(), st.Ctim.Nano()
	return fmt.Sprintf("%d:%d:%d:%d:%d", st.Dev, st.Ino, st.Size, m, c), st.Size, max(m, c), true
}

// fsNow returns the time the file system in dir gives a file changed now
// (the clock, and the granularity, its writes are stamped with), from a
// file created for the purpose.
func fsNow(dir string) (int64, bool) {
	f, err := os.CreateTemp(dir, ".clock-*")
	if err != nil {
		return 0, false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, false
	}
	return max(st.Mtim.Nano(), st.Ctim.Nano()), true
}

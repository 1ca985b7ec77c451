//go:build !windows

package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// othersLock reports whether a process other than this one holds a lock
// on the file at path: SQLite's connections in WAL mode each hold one on
// the database's shared-memory file (-shm), so a lock there means another
// engine has the database open. A missing file: nobody has. (F_GETLK
// does not report this process's own locks.)
func othersLock(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return true, err
	}
	return lk.Type != syscall.F_UNLCK, nil
}

//go:build !windows

package store

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A lock another process holds on a file is seen; this process's own is
// not (so the engine argon runs itself never stops the clean record).
func TestOthersLock(t *testing.T) {
	if path := os.Getenv("ARGON_TEST_HOLD_LOCK"); path != "" {
		// The other process: take a shared lock as SQLite does on -shm,
		// say so, and hold it until stdin closes.
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			os.Exit(1)
		}
		lk := syscall.Flock_t{Type: syscall.F_RDLCK, Whence: io.SeekStart, Start: 128, Len: 1}
		if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "db.sqlite-shm")
	if held, err := othersLock(path); err != nil || held {
		t.Fatalf("missing file: held %v, %v", held, err)
	}
	if err := os.WriteFile(path, make([]byte, 256), 0o600); err != nil {
		t.Fatal(err)
	}
	own, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: 120, Len: 1}
	if err := syscall.FcntlFlock(own.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if held, err := othersLock(path); err != nil || held {
		t.Fatalf("only this process's lock: held %v, %v", held, err)
	}
	child := exec.Command(os.Args[0], "-test.run", "^TestOthersLock$")
	child.Env = append(os.Environ(), "ARGON_TEST_HOLD_LOCK="+path)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = child.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("the other process: %q, %v", line, err)
	}
	if held, err := othersLock(path); err != nil || !held {
		t.Fatalf("another process's lock: held %v, %v", held, err)
	}
}

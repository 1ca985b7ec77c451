//go:build windows

package store

import "os"

// alive reports whether a process with this PID exists: on Windows,
// FindProcess opens the process and fails when there is none. Like the
// Unix version, it only decides whether a recorded `argon serve` is worth
// connecting to.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

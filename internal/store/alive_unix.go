//go:build !windows

package store

import (
	"errors"
	"syscall"
)

// alive reports whether a process with this PID exists. It only decides
// whether a recorded `argon serve` is worth connecting to; no safety
// decision rests on it (a wrong answer costs one failed connection).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

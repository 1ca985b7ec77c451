//go:build !windows

package store

import (
	"os/exec"
	"syscall"
)

// detach runs cmd in a session of its own: it outlives the command that
// starts it and does not get its terminal's signals.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

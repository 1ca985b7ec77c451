//go:build windows

package store

import (
	"os/exec"
	"syscall"
)

// detach runs cmd without a console and in a process group of its own: it
// outlives the command that starts it.
func detach(cmd *exec.Cmd) {
	const detachedProcess = 0x00000008
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP | detachedProcess}
}

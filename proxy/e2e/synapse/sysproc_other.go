//go:build unix && !linux

package synapse

import "syscall"

// sysProcAttr puts Synapse in its own process group so Stop can signal the group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

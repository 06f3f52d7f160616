package synapse

import "syscall"

// sysProcAttr puts Synapse in its own process group (Stop signals the group) and has the kernel kill it when
// the test binary dies, so no homeserver outlives a crashed or killed test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

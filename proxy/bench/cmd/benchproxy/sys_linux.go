package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a child process end when the bench process ends, even by SIGKILL, so an interrupted
// run leaves no proxies or upstreams behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

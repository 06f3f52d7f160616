package pgtest

import (
	"os/exec"
	"syscall"
)

// asUser makes cmd run as uid/gid (when uid >= 0) and die with the test binary.
func asUser(cmd *exec.Cmd, uid, gid int) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return nil
}

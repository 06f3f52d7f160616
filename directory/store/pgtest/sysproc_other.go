//go:build !linux

package pgtest

import (
	"errors"
	"os/exec"
)

// asUser runs cmd as is; switching users is implemented on Linux only.
func asUser(cmd *exec.Cmd, uid, gid int) error {
	if uid >= 0 {
		return errors.New("running as root: start PostgreSQL yourself and set TIMSTACK_TEST_PG_DSN")
	}
	return nil
}

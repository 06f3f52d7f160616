//go:build unix

package h1

import (
	"errors"
	"syscall"
)

// open reports whether an idle connection is still open: a non-blocking peek finds nothing to read. A
// homeserver that closed it has sent FIN (the peek reads 0 bytes) or RST (an error); one that sent bytes
// nobody asked for cannot be trusted with the next request either.
func open(c *conn) bool {
	if c.raw == nil {
		sc, ok := c.nc.(syscall.Conn)
		if !ok {
			return true
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		c.raw = raw
	}
	alive := false
	var buf [1]byte
	err := c.raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(rerr, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return err == nil && alive
}

//go:build unix

package transport

import (
	"errors"
	"net"
	"syscall"
)

// peerHasClosed reports whether the remote end of c has closed it (or
// reset it), without consuming anything: a peek that finds the end of the
// stream. A connection with data waiting, or nothing yet, is open. It runs
// beside c's reader goroutine, through Control, which does not take the
// read lock that reader holds. Any goroutine.
func peerHasClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == nil:
			closed = n == 0
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		default:
			closed = true // reset, or otherwise broken
		}
	})
	return closed || err != nil // err: the descriptor is closed already
}

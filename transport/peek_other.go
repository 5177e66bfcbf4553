//go:build !unix

package transport

import "net"

// peerHasClosed cannot peek on this platform: a connection counts as open
// until its reader sees the close.
func peerHasClosed(net.Conn) bool { return false }

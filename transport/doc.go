// Package transport is moebius-js's server-side ZeroMQ ROUTER.
//
// It owns the listening sockets, the ZMTP 3.x framing, peer identities and
// one bounded outbound queue per peer. It knows nothing of JavaScript, JSON
// or the scheduler: it hands whole messages ([][]byte) to a Handler and
// takes replies through Server.Send.
//
// # How a connection lives
//
// Each endpoint has one accept goroutine. Every accepted connection gets its
// own reader goroutine, so a slow or silent handshake delays nobody:
//
//	accept → handshake (deadline HandshakeTimeout) → register identity
//	       → start writer → Connected → Message* → Disconnected
//
// The handshake (greeting and NULL security) is run by zmq4.Open over a
// guard that refuses oversized frame headers before zmq4 can allocate them;
// the NULL mechanism and its metadata parser are ours (see handshake.go),
// because zmq4's are unexported or panic on truncated input. After the
// handshake this package owns the frame loop (frame.go): a small bufio
// reader that enforces MaxMessageSize and MaxFrames before allocating
// anything (a message over either closes the connection, counted in
// Stats.Oversize), and a writer goroutine per peer that drains the whole
// queue with one vectored write (writev on TCP and unix sockets).
//
// # Send queues
//
// Send never blocks: it appends to the peer's queue, which its writer
// empties. The messages waiting there (not yet taken by the writer) are
// bounded twice: SendQueue messages and SendQueueBytes bytes of frame
// bodies. The Send that would break either bound drops the peer
// (ErrPeerDropped, Stats.SlowDropped), so a client that stops reading costs
// at most about SendQueueBytes plus what its writer and socket hold, until
// WriteTimeout ends it. A message bigger than SendQueueBytes is still
// accepted into an empty queue, so that any reply can be sent. The Dealer's
// queue has the same two bounds; there Send fails with ErrQueueFull.
//
// # How a connection ends
//
// Every way a connection can end (EOF, read or write error, oversize
// message, protocol error, send queue overflow, Disconnect, Close,
// handover) goes through the same idempotent shutdown; the reader
// goroutine then stops the writer, removes the registry entry if it still
// points at this connection, and delivers Disconnected exactly once if
// Connected was delivered. That shutdown discards whatever is still
// queued, with one exception: Disconnect runs it only once the writer has
// written what was queued (meanwhile Send to the peer is refused and its
// messages are not delivered), so a handler may send a last reply and
// disconnect at once; WriteTimeout bounds that wait for a peer that does
// not read. Close does not wait; Server.Shutdown drains every queue before
// closing.
//
// # Identities
//
// A peer's routing identity is the "Identity" property of its READY command
// (1..255 bytes). A peer that sends none gets a libzmq-style generated one:
// five bytes, 0x00 followed by a big-endian uint32 counter that starts at a
// random value. A second connection claiming an identity already in use is
// refused (closed) unless Config.Handover is set, in which case the old
// connection is closed and the newcomer takes the identity; the old peer's
// Disconnected is delivered before the newcomer's Connected.
//
// # Envelopes (REQ clients)
//
// A message that is exactly one empty frame is a ZMQ_PROBE_ROUTER hello; it
// is dropped and changes nothing. A message whose first frame is empty and
// that has more frames comes from a REQ socket (or a DEALER emulating one):
// the empty delimiter is stripped before delivery and the peer is marked
// enveloped, so every later Send to it is prefixed with an empty frame. A
// message whose first frame is not empty marks the peer unenveloped again.
// The flag is read when Send is called.
//
// # Commands
//
// ZMTP command frames never reach the Handler. PING is answered with PONG
// carrying the ping's context (through the peer's writer, so writes to one
// connection stay serialised); other commands are ignored.
//
// # Goroutines
//
// The Server starts: one accept goroutine per endpoint, one reader goroutine
// per connection, and (owned by that reader) one writer goroutine per
// registered peer. Close stops and waits for all of them. Handler callbacks
// run on the peer's reader goroutine; they may call Send and Disconnect, but
// not Close or Shutdown (which wait for that very goroutine).
package transport

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
// The handshake (handshake.go) is ours, written from RFC 23: a ZMTP 3.1
// greeting and the NULL mechanism, read segment by segment, so that a peer
// speaking ZMTP 1.0 or 2.0 is refused as soon as its first bytes show it
// (Stats.VersionRefused), one asking for another mechanism at its greeting
// (Stats.MechanismRefused), each with an INFO line saying what it asked
// for; a command is size-checked before it is allocated, and an identity
// starting with a zero byte is refused, as libzmq reserves those for the
// identities it generates. A READY after the handshake is a protocol
// error. After the
// handshake this package owns the frame loop (frame.go): a small bufio
// reader that enforces MaxMessageSize and MaxFrames before allocating
// anything (a message over either closes the connection, counted in
// Stats.Oversize), and a writer goroutine per peer that drains the whole
// queue with one vectored write (writev on TCP and unix sockets).
//
// # Flow control
//
// Reading: before it reads a message frame's body, the reader reserves the
// frame's room (header and body) on the connection's flow.Account; the
// reservation blocks while the account holds Config.QueueLimit messages or
// the shared flow.Budget is spent, so the peer is simply not read and TCP
// holds it back. The Handler gets the message with its flow.Hold and
// releases it when the request stops waiting.
//
// Sending: one sendQueue type (queue.go) serves both peers and the Dealer.
// Send never blocks: it appends to the queue, which a writer empties with
// vectored writes of up to 256 KiB. A message costs its frame bodies plus a
// fixed overhead per message and per frame. Above the high-water mark
// (SendHWM messages or SendHWMBytes) the queue is backlogged until it
// drains to half of both; SendConn reports it and WhenWritable calls back
// when it clears, so that a producer can wait. A push past SendQueueBytes
// (unless the queue is empty: any single message may go) drops the peer
// (ErrPeerDropped, Stats.SlowDropped); on the Dealer it fails with
// ErrQueueFull. A writer that makes no progress for WriteTimeout drops its
// peer. Broadcast shares one frame among the queues, skips backlogged peers
// (Stats.BroadcastSkipped, as libzmq's PUB does) and counts the frame once
// against MaxSendBytes, the bound on all send queues together: past it, a
// push to a peer holding more than its share drops that peer, and peers
// whose writes have stalled are shed, largest first (Stats.Shed).
//
// Admission and liveness: connections past MaxConnections, past
// MaxConnectionsPerAddress from one address, or past MaxHandshakes (half of
// it per address) are closed at accept. A sweeper (liveness.go) closes a
// connection stalled mid-message for ReadTimeout (one paused by flow
// control is not stalled), PINGs a peer silent for HeartbeatInterval and
// closes it when nothing arrives within HeartbeatTimeout.
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
// (1..255 bytes, not starting with a zero byte). A peer that sends none
// gets a libzmq-style generated one: five bytes, 0x00 followed by a big-endian uint32 counter that starts at a
// random value. A second connection claiming an identity already in use is
// refused (closed) unless the connection holding it has already been closed
// by its peer (a peek finds the end of the stream: a client that closed and
// reconnected at once) or Config.Handover is set; in either case the old
// connection is closed and the newcomer takes the identity; the old peer's
// Disconnected is delivered before the newcomer's Connected.
//
// # Envelopes (REQ clients)
//
// A message's Envelope is its frames up to and including the first empty
// one (see envelope.go for the exact rule); Handler.Message gets it apart
// from the payload. A message that is exactly one empty frame is a
// ZMQ_PROBE_ROUTER hello; it is dropped. ReplyConn writes a given envelope
// in front of a message, as a REP socket does for the request it answers;
// SendConn and Broadcast write the envelope of the connection's latest
// message (none if it had none).
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

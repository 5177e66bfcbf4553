package transport

import (
	"encoding/binary"
	"fmt"

	"github.com/moebius-js/moebius-js/internal/ident"
)

// register gives p its identity and enters it in the registry. A peer
// without an Identity gets a generated one. If the identity is taken, the
// newcomer is refused (errDuplicate) or, with Handover, takes it: the
// previous owner is returned for the caller to close and await. Reader
// goroutine of p only.
func (s *Server) register(p *peer, h hello) (old *peer, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	id := h.identity
	if id == "" {
		id = s.generateID()
	}
	old = s.peers[id]
	if old != nil && !s.cfg.Handover {
		return nil, fmt.Errorf("%w: %s", errDuplicate, logID(id))
	}
	// p.id and p.log are set before p becomes reachable through the
	// registry (under s.mu), so other goroutines see them.
	p.id = id
	p.log = p.log.With("peer", logID(id))
	s.peers[id] = p
	return old, nil
}

// generateID returns an unused libzmq-style identity: 0x00 followed by a
// big-endian uint32 counter. Caller holds s.mu.
func (s *Server) generateID() string {
	var b [5]byte
	for {
		s.nextAnon++
		binary.BigEndian.PutUint32(b[1:], s.nextAnon)
		if _, taken := s.peers[string(b[:])]; !taken {
			return string(b[:])
		}
	}
}

// lookup returns the registered peer with identity id, or nil.
func (s *Server) lookup(id string) *peer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.peers[id]
}

// Send queues a message of frames for the peer with identity id and
// returns without waiting for the network. If the peer's last message came
// with an empty delimiter (REQ), an empty frame is written first. Send
// takes ownership of frames: callers must not modify them afterwards, and
// the same frame may be passed to many Sends (broadcast); transport never
// modifies a frame.
//
// Errors: ErrNoFrames; ErrUnknownPeer when no connected peer has that id
// (or it is disconnecting, Disconnect included); ErrPeerDropped when the
// peer already had SendQueue messages waiting, or when this message would
// take its waiting bytes over SendQueueBytes: it is then disconnected
// (errors.Is(err, ErrUnknownPeer) holds for both). Any goroutine,
// including Handler callbacks.
func (s *Server) Send(id string, frames ...[]byte) error {
	return s.send(id, 0, frames)
}

// SendConn is Send to one connection (Peer.Conn): it fails with
// ErrUnknownPeer when the identity now belongs to another connection, so a reply meant for a client
// that reconnected cannot reach its successor. Any goroutine.
func (s *Server) SendConn(id string, conn uint64, frames ...[]byte) error {
	return s.send(id, conn, frames)
}

// send queues frames for id's peer, which must be connection conn unless
// conn is 0.
func (s *Server) send(id string, conn uint64, frames [][]byte) error {
	if len(frames) == 0 {
		return fmt.Errorf("transport: send to %s: %w", logID(id), ErrNoFrames)
	}
	p := s.lookup(id)
	if p == nil || conn != 0 && p.serial != conn {
		return fmt.Errorf("transport: send to %s: %w", logID(id), ErrUnknownPeer)
	}
	if err := s.push(p, outMsg{frames: frames, envelope: p.enveloped.Load()}); err != nil {
		return fmt.Errorf("transport: send to %s: %w", logID(id), err)
	}
	return nil
}

// push queues m for p. On overflow it drops p (once: counted and logged).
// Any goroutine.
func (s *Server) push(p *peer, m outMsg) error {
	switch err := p.enqueue(m, s.cfg.Limits); err {
	case nil:
		return nil
	case errQueueFull:
		if p.shutdownCounting(ErrPeerDropped, &s.stats.slowDropped) {
			p.log.Warn("dropping slow peer: send queue full",
				"queue", s.cfg.SendQueue, "queue_bytes", s.cfg.SendQueueBytes, "msg_bytes", m.size())
		}
		return ErrPeerDropped
	default: // errQueueClosed: the peer is on its way out
		return ErrUnknownPeer
	}
}

// Disconnect closes the connection of the peer with identity id after
// writing what was sent to it, and reports whether there was one. From the
// call on, Send to that connection fails with ErrUnknownPeer and its
// messages are no longer delivered; the messages already queued (and the
// batch being written) are still written, then the connection is closed.
// With nothing to write it is closed at once; a peer that does not read is
// closed by WriteTimeout as usual (and what was left unwritten is lost).
// Its Disconnected follows on the peer's reader goroutine, with a reason
// wrapping ErrDisconnected. While it flushes, the identity stays taken: a
// newcomer claiming it is refused, or, with Handover, ends the flush.
// Any goroutine, including Handler callbacks: a callback may Send a last
// message and then Disconnect.
func (s *Server) Disconnect(id string) bool {
	return s.DisconnectConn(id, 0)
}

// DisconnectConn is Disconnect of one connection (Peer.Conn; 0 matches
// any): it does nothing when the identity now belongs to another
// connection. Any goroutine.
func (s *Server) DisconnectConn(id string, conn uint64) bool {
	p := s.lookup(id)
	if p == nil || conn != 0 && p.serial != conn {
		return false
	}
	p.closeAfterFlush(ErrDisconnected)
	return true
}

// logID renders an identity for logs and errors, as JavaScript's client.id
// shows it.
func logID(id string) string { return ident.Text(id) }

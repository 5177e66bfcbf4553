package transport

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/internal/ident"
)

// register gives p its identity and enters it in the registry. A peer
// without an Identity gets a generated one. If the identity is taken, the
// newcomer is refused (errDuplicate) or, with Handover, takes it: the
// previous owner is returned for the caller to close and await, with why.
// A previous owner whose peer has already closed its end never keeps the
// identity from a newcomer: it is handed over too (its reader had not yet
// seen the close). Reader goroutine of p only.
func (s *Server) register(p *peer, h hello) (old *peer, why string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, "", ErrServerClosed
	}
	id := h.identity
	if id == "" {
		id = s.generateID()
	}
	old = s.peers[id]
	switch {
	case old == nil:
	case !sameKey(old.clientKey.Load(), p.clientKey.Load()):
		// On CURVE, a live identity is not taken over by another key's
		// client, whatever Handover says.
		if !peerHasClosed(old.conn) {
			return nil, "", fmt.Errorf("%w: %s, held by a client with another CURVE key", errDuplicate, logID(id))
		}
		why = "its peer has closed"
	case s.cfg.Handover:
		why = "identity_handover is on"
	case peerHasClosed(old.conn):
		why = "its peer has closed"
	default:
		return nil, "", fmt.Errorf("%w: %s", errDuplicate, logID(id))
	}
	// p.id and p.log are set before p becomes reachable through the
	// registry (under s.mu), so other goroutines see them.
	p.id = id
	p.log = p.log.With("peer", logID(id))
	s.peers[id] = p
	return old, why, nil
}

// sameKey reports whether two connections proved the same CURVE key (or
// neither proved one).
func sameKey(a, b *curve.Key) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
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

// Send queues a message of frames, with no envelope, for the peer with
// identity id and returns without waiting for the network. Send takes
// ownership of frames: callers must not modify them afterwards, and the
// same frame may be passed to many Sends; transport never modifies a
// frame.
//
// Errors: ErrNoFrames; ErrUnknownPeer when no connected peer has that id
// (or it is disconnecting, Disconnect included); ErrPeerDropped when the
// message would take the peer's queue past SendQueueBytes: it is then
// disconnected (errors.Is(err, ErrUnknownPeer) holds for both). Any
// goroutine, including Handler callbacks.
func (s *Server) Send(id string, frames ...[]byte) error {
	_, err := s.send(id, 0, nil, false, frames)
	return err
}

// SendConn is Send to one connection (Peer.Serial; 0 matches any), carrying
// the envelope of the latest message that connection sent (none if that
// had none): what a message that answers no particular request carries.
// It fails with ErrUnknownPeer when the identity now belongs to another
// connection, so a reply meant for a client that reconnected cannot reach
// its successor. backlogged reports that the message was queued and the
// peer's queue is now above its high-water mark: a producer that can wait
// should, until WhenWritable says so. Any goroutine.
func (s *Server) SendConn(id string, conn uint64, frames ...[]byte) (backlogged bool, err error) {
	return s.send(id, conn, nil, true, frames)
}

// ReplyConn is SendConn carrying env instead, the envelope of the request
// it answers as Handler.Message delivered it (nil: none). Any goroutine.
func (s *Server) ReplyConn(id string, conn uint64, env Envelope, frames ...[]byte) (backlogged bool, err error) {
	return s.send(id, conn, env, false, frames)
}

// send queues env (or, when latest is set, that of the peer's latest
// message) and frames for id's peer, which must be connection conn unless
// conn is 0.
func (s *Server) send(id string, conn uint64, env Envelope, latest bool, frames [][]byte) (bool, error) {
	if len(frames) == 0 {
		return false, fmt.Errorf("transport: send to %s: %w", logID(id), ErrNoFrames)
	}
	p := s.lookupConn(id, conn)
	if p == nil {
		return false, fmt.Errorf("transport: send to %s: %w", logID(id), ErrUnknownPeer)
	}
	if latest {
		env = p.latestEnvelope()
	}
	backlogged, err := s.push(p, outMsg{frames: frames, envelope: env})
	if err != nil {
		return false, fmt.Errorf("transport: send to %s: %w", logID(id), err)
	}
	return backlogged, nil
}

// lookupConn returns the registered peer with identity id if it is
// connection conn (any, when conn is 0), or nil.
func (s *Server) lookupConn(id string, conn uint64) *peer {
	p := s.lookup(id)
	if p == nil || conn != 0 && p.serial != conn {
		return nil
	}
	return p
}

// push queues m for p. Past the peer's byte bound it drops p (once:
// counted and logged); past the server-wide bound it sheds (see
// overServerBound). Any goroutine.
func (s *Server) push(p *peer, m outMsg) (backlogged bool, err error) {
	backlogged, _, err = s.pushQueued(p, m)
	return backlogged, err
}

// pushQueued is push, reporting too whether m went into p's queue: it may
// have, and p be dropped after it for the server-wide bound, in which case
// closing p's queue gave m up. Any goroutine.
func (s *Server) pushQueued(p *peer, m outMsg) (backlogged, queued bool, err error) {
	switch p.q.push(m) {
	case queueFull:
		if p.shutdownCounting(ErrPeerDropped, &s.stats.slowDropped) {
			s.lim.Log(p.log, slog.LevelWarn, "slow_peer", p.addrKey, "dropping slow peer: its send queue would pass send_queue_bytes",
				"queue_bytes", s.cfg.SendQueueBytes, "msg_bytes", m.cost())
		}
		return false, false, ErrPeerDropped
	case queueGone:
		return false, false, ErrUnknownPeer
	case queuedFull:
		backlogged = true
	}
	if s.sendBytes.Load() > s.cfg.MaxSendBytes {
		if s.overServerBound(p) {
			return false, true, ErrPeerDropped
		}
	}
	return backlogged, true, nil
}

// overServerBound runs when all send queues together hold more than
// MaxSendBytes, after a push to p. If p now holds more than its fair share
// (MaxSendBytes divided among the queues holding anything), it is not
// draining as fast as it is fed: p is dropped at once, and overServerBound
// reports true. That is how a burst for clients that do not read is
// stopped before it grows. Then stuck peers are shed, the largest first.
// Any goroutine.
func (s *Server) overServerBound(p *peer) (dropped bool) {
	share := s.cfg.MaxSendBytes / max(s.sendHolders.Load(), 1)
	if held := p.q.heldBytes(); held > share {
		if p.shutdownCounting(errShed, &s.stats.shed) {
			s.lim.Log(p.log, slog.LevelWarn, "shed_peer", p.addrKey,
				"dropping a peer that does not keep up: all send queues together passed max_send_bytes and it holds more than its share",
				"held_bytes", held, "share", share, "max_send_bytes", s.cfg.MaxSendBytes)
		}
		dropped = true
	}
	s.shed()
	return dropped
}

// Broadcast queues one frame for each of the connections to (each copy
// with the envelope of that connection's latest message), skipping
// those whose queue is backlogged (counted in Stats.BroadcastSkipped, as
// libzmq's PUB drops for a subscriber past its high-water mark) and those
// that are gone. The frame counts once against MaxSendBytes. It returns
// how many copies it queued. Any goroutine.
func (s *Server) Broadcast(frame []byte, to []Peer) (sent int) {
	sh := newSharedFrame(frame, &s.sendBytes)
	defer sh.release()
	frames := [][]byte{frame} // one slice for every copy: queued frames are never mutated
	for _, target := range to {
		p := s.lookupConn(target.ID, target.Serial)
		if p == nil {
			continue
		}
		if p.q.isBacklogged() {
			s.stats.broadcastSkipped.Add(1)
			continue
		}
		sh.refs.Add(1)
		_, queued, err := s.pushQueued(p, outMsg{frames: frames, envelope: p.latestEnvelope(), shared: sh})
		if !queued {
			sh.release() // its copy went nowhere
		}
		if err != nil {
			continue
		}
		sent++
	}
	return sent
}

// WhenWritable arranges for fn to be called once, on another goroutine,
// when the send queue of connection conn of id falls below its low-water
// mark, or the connection ends, and reports true; it arranges nothing and
// reports false when that queue is not backlogged or the connection is
// gone. fn must not block. Any goroutine.
func (s *Server) WhenWritable(id string, conn uint64, fn func()) bool {
	p := s.lookupConn(id, conn)
	return p != nil && p.q.whenWritable(fn)
}

// stuckAfter is how long a write call must have lasted for its peer to
// count as not draining when the server-wide send bound bites.
const stuckAfter = 200 * time.Millisecond

// shed brings the bytes held in all send queues back under MaxSendBytes by
// dropping the peers whose writer is stuck, the ones holding the most
// first. Peers that drain are left alone: what they hold leaves soon. One
// goroutine sheds at a time; the others go on. Any goroutine.
func (s *Server) shed() {
	if !s.shedding.CompareAndSwap(false, true) {
		return
	}
	defer s.shedding.Store(false)
	type holder struct {
		p    *peer
		held int64
	}
	since := time.Now().Add(-stuckAfter)
	var stuck []holder
	s.mu.RLock()
	for _, p := range s.peers {
		if p.q.stuck(since) {
			stuck = append(stuck, holder{p, p.q.heldBytes()})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(stuck, func(a, b holder) int { return cmp.Compare(b.held, a.held) })
	for _, h := range stuck {
		if s.sendBytes.Load() <= s.cfg.MaxSendBytes {
			return
		}
		if h.p.shutdownCounting(errShed, &s.stats.shed) {
			s.lim.Log(h.p.log, slog.LevelWarn, "shed_peer", h.p.addrKey,
				"dropping a peer that does not read: all send queues together passed max_send_bytes",
				"held_bytes", h.held, "max_send_bytes", s.cfg.MaxSendBytes)
		}
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

// DisconnectConn is Disconnect of one connection (Peer.Serial; 0 matches
// any): it does nothing when the identity now belongs to another
// connection. Any goroutine.
func (s *Server) DisconnectConn(id string, conn uint64) bool {
	p := s.lookupConn(id, conn)
	if p == nil {
		return false
	}
	p.closeAfterFlush(ErrDisconnected)
	return true
}

// logID renders an identity for logs and errors, as JavaScript's client.id
// shows it.
func logID(id string) string { return ident.Text(id) }

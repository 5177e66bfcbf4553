package transport

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
)

// serveConn is the reader goroutine of one connection: handshake, register
// the identity, start the writer, then read and deliver messages until the
// connection ends, and tear down. It delivers every Handler call for this
// connection. Started by startConn, tracked by s.wg.
func (s *Server) serveConn(p *peer) {
	connected, writer := false, false
	defer func() { s.teardown(p, connected, writer) }()

	h, err := handshake(p.conn, p.curveServer, &p.clientKey, s.cfg.HandshakeTimeout)
	s.handshakeEnded(p)
	if err != nil {
		counter := &s.stats.handshakeFailed
		if peerClosed(err) {
			counter = &s.stats.handshakeAbandoned // a TCP health check, say
		}
		if p.shutdownCounting(fmt.Errorf("handshake: %w", err), counter) {
			s.handshakeFailed(p, err)
		}
		return
	}
	p.session = h.session
	if k := p.clientKey.Load(); k != nil {
		p.log = p.log.With("client_key", k.String())
	}

	old, why, err := s.register(p, h)
	if err != nil {
		if !errors.Is(err, errDuplicate) {
			p.shutdown(err) // server closed
		} else if p.shutdownCounting(err, &s.stats.duplicateRefused) {
			s.lim.Log(p.log, slog.LevelInfo, "duplicate_identity", h.identity, "refused connection: identity already in use", "peer", logID(h.identity))
		}
		return
	}

	writer = true
	go p.writeLoop(s.cfg.WriteTimeout) // waited for in teardown

	if old != nil {
		p.log.Info("identity handover: closing the older connection", "old_conn", old.serial, "why", why)
		old.shutdown(ErrReplaced)
		<-old.gone // its Disconnected comes before our Connected
	}
	if p.closing.Load() {
		return // closed while waiting: never connected
	}

	p.log.Debug("peer connected", "socket_type", h.socketType)
	connected = true
	s.h.Connected(p.public())
	s.readLoop(p)
}

// readLoop reads messages until the connection fails or is shut down,
// answering commands and delivering messages. Reader goroutine only.
func (s *Server) readLoop(p *peer) {
	fr := newFrameReader(trackedReader{p}, s.cfg.MaxMessageSize, s.cfg.MaxFrames)
	fr.acct, fr.partial = p.acct, &p.partial
	if p.session != nil {
		fr.open = &p.session.Opener
	}
	fr.pause = func(paused bool) {
		p.paused.Store(paused)
		if !paused {
			p.lastRead.Store(s.now.Load()) // the wait was ours, not the peer's silence
		}
	}
	for {
		frames, command, hold, err := fr.next()
		if err != nil {
			s.readFailed(p, err)
			return
		}
		if command != nil {
			if err := s.command(p, command); err != nil {
				s.readFailed(p, err)
				return
			}
			continue
		}
		if p.closing.Load() {
			// Shut down (the next read fails) or disconnecting after a
			// flush: keep reading, so that the peer's EOF is seen and its
			// data does not pile up unread, but deliver nothing more.
			hold.Release()
			continue
		}
		env, payload := splitEnvelope(frames)
		if len(payload) == 0 {
			// A ZMQ_PROBE_ROUTER hello (one empty frame), or an envelope
			// with nothing in it: nothing to deliver.
			hold.Release()
			continue
		}
		p.setLatestEnvelope(env)
		s.stats.msgsIn.Add(1)
		s.h.Message(p.public(), env, payload, hold)
	}
}

// trackedReader reads a peer's connection, noting when bytes arrive for
// the liveness sweeper.
type trackedReader struct{ p *peer }

func (r trackedReader) Read(b []byte) (int, error) {
	n, err := r.p.conn.Read(b)
	if n > 0 {
		r.p.lastRead.Store(r.p.srv.now.Load())
	}
	return n, err
}

// command handles one command frame after the handshake: PING gets a PONG,
// anything else is ignored. Reader goroutine only.
func (s *Server) command(p *peer, body []byte) error {
	name, data, err := parseCommand(body)
	if err != nil {
		return err
	}
	if name == cmdReady {
		return fmt.Errorf("%w: a second READY after the handshake", ErrProtocol)
	}
	if name == cmdPing {
		// An error here means the peer is gone or was just dropped for
		// overflowing its queue; the read loop notices on its next read.
		_, _ = s.push(p, outMsg{frames: [][]byte{pongFor(data)}, command: true})
	}
	return nil
}

// handshakeFailed counts and logs a failed handshake: refusals that say
// what the peer asked for at INFO (rate-limited per address), a peer that
// connected and closed (a TCP health check) at DEBUG.
func (s *Server) handshakeFailed(p *peer, err error) {
	var refusal *curveRefusal
	switch {
	case errors.As(err, &refusal):
		s.curveRefused(p, refusal, true)
	case errors.Is(err, ErrVersion):
		s.stats.versionRefused.Add(1)
		s.lim.Log(p.log, slog.LevelInfo, "zmtp_version", p.addrKey, "handshake refused: the peer speaks a ZMTP older than 3.0", "err", err)
	case errors.Is(err, ErrMechanism):
		s.stats.mechanismRefused.Add(1)
		s.lim.Log(p.log, slog.LevelInfo, "zmtp_mechanism", p.addrKey, "handshake refused: the peer asked for a security mechanism this endpoint does not offer", "err", err)
	case peerClosed(err):
		p.log.Debug("handshake abandoned: the peer closed the connection", "err", err)
	default:
		s.lim.Log(p.log, slog.LevelInfo, "handshake_failed", p.addrKey, "handshake failed", "err", err, "timeout", isTimeout(err))
	}
}

// peerClosed reports whether err means that the peer closed (or reset)
// the connection.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// readFailed shuts p down for a read-side error, counting and logging it
// unless the connection was already being closed on purpose.
func (s *Server) readFailed(p *peer, err error) {
	var counter *atomic.Uint64
	var refusal *curveRefusal
	switch {
	case errors.As(err, &refusal):
		counter = &s.stats.protocolErrors
	case errors.Is(err, ErrMessageTooLarge):
		counter = &s.stats.oversize
	case errors.Is(err, ErrProtocol):
		counter = &s.stats.protocolErrors
	}
	if !p.shutdownCounting(err, counter) {
		return
	}
	switch {
	case refusal != nil:
		s.curveRefused(p, refusal, false)
	case errors.Is(err, ErrMessageTooLarge):
		s.lim.Log(p.log, slog.LevelWarn, "oversize", p.addrKey, "closing connection: message too large", "err", err)
	case errors.Is(err, ErrProtocol):
		s.lim.Log(p.log, slog.LevelWarn, "protocol_error", p.addrKey, "closing connection: protocol error", "err", err)
	case errors.Is(err, io.EOF):
		p.log.Debug("peer closed the connection")
	default:
		p.log.Debug("connection read failed", "err", err)
	}
}

// writeFailed shuts p down after its writer's error: a write that made no
// progress for WriteTimeout drops a slow peer (counted and logged); other
// errors mean the connection broke. Writer goroutine of p.
func (s *Server) writeFailed(p *peer, err error, draining bool) {
	if draining {
		err = fmt.Errorf("%w; the last messages were not written: %w", p.q.drainReason, err)
	}
	if !isTimeout(err) {
		p.shutdown(err)
		return
	}
	if p.shutdownCounting(fmt.Errorf("%w: no write progress for %v: %w", ErrPeerDropped, s.cfg.WriteTimeout, err), &s.stats.writeTimeouts) {
		s.lim.Log(p.log, slog.LevelWarn, "write_timeout", p.addrKey, "dropping slow peer: it read nothing for write_timeout",
			"write_timeout", s.cfg.WriteTimeout.String(), "held_bytes", p.q.heldBytes())
	}
}

// teardown finishes a connection on its reader goroutine: make sure it is
// shut down, wait for the writer, drop the registry entry if it is still
// ours, deliver Disconnected if Connected was delivered, and release
// anyone waiting to take over the identity.
func (s *Server) teardown(p *peer, connected, writer bool) {
	p.shutdown(errConnEnded)
	if writer {
		<-p.writerDone
	}
	s.mu.Lock()
	delete(s.conns, p)
	if s.perAddr[p.addrKey]--; s.perAddr[p.addrKey] == 0 {
		delete(s.perAddr, p.addrKey)
	}
	if p.id != "" && s.peers[p.id] == p {
		delete(s.peers, p.id)
	}
	s.mu.Unlock()
	if connected {
		reason := p.closeReason()
		p.log.Debug("peer disconnected", "reason", reason)
		s.h.Disconnected(p.public(), reason)
	}
	close(p.gone)
}

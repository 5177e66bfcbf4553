package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
)

// serveConn is the reader goroutine of one connection: handshake, register
// the identity, start the writer, then read and deliver messages until the
// connection ends, and tear down. It delivers every Handler call for this
// connection. Started by startConn, tracked by s.wg.
func (s *Server) serveConn(p *peer) {
	connected, writer := false, false
	defer func() { s.teardown(p, connected, writer) }()

	h, err := handshake(p.conn, s.cfg.HandshakeTimeout, p.log)
	if err != nil {
		if p.shutdownCounting(fmt.Errorf("handshake: %w", err), &s.stats.handshakeFailed) {
			level := slog.LevelInfo
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				level = slog.LevelDebug // connect-and-close, e.g. a TCP health check
			}
			p.log.Log(context.Background(), level, "handshake failed", "err", err, "timeout", isTimeout(err))
		}
		return
	}

	old, err := s.register(p, h)
	if err != nil {
		if !errors.Is(err, errDuplicate) {
			p.shutdown(err) // server closed
		} else if p.shutdownCounting(err, &s.stats.duplicateRefused) {
			p.log.Info("refused connection: identity already in use", "peer", logID(h.identity))
		}
		return
	}

	writer = true
	go p.writeLoop(s.cfg.WriteTimeout) // waited for in teardown

	if old != nil {
		p.log.Info("identity handover: closing the older connection", "old_conn", old.serial)
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
	fr := newFrameReader(p.conn, s.cfg.MaxMessageSize, s.cfg.MaxFrames)
	for {
		frames, command, err := fr.next()
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
			continue
		}
		if len(frames[0]) == 0 {
			if len(frames) == 1 {
				continue // ZMQ_PROBE_ROUTER hello: nothing to deliver
			}
			p.enveloped.Store(true)
			frames = frames[1:]
		} else {
			p.enveloped.Store(false)
		}
		s.stats.msgsIn.Add(1)
		s.h.Message(p.public(), frames)
	}
}

// command handles one command frame after the handshake: PING gets a PONG,
// anything else is ignored. Reader goroutine only.
func (s *Server) command(p *peer, body []byte) error {
	name, data, err := parseCommand(body)
	if err != nil {
		return err
	}
	if name == cmdPing {
		// An error here means the peer is gone or was just dropped for
		// overflowing its queue; the read loop notices on its next read.
		_ = s.push(p, outMsg{frames: [][]byte{pongFor(data)}, command: true})
	}
	return nil
}

// readFailed shuts p down for a read-side error, counting and logging it
// unless the connection was already being closed on purpose.
func (s *Server) readFailed(p *peer, err error) {
	var counter *atomic.Uint64
	switch {
	case errors.Is(err, ErrMessageTooLarge):
		counter = &s.stats.oversize
	case errors.Is(err, ErrProtocol):
		counter = &s.stats.protocolErrors
	}
	if !p.shutdownCounting(err, counter) {
		return
	}
	switch {
	case errors.Is(err, ErrMessageTooLarge):
		p.log.Warn("closing connection: message too large", "err", err)
	case errors.Is(err, ErrProtocol):
		p.log.Warn("closing connection: protocol error", "err", err)
	case errors.Is(err, io.EOF):
		p.log.Debug("peer closed the connection")
	default:
		p.log.Debug("connection read failed", "err", err)
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

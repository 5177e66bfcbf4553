package transport

import (
	"log/slog"
	"time"
)

// sweep is the server's liveness goroutine: every tick it advances the
// coarse clock that readers stamp arrivals with, closes peers stalled in
// the middle of a message for ReadTimeout, and runs server-side
// heartbeats: a PING to a peer silent for HeartbeatInterval, and the
// connection closed when nothing arrives within HeartbeatTimeout after it.
// A peer the server itself is not reading (flow control) is left alone.
// Started by Listen, stopped by Close (s.quit), tracked by s.wg.
func (s *Server) sweep() {
	tick := time.NewTicker(s.sweepInterval())
	defer tick.Stop()
	var ping []*peer
	for {
		select {
		case <-s.quit:
			return
		case now := <-tick.C:
			s.now.Store(now.UnixNano())
			ping = s.checkPeers(now.UnixNano(), ping[:0])
			for i, p := range ping {
				ping[i] = nil
				s.stats.heartbeats.Add(1)
				_, _ = s.push(p, outMsg{frames: [][]byte{pingBody}, command: true})
			}
		}
	}
}

// sweepInterval is a quarter of the shortest liveness setting, within
// 10ms..1s: timeouts are noticed within a quarter of their length.
func (s *Server) sweepInterval() time.Duration {
	d := min(s.cfg.ReadTimeout, s.cfg.HeartbeatTimeout)
	if s.cfg.HeartbeatInterval > 0 {
		d = min(d, s.cfg.HeartbeatInterval)
	}
	return min(max(d/4, 10*time.Millisecond), time.Second)
}

// checkPeers applies the liveness rules to every registered peer at now
// (unix nanoseconds) and appends to ping those due a heartbeat PING (sent
// by the caller, outside the registry's lock). Sweeper goroutine.
func (s *Server) checkPeers(now int64, ping []*peer) []*peer {
	readTimeout := int64(s.cfg.ReadTimeout)
	interval, timeout := int64(s.cfg.HeartbeatInterval), int64(s.cfg.HeartbeatTimeout)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.peers {
		if p.paused.Load() || p.closing.Load() {
			p.pingSent = 0
			continue
		}
		last := p.lastRead.Load()
		if p.partial.Load() && now-last > readTimeout {
			if p.shutdownCounting(errReadTimeout, &s.stats.readTimeouts) {
				s.lim.Log(p.log, slog.LevelWarn, "read_timeout", p.addrKey, "closing connection: it stalled in the middle of a message",
					"read_timeout", s.cfg.ReadTimeout.String())
			}
			continue
		}
		if interval <= 0 {
			continue
		}
		switch {
		case p.pingSent != 0 && last >= p.pingSent:
			p.pingSent = 0 // something arrived: the peer is alive
		case p.pingSent != 0 && now-p.pingSent > timeout:
			if p.shutdownCounting(errHeartbeat, &s.stats.heartbeatTimeouts) {
				s.lim.Log(p.log, slog.LevelInfo, "heartbeat_timeout", p.addrKey, "closing connection: nothing arrived after a heartbeat PING",
					"heartbeat_timeout", s.cfg.HeartbeatTimeout.String())
			}
			continue
		}
		if p.pingSent == 0 && now-last > interval {
			p.pingSent = now
			ping = append(ping, p)
		}
	}
	return ping
}

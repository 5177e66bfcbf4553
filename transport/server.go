package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/lograte"
)

// Handler receives a server's events. Calls for one Peer come from one
// goroutine (that connection's reader) in order: Connected, then Message*,
// then Disconnected. For one identity, the Disconnected of a connection is
// delivered before the Connected of a later connection with that identity
// (handover), and no Message of a connection is delivered after its
// Disconnected. Callbacks should return quickly: while one runs, that peer's
// connection is not read. They may call Send and Disconnect, but not Close
// or Shutdown.
type Handler interface {
	Connected(p Peer)
	// Message delivers one message: its envelope (nil when it has none;
	// see the package doc) and its payload, at least one frame. The callee
	// owns env, frames, and hold: what the
	// message holds on the connection's inbound account (Config.Inbound,
	// QueueLimit). It must Release hold once it no longer keeps the
	// message waiting; until then the room it takes stays taken, and a
	// connection out of room is not read.
	Message(p Peer, env Envelope, frames [][]byte, hold flow.Hold)
	// Disconnected reports the end of a connection for which Connected was
	// delivered. reason wraps io.EOF for a clean close by the peer, or one
	// of ErrServerClosed, ErrDisconnected, ErrReplaced, ErrPeerDropped,
	// ErrMessageTooLarge, ErrProtocol, or a network error.
	Disconnected(p Peer, reason error)
}

// Server is a ZeroMQ ROUTER bound to one or more endpoints.
type Server struct {
	cfg       Config
	h         Handler
	log       *slog.Logger
	listeners []*listener
	quit      chan struct{} // closed by Close: stops accept back-off sleeps

	lim *lograte.Limiter

	mu           sync.RWMutex
	peers        map[string]*peer   // registry: identity → its registered connection
	conns        map[*peer]struct{} // every open connection, handshaking or not
	perAddr      map[string]int     // open connections by remote IP address
	handshaking  int                // connections still in their handshake
	handshakesBy map[string]int     // the same, by remote IP address
	nextAnon     uint32             // counter for generated identities
	closed       bool

	wg         sync.WaitGroup // accept loops, connection readers and the liveness sweeper
	nextSerial atomic.Uint64
	closeOnce  sync.Once
	closeErr   error
	stats      counters

	sendBytes   atomic.Int64 // bytes held in all send queues (MaxSendBytes)
	sendHolders atomic.Int64 // send queues holding anything
	shedding    atomic.Bool  // a goroutine is shedding stuck peers
	now         atomic.Int64 // coarse clock (unix nanoseconds), kept by the sweeper
}

// counters are the Server's monotonic statistics.
type counters struct {
	accepted, handshakeFailed, oversize, slowDropped      atomic.Uint64
	handshakeAbandoned                                    atomic.Uint64
	writeTimeouts, shed, duplicateRefused, protocolErrors atomic.Uint64
	readTimeouts, heartbeats, heartbeatTimeouts           atomic.Uint64
	broadcastSkipped, msgsIn, msgsOut                     atomic.Uint64
	refusedMax, refusedPerAddr, refusedHandshakes         atomic.Uint64
	versionRefused, mechanismRefused                      atomic.Uint64
	curveRefused                                          [len(curveReasons)]atomic.Uint64
	curveRevoked                                          atomic.Uint64
}

// Listen binds every endpoint of cfg (if any fails, it closes the others
// and returns the error) and starts accepting connections, delivering
// their events to h. Any goroutine.
func Listen(cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("transport: listen: nil Handler")
	}
	if len(cfg.Endpoints)+len(cfg.CurveEndpoints) == 0 {
		return nil, errors.New("transport: listen: no endpoints")
	}
	if len(cfg.CurveEndpoints) > 0 && cfg.Curve == nil {
		return nil, errors.New("transport: listen: CurveEndpoints without Curve settings")
	}
	s := newServer(cfg, h)
	if err := s.bind(s.cfg.Endpoints, nil); err != nil {
		return nil, err
	}
	if err := s.bind(s.cfg.CurveEndpoints, s.cfg.Curve); err != nil {
		return nil, err
	}
	for _, l := range s.listeners {
		s.log.Info("listening", "endpoint", l.addr, "mechanism", side{curveServer: l.curveServer}.mechanism())
		s.wg.Go(func() { s.acceptLoop(l) })
	}
	s.wg.Go(s.sweep)
	return s, nil
}

// newServer builds a Server that is not bound to anything yet; Listen binds
// it. Tests drive it directly with startConn.
func newServer(cfg Config, h Handler) *Server {
	cfg = cfg.withDefaults()
	if limit := fdLimit(); limit > 0 && cfg.MaxConnections > limit-fdReserve {
		cfg.Logger.Warn("max_connections lowered to fit the file descriptor limit",
			"max_connections", cfg.MaxConnections, "fd_limit", limit, "now", max(limit-fdReserve, 1))
		cfg.MaxConnections = max(limit-fdReserve, 1)
	}
	if cfg.LogLimiter == nil {
		cfg.LogLimiter = lograte.New()
	}
	s := &Server{
		cfg:          cfg,
		h:            h,
		log:          cfg.Logger,
		lim:          cfg.LogLimiter,
		quit:         make(chan struct{}),
		peers:        make(map[string]*peer),
		conns:        make(map[*peer]struct{}),
		perAddr:      make(map[string]int),
		handshakesBy: make(map[string]int),
		nextAnon:     rand.Uint32(), // like libzmq, start generated identities at a random value
	}
	s.now.Store(time.Now().UnixNano())
	return s
}

// fdReserve is how many file descriptors MaxConnections leaves for
// everything else (listeners, upstream connections, files, the admin
// listener).
const fdReserve = 128

// fdLimit returns the process's limit on open file descriptors, or 0 when
// it cannot be read.
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}

// Addrs returns the bound endpoints with their real ports, e.g.
// "tcp://127.0.0.1:41234": Config.Endpoints, then Config.CurveEndpoints,
// each in order. Any goroutine.
func (s *Server) Addrs() []string {
	addrs := make([]string, len(s.listeners))
	for i, l := range s.listeners {
		addrs[i] = l.addr
	}
	return addrs
}

// Stats returns a snapshot of the server's counters. Any goroutine.
func (s *Server) Stats() Stats {
	s.mu.RLock()
	peers, conns := len(s.peers), len(s.conns)
	s.mu.RUnlock()
	return Stats{
		Peers:              peers,
		Conns:              conns,
		Accepted:           s.stats.accepted.Load(),
		HandshakeFailed:    s.stats.handshakeFailed.Load(),
		HandshakeAbandoned: s.stats.handshakeAbandoned.Load(),
		VersionRefused:     s.stats.versionRefused.Load(),
		MechanismRefused:   s.stats.mechanismRefused.Load(),
		Oversize:           s.stats.oversize.Load(),
		SlowDropped:        s.stats.slowDropped.Load(),
		WriteTimeouts:      s.stats.writeTimeouts.Load(),
		Shed:               s.stats.shed.Load(),
		DuplicateRefused:   s.stats.duplicateRefused.Load(),
		ProtocolErrors:     s.stats.protocolErrors.Load(),
		ReadTimeouts:       s.stats.readTimeouts.Load(),
		Heartbeats:         s.stats.heartbeats.Load(),
		HeartbeatTimeout:   s.stats.heartbeatTimeouts.Load(),
		BroadcastSkipped:   s.stats.broadcastSkipped.Load(),
		MsgsIn:             s.stats.msgsIn.Load(),
		MsgsOut:            s.stats.msgsOut.Load(),
		SendBytes:          s.sendBytes.Load(),

		RefusedMaxConnections: s.stats.refusedMax.Load(),
		RefusedPerAddress:     s.stats.refusedPerAddr.Load(),
		RefusedHandshakes:     s.stats.refusedHandshakes.Load(),

		CurveRefused: s.curveRefusedStats(),
		CurveRevoked: s.stats.curveRevoked.Load(),
	}
}

// curveRefusedStats reads the CURVE refusal counters by reason.
func (s *Server) curveRefusedStats() map[string]uint64 {
	m := make(map[string]uint64, len(curveReasons))
	for i, reason := range curveReasons {
		m[reason] = s.stats.curveRefused[i].Load()
	}
	return m
}

// Close stops accepting, closes every connection and waits for every
// goroutine the Server started; Disconnected is delivered for each
// connected peer before Close returns. Queued messages not yet written are
// discarded, including those of peers flushing after Disconnect (see
// Shutdown). Idempotent: later calls wait for the first and return its
// result. Any goroutine except a Handler callback (which would
// deadlock: Close waits for the goroutine running it).
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*peer, 0, len(s.conns))
		for p := range s.conns {
			conns = append(conns, p)
		}
		s.mu.Unlock()

		close(s.quit)
		var errs []error
		for _, l := range s.listeners {
			errs = append(errs, l.close())
		}
		for _, p := range conns {
			p.shutdown(ErrServerClosed)
		}
		s.wg.Wait()
		s.closeErr = errors.Join(errs...)
		s.log.Info("server closed")
	})
	return s.closeErr
}

// Shutdown stops accepting new connections, waits until every peer's send
// queue has been written (or ctx is done), then calls Close. Use it to let
// final replies leave before exiting. It returns ctx's error if the queues
// did not drain in time, joined with Close's. Any goroutine except a
// Handler callback.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, l := range s.listeners {
		errs = append(errs, l.close())
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !s.drained() {
		select {
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("transport: shutdown: send queues not drained: %w", ctx.Err()))
			return errors.Join(append(errs, s.Close())...)
		case <-tick.C:
		}
	}
	return errors.Join(append(errs, s.Close())...)
}

// drained reports whether no registered peer has anything left to write.
func (s *Server) drained() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.peers {
		if !p.q.idle() {
			return false
		}
	}
	return true
}

// acceptLoop accepts connections on l until it is closed, handing each to
// its own goroutine. Temporary errors (e.g. out of file descriptors) are
// retried with a back-off. Runs on its own goroutine, tracked by s.wg.
func (s *Server) acceptLoop(l *listener) {
	const maxDelay = time.Second
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxDelay)
			s.log.Warn("accept failed; retrying", "endpoint", l.addr, "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-s.quit:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		s.stats.accepted.Add(1)
		s.startConn(c, l.addr, l.curveServer)
	}
}

// bind listens on endpoints, speaking CURVE with cs (NULL when nil). If
// one fails, it closes every listener bound so far. Listen's goroutine.
func (s *Server) bind(endpoints []string, cs *CurveServer) error {
	for _, ep := range endpoints {
		l, err := listen(ep)
		if err != nil {
			for _, bound := range s.listeners {
				_ = bound.close()
			}
			return fmt.Errorf("transport: listen: %w", err)
		}
		l.curveServer = cs
		s.listeners = append(s.listeners, l)
	}
	return nil
}

// startConn admits c and starts its reader goroutine, unless the server is
// closed or a connection bound refuses it (then c is closed at once,
// before any handshake). cs is the endpoint's CURVE settings (nil: NULL).
// Called by accept loops (and fuzz tests).
func (s *Server) startConn(c net.Conn, endpoint string, cs *CurveServer) {
	p := newPeer(s, c, s.nextSerial.Add(1), endpoint, cs)
	s.mu.Lock()
	refused, counter := s.admit(p)
	if s.closed || refused != "" {
		s.mu.Unlock()
		_ = c.Close()
		if refused != "" {
			counter.Add(1)
			s.lim.Log(s.log, slog.LevelWarn, "refused_"+refused, p.addrKey, "connection refused at accept: "+refused,
				"remote", p.remote, "endpoint", endpoint)
		}
		return
	}
	s.conns[p] = struct{}{}
	s.perAddr[p.addrKey]++
	s.handshaking++
	s.handshakesBy[p.addrKey]++
	s.mu.Unlock()
	s.wg.Go(func() { s.serveConn(p) })
}

// admit checks p against the connection bounds and names the one it
// breaks, with its counter ("" when it may come in). Caller holds s.mu.
func (s *Server) admit(p *peer) (refused string, counter *atomic.Uint64) {
	perAddr := p.addrKey != "" && s.cfg.MaxConnectionsPerAddress > 0
	switch {
	case len(s.conns) >= s.cfg.MaxConnections:
		return "max_connections reached", &s.stats.refusedMax
	case perAddr && s.perAddr[p.addrKey] >= s.cfg.MaxConnectionsPerAddress:
		return "max_connections_per_address reached", &s.stats.refusedPerAddr
	case s.handshaking >= s.cfg.MaxHandshakes,
		perAddr && s.handshakesBy[p.addrKey] >= max(s.cfg.MaxHandshakes/2, 1):
		return "max_handshakes reached", &s.stats.refusedHandshakes
	}
	return "", nil
}

// handshakeEnded takes p off the count of connections in their handshake.
// Reader goroutine of p, once.
func (s *Server) handshakeEnded(p *peer) {
	s.mu.Lock()
	s.handshaking--
	if s.handshakesBy[p.addrKey]--; s.handshakesBy[p.addrKey] == 0 {
		delete(s.handshakesBy, p.addrKey)
	}
	s.mu.Unlock()
}

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
	"time"
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
	// Message delivers one message: the payload after envelope handling
	// (see the package doc). The callee owns frames.
	Message(p Peer, frames [][]byte)
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

	mu       sync.RWMutex
	peers    map[string]*peer   // registry: identity → its registered connection
	conns    map[*peer]struct{} // every open connection, handshaking or not
	nextAnon uint32             // counter for generated identities
	closed   bool

	wg         sync.WaitGroup // accept loops and connection readers
	nextSerial atomic.Uint64
	closeOnce  sync.Once
	closeErr   error
	stats      counters
}

// counters are the Server's monotonic statistics.
type counters struct {
	accepted, handshakeFailed, oversize, slowDropped atomic.Uint64
	duplicateRefused, protocolErrors                 atomic.Uint64
	msgsIn, msgsOut                                  atomic.Uint64
}

// Listen binds every endpoint of cfg (if any fails, it closes the others
// and returns the error) and starts accepting connections, delivering
// their events to h. Any goroutine.
func Listen(cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("transport: listen: nil Handler")
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("transport: listen: no endpoints")
	}
	s := newServer(cfg, h)
	for _, ep := range s.cfg.Endpoints {
		l, err := listen(ep)
		if err != nil {
			for _, bound := range s.listeners {
				_ = bound.close()
			}
			return nil, fmt.Errorf("transport: listen: %w", err)
		}
		s.listeners = append(s.listeners, l)
	}
	for _, l := range s.listeners {
		s.log.Info("listening", "endpoint", l.addr)
		s.wg.Go(func() { s.acceptLoop(l) })
	}
	return s, nil
}

// newServer builds a Server that is not bound to anything yet; Listen binds
// it. Tests drive it directly with startConn.
func newServer(cfg Config, h Handler) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger,
		quit:     make(chan struct{}),
		peers:    make(map[string]*peer),
		conns:    make(map[*peer]struct{}),
		nextAnon: rand.Uint32(), // like libzmq, start generated identities at a random value
	}
}

// Addrs returns the bound endpoints with their real ports, e.g.
// "tcp://127.0.0.1:41234", in Config.Endpoints order. Any goroutine.
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
		Peers:            peers,
		Conns:            conns,
		Accepted:         s.stats.accepted.Load(),
		HandshakeFailed:  s.stats.handshakeFailed.Load(),
		Oversize:         s.stats.oversize.Load(),
		SlowDropped:      s.stats.slowDropped.Load(),
		DuplicateRefused: s.stats.duplicateRefused.Load(),
		ProtocolErrors:   s.stats.protocolErrors.Load(),
		MsgsIn:           s.stats.msgsIn.Load(),
		MsgsOut:          s.stats.msgsOut.Load(),
	}
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
		if !p.idle() {
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
		s.startConn(c, l.addr)
	}
}

// startConn tracks c and starts its reader goroutine, unless the server is
// closed (then c is closed). Called by accept loops (and fuzz tests).
func (s *Server) startConn(c net.Conn, endpoint string) {
	p := newPeer(s, c, s.nextSerial.Add(1), endpoint)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return
	}
	s.conns[p] = struct{}{}
	s.wg.Go(func() { s.serveConn(p) })
}

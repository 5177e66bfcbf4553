package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/waitfor"
	"github.com/moebius-js/moebius-js/jsrt"
)

// Config sets up a Sim. Zero values take the defaults.
type Config struct {
	Handlers   string        // the handlers file (default handlers.js)
	StepBudget time.Duration // as jsrt's, in real time (default 1s)
	QueueLimit int           // as jsrt's (default 100)
	// SettleTimeout is how much real time the server may take to settle
	// after one action (default 10s): a handler that never waits (a loop
	// of bare yields, say) fails the test instead of hanging it.
	SettleTimeout time.Duration
}

// DefaultSettleTimeout is Config.SettleTimeout's default.
const DefaultSettleTimeout = 10 * time.Second

// Stub answers dealer() and request() for one endpoint in place of a
// server: it gets each message sent there and may call reply any number
// of times, then or later (a reply from outside the settle it was called
// in settles the server again, and returns that settle's error). Driver
// goroutine.
type Stub func(frames [][]byte, reply func(frames [][]byte) error) error

// Client is one simulated client connection.
type Client struct {
	ID        string
	serial    uint64
	received  [][][]byte // every message sent to it; guarded by the Sim's mu
	taken     int        // how many of them Take returned; driver only
	connected bool       // guarded by the Sim's mu
}

// Sim is one server under test: a jsrt.Host on one worker, a virtual
// clock, simulated clients and stub upstreams. Its methods are called by
// one goroutine, the driver; each action returns once the server has
// settled (see the package doc).
type Sim struct {
	cfg   Config
	host  *jsrt.Host
	log   *logLines
	mu    sync.Mutex // guards what the worker's goroutine shares with the driver: below, and clock
	cond  *sync.Cond
	clock *virtualClock

	clients  map[string]*Client // by identity: the latest connection of each
	chores   []func() error     // work the worker handed to the driver
	stubs    map[string]Stub
	serial   uint64 // last connection serial given out; driver only
	settling bool   // settle is under way; driver only
	closed   bool   // driver only
}

// New loads the handlers file into a fresh server and lets it settle (its
// background work runs up to its first wait). Driver goroutine.
func New(cfg Config) (*Sim, error) {
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = DefaultSettleTimeout
	}
	s := &Sim{cfg: cfg, log: &logLines{}, clients: map[string]*Client{}, stubs: map[string]Stub{}}
	s.cond = sync.NewCond(&s.mu)
	s.clock = &virtualClock{mu: &s.mu, cond: s.cond, now: epoch}
	logger := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // virtual time is what counts here; t.now() tells it
			}
			return a
		},
	}))
	h, err := jsrt.New(jsrt.Config{
		Handlers:   cfg.Handlers,
		Workers:    1,
		StepBudget: cfg.StepBudget,
		QueueLimit: cfg.QueueLimit,
		Dialer:     stubDialer{s},
		Logger:     logger,
		NewClock:   func() core.Clock { return s.clock },
	})
	if err != nil {
		return nil, err
	}
	s.host = h
	h.Start(simSender{s})
	if err := s.settle(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close shuts the server down. Driver goroutine; safe to call twice.
func (s *Sim) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.host.Shutdown(0)
}

// Connect connects a client with identity id (and, when publicKey is not
// "", the CURVE public key it proved). Driver goroutine.
func (s *Sim) Connect(id, publicKey string) (*Client, error) {
	s.mu.Lock()
	if c := s.clients[id]; c != nil && c.connected {
		s.mu.Unlock()
		return nil, fmt.Errorf("a client %q is already connected", id)
	}
	s.serial++
	c := &Client{ID: id, serial: s.serial, connected: true}
	s.clients[id] = c
	s.mu.Unlock()
	s.host.Connected(id, c.serial, publicKey)
	return c, s.settle()
}

// Send delivers one message from c. Driver goroutine.
func (s *Sim) Send(c *Client, frames [][]byte) error {
	if !s.Connected(c) {
		return fmt.Errorf("client %q is not connected", c.ID)
	}
	if len(frames) == 0 {
		return errors.New("a message has at least one frame")
	}
	s.host.Message(c.ID, c.serial, nil, frames, flow.Hold{})
	return s.settle()
}

// Disconnect ends c's connection. Driver goroutine.
func (s *Sim) Disconnect(c *Client) error {
	s.mu.Lock()
	was := c.connected
	c.connected = false
	s.mu.Unlock()
	if was {
		s.host.Disconnected(c.ID, c.serial)
	}
	return s.settle()
}

// Connected reports whether c is still connected: neither it nor the
// server (client.close()) ended the connection. Driver goroutine.
func (s *Sim) Connected(c *Client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.connected
}

// Received returns every message c received so far. Driver goroutine.
func (s *Sim) Received(c *Client) [][][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][][]byte(nil), c.received...)
}

// Take returns the oldest message c received that Take has not returned,
// and false when there is none. Driver goroutine.
func (s *Sim) Take(c *Client) ([][]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.taken >= len(c.received) {
		return nil, false
	}
	c.taken++
	return c.received[c.taken-1], true
}

// Advance moves virtual time forward by d, running each timer that comes
// due on the way at its own time. Driver goroutine.
func (s *Sim) Advance(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("time cannot go back (advance by %v)", d)
	}
	s.mu.Lock()
	target := s.clock.now.Add(d)
	s.mu.Unlock()
	for {
		if err := s.settle(); err != nil {
			return err
		}
		s.mu.Lock()
		next := s.clock.deadline
		if next.IsZero() || next.After(target) {
			s.clock.moveToLocked(target)
			s.mu.Unlock()
			return s.settle()
		}
		s.clock.moveToLocked(next)
		s.mu.Unlock()
	}
}

// Elapsed is the virtual time since the Sim began. Driver goroutine.
func (s *Sim) Elapsed() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock.now.Sub(epoch)
}

// Reload loads the handlers file again, as a change to it would: a new
// generation, client state carried over. Driver goroutine.
func (s *Sim) Reload() error {
	if err := s.host.Reload(); err != nil {
		return err
	}
	return s.settle()
}

// Stub answers what dealer(endpoint) and request(endpoint) send from now
// on, on connections open already too. Driver goroutine.
func (s *Sim) Stub(endpoint string, fn Stub) {
	s.mu.Lock()
	s.stubs[endpoint] = fn
	s.mu.Unlock()
}

// Logs returns the server's log lines so far, console output included,
// each as "level=… msg=… key=value…". Any goroutine.
func (s *Sim) Logs() []string { return s.log.lines() }

// settle waits until the server has nothing left to do at the current
// virtual time, doing on the way what the worker handed to the driver.
// The first error a chore returns is returned once it has settled.
func (s *Sim) settle() error {
	s.settling = true
	defer func() { s.settling = false }()
	var first error
	for {
		s.mu.Lock()
		ok := waitfor.Cond(&s.mu, s.cond, s.cfg.SettleTimeout, func() bool {
			return s.clock.idleLocked() || len(s.chores) > 0
		})
		chores := s.chores
		s.chores = nil
		s.mu.Unlock()
		if !ok {
			return fmt.Errorf("the server was still busy after %v of real time: does a handler loop without waiting (yield sleep(ms), not a bare yield)?", s.cfg.SettleTimeout)
		}
		if len(chores) == 0 {
			return first
		}
		for _, f := range chores {
			if err := f(); err != nil && first == nil {
				first = err
			}
		}
	}
}

// handOff queues fn for the driver to run while it settles. Any goroutine.
func (s *Sim) handOff(fn func() error) {
	s.mu.Lock()
	s.chores = append(s.chores, fn)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// simSender is the Sim as the Host's jsrt.Sender: what it sends lands in
// the clients' received lists. Any goroutine, as the interface says.
type simSender struct{ s *Sim }

// peer returns the connected client id's connection conn (0: whichever
// holds id). s.mu held.
func (o simSender) peer(id string, conn uint64) *Client {
	c := o.s.clients[id]
	if c == nil || !c.connected || (conn != 0 && c.serial != conn) {
		return nil
	}
	return c
}

func (o simSender) SendConn(id string, conn uint64, frames ...[]byte) (bool, error) {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	c := o.peer(id, conn)
	if c == nil {
		return false, fmt.Errorf("client %q is not connected", id)
	}
	c.received = append(c.received, copyFrames(frames))
	return false, nil
}

// ReplyConn is SendConn: simulated clients send no envelope, so there is
// none to carry back.
func (o simSender) ReplyConn(id string, conn uint64, _ [][]byte, frames ...[]byte) (bool, error) {
	return o.SendConn(id, conn, frames...)
}

func (o simSender) Broadcast(frame []byte, to []jsrt.Target) int {
	n := 0
	for _, t := range to {
		if _, err := o.SendConn(t.ID, t.Serial, frame); err == nil {
			n++
		}
	}
	return n
}

// WhenWritable reports false: a simulated client reads everything at once.
func (o simSender) WhenWritable(string, uint64, func()) bool { return false }

// DisconnectConn ends the connection (client.close()); the driver then
// tells the Host, as the transport would once the socket closed.
func (o simSender) DisconnectConn(id string, conn uint64) bool {
	o.s.mu.Lock()
	c := o.peer(id, conn)
	if c != nil {
		c.connected = false
	}
	o.s.mu.Unlock()
	if c == nil {
		return false
	}
	o.s.handOff(func() error {
		o.s.host.Disconnected(c.ID, c.serial)
		return nil
	})
	return true
}

// stubDialer is the Sim as the Host's jsrt.Dialer: what is sent to an
// endpoint is answered by the Stub declared for it when it is sent.
type stubDialer struct{ s *Sim }

func (d stubDialer) Dial(endpoint string, _ jsrt.DialOptions, onMessage func([][]byte)) (jsrt.Upstream, error) {
	return &stubUpstream{s: d.s, endpoint: endpoint, onMessage: onMessage}, nil
}

// stubUpstream is one dealer()'s or request() pool's connection to a
// stub. Send and Close come from the worker's goroutine; the stub runs on
// the driver's.
type stubUpstream struct {
	s         *Sim
	endpoint  string
	onMessage func([][]byte)
	mu        sync.Mutex
	closed    bool
}

func (u *stubUpstream) Send(frames ...[]byte) error {
	if u.isClosed() {
		return errors.New("closed")
	}
	u.s.mu.Lock()
	fn := u.s.stubs[u.endpoint]
	u.s.mu.Unlock()
	if fn == nil {
		return fmt.Errorf("no stub answers %s in this test (declare one with t.stub(%q, fn))", u.endpoint, u.endpoint)
	}
	msg := copyFrames(frames)
	u.s.handOff(func() error { return fn(msg, u.reply) })
	return nil
}

// reply delivers a stub's answer; outside a settle (a stub that kept its
// upstream and answers later), it then lets the server settle. Driver
// goroutine.
func (u *stubUpstream) reply(frames [][]byte) error {
	if !u.isClosed() {
		u.onMessage(copyFrames(frames))
	}
	if u.s.settling {
		return nil
	}
	return u.s.settle()
}

func (u *stubUpstream) Close() {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
}

func (u *stubUpstream) isClosed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.closed
}

func copyFrames(frames [][]byte) [][]byte {
	out := make([][]byte, len(frames))
	for i, f := range frames {
		out[i] = bytes.Clone(f)
	}
	return out
}

// logLines is the server's log, kept line by line. Any goroutine.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSuffix(l.b.String(), "\n")
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}

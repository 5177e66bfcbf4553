package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/moebius-js/moebius-js/curve"
)

// DialConfig configures a Dealer. Zero values take the defaults.
type DialConfig struct {
	// Identity is the routing identity announced to the server; empty
	// announces none (the server makes one up).
	Identity string
	// Limits bound the connection. A message over MaxMessageSize or
	// MaxFrames closes it (it is re-established) and is lost.
	Limits
	// ReconnectMin and ReconnectMax bound the back-off between connection
	// attempts: it starts at ReconnectMin and doubles up to ReconnectMax.
	// Defaults 100ms and 5s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives the dealer's logs. Default slog.Default().
	Logger *slog.Logger
	// Curve, when set, makes the dealer a CURVE client of the server
	// whose key it names (NULL otherwise).
	Curve *CurveClient
	// OnState, when set, hears what becomes of each connection attempt:
	// made, refused, failed, and (once made) lost. Called on the dealer's
	// connecting goroutine, in order; it must return quickly and not call
	// Close.
	OnState func(ConnState)
}

// ConnState is one thing that happened to a Dealer's connection.
type ConnState struct {
	Event ConnEvent
	Err   error // why, for all but ConnUp
}

// ConnEvent names what happened to a Dealer's connection.
type ConnEvent uint8

const (
	ConnUp      ConnEvent = iota + 1 // the handshake completed
	ConnRefused                      // the server refused the handshake (Err wraps ErrProtocol): trying again will not help
	ConnFailed                       // connecting or the handshake failed otherwise
	ConnLost                         // a connection that was up ended
)

// state tells OnState, if set. The dealer's connecting goroutine.
func (d *Dealer) state(ev ConnEvent, err error) {
	if d.cfg.OnState != nil {
		d.cfg.OnState(ConnState{Event: ev, Err: err})
	}
}

func (cfg DialConfig) withDefaults() DialConfig {
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 100 * time.Millisecond
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = max(5*time.Second, cfg.ReconnectMin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// ErrQueueFull: a Dealer's send queue is full (the server is down or not
// reading).
var ErrQueueFull = errors.New("transport: send queue full")

// ErrClosed: the Dealer was closed.
var ErrClosed = errors.New("transport: dealer closed")

// Dealer is a ZeroMQ DEALER connection to one server, for awaiting other
// servers from handlers. It connects in the background and reconnects on
// its own with a back-off; Send never blocks: messages wait in a bounded
// queue until a connection takes them. A message that was being written
// when a connection broke is lost, as with libzmq.
//
// If the server turns out to be a REP socket, the dealer speaks REQ style:
// it puts an empty delimiter frame before each message and strips it from
// replies.
//
// Goroutines: one that connects and reads (calling onMessage), and one
// writer per live connection. Close stops and waits for both.
type Dealer struct {
	endpoint  string
	network   string
	address   string
	cfg       DialConfig
	onMessage func(frames [][]byte)
	log       *slog.Logger
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}

	q *sendQueue // outlives connections: messages wait in it for the next one

	mu     sync.Mutex
	conn   net.Conn // the live connection, nil between connections
	closed bool
}

// CheckDial reports what Dial would refuse: a malformed endpoint or an
// identity longer than ZMTP allows. Any goroutine.
func CheckDial(endpoint, identity string) error {
	if _, _, err := ParseEndpoint(endpoint); err != nil {
		return fmt.Errorf("transport: dial: %w", err)
	}
	if len(identity) > maxIdentityLen {
		return fmt.Errorf("transport: dial %s: identity of %d bytes (max %d)", endpoint, len(identity), maxIdentityLen)
	}
	return nil
}

// Dial starts connecting a DEALER to endpoint ("tcp://host:port" or
// "ipc://path") and returns at once; it fails only for a malformed
// endpoint. onMessage is called for every message that arrives, on the
// dealer's reader goroutine, in order; it must return quickly and must not
// call Close. Any goroutine.
func Dial(endpoint string, cfg DialConfig, onMessage func(frames [][]byte)) (*Dealer, error) {
	if err := CheckDial(endpoint, cfg.Identity); err != nil {
		return nil, err
	}
	network, address, _ := ParseEndpoint(endpoint)
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dealer{
		endpoint: endpoint, network: network, address: address,
		cfg: cfg, onMessage: onMessage,
		log: cfg.Logger.With("upstream", endpoint),
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	d.q = newSendQueue(&d.cfg.Limits, nil, nil)
	go d.run()
	return d, nil
}

// Send queues one message for the server. It never blocks: it fails with
// ErrQueueFull when the message would take the queue past SendQueueBytes
// (on an empty queue any size is accepted), and with ErrClosed after
// Close. Send takes ownership of frames. Any goroutine.
func (d *Dealer) Send(frames ...[]byte) error {
	if len(frames) == 0 {
		return fmt.Errorf("transport: send to %s: %w", d.endpoint, ErrNoFrames)
	}
	m := outMsg{frames: frames}
	switch d.q.push(m) {
	case queueGone:
		return fmt.Errorf("transport: send to %s: %w", d.endpoint, ErrClosed)
	case queueFull:
		return fmt.Errorf("transport: send to %s: %w (%d bytes waiting, a %d-byte message; limit %d)",
			d.endpoint, ErrQueueFull, d.q.heldBytes(), m.cost(), d.cfg.SendQueueBytes)
	}
	return nil
}

// Close stops connecting, closes the connection and waits for the dealer's
// goroutines; queued messages are dropped. The wait is short: Close
// cancels a dial or handshake in progress and closes the socket, which
// ends a blocked read or write at once, so it waits for no network round
// trip and no timeout, only for an onMessage call in progress to return
// (onMessage must not block). It is therefore fine to call from a
// goroutine that must stay responsive, such as a scheduler's. Idempotent.
// Any goroutine except onMessage (which Close would wait for).
func (d *Dealer) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		d.cancel()
		if d.conn != nil {
			_ = d.conn.Close()
		}
	}
	d.mu.Unlock()
	d.q.close()
	<-d.done
}

// run connects, serves the connection until it breaks, and reconnects
// with a back-off, until Close.
func (d *Dealer) run() {
	defer close(d.done)
	delay := d.cfg.ReconnectMin
	for {
		conn, h, err := d.connect()
		switch {
		case err == nil:
			d.state(ConnUp, nil)
			began := time.Now()
			if !d.serve(conn, h) {
				return
			}
			if time.Since(began) >= healthyConnection {
				delay = d.cfg.ReconnectMin
				continue // it served for a while: reconnect at once
			}
			// Closed right after the handshake (refused for a duplicate
			// identity, say): back off as for a failed connect, so as not
			// to spin.
		case d.ctx.Err() != nil:
			return
		case errors.Is(err, ErrProtocol):
			// Refused (a CURVE key that does not match, say): retrying
			// will not help until someone fixes it, so say so.
			d.state(ConnRefused, err)
			d.log.Warn("upstream handshake failed; retrying", "err", err, "delay", delay)
		default:
			d.state(ConnFailed, err)
			d.log.Debug("upstream connect failed; retrying", "err", err, "delay", delay)
		}
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, d.cfg.ReconnectMax)
	}
}

// healthyConnection is how long a connection must last for the next
// reconnect to skip the back-off.
const healthyConnection = time.Second

// connect dials and completes the handshake within HandshakeTimeout.
func (d *Dealer) connect() (net.Conn, hello, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.HandshakeTimeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, d.network, d.address)
	if err != nil {
		return nil, hello{}, err
	}
	stop := context.AfterFunc(d.ctx, func() { _ = conn.Close() }) // Close during the handshake
	defer stop()
	sd := dealerSide
	sd.identity = d.cfg.Identity
	sd.curveClient = d.cfg.Curve
	h, err := handshakeAs(sd, conn, d.cfg.HandshakeTimeout)
	if err != nil {
		_ = conn.Close()
		return nil, hello{}, err
	}
	return conn, h, nil
}

// serve runs one connection: a writer goroutine drains the queue while
// this goroutine reads. It reports false once the dealer is closed.
func (d *Dealer) serve(conn net.Conn, h hello) bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		_ = conn.Close()
		return false
	}
	d.conn = conn
	d.mu.Unlock()
	enveloped := h.socketType == "REP" // a REP peer's messages carry an empty delimiter, ours too
	d.log.Debug("upstream connected", "socket_type", h.socketType)

	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		d.writeLoop(conn, h.session, enveloped, stop)
	}()
	err := d.readLoop(conn, h.session, enveloped)
	_ = conn.Close()
	close(stop)
	<-writerDone

	d.mu.Lock()
	d.conn = nil
	closed := d.closed
	d.mu.Unlock()
	if !closed {
		d.state(ConnLost, err)
	}
	switch {
	case closed:
	case errors.Is(err, ErrMessageTooLarge):
		d.log.Warn("closed the upstream connection: message too large; reconnecting", "err", err)
	case errors.Is(err, ErrProtocol):
		d.log.Warn("closed the upstream connection: protocol error; reconnecting", "err", err)
	default:
		d.log.Debug("upstream connection lost; reconnecting", "err", err)
	}
	return !closed
}

// readLoop delivers messages and answers PINGs until the connection fails.
func (d *Dealer) readLoop(conn net.Conn, session *curve.Session, enveloped bool) error {
	fr := newFrameReader(conn, d.cfg.MaxMessageSize, d.cfg.MaxFrames)
	if session != nil {
		fr.open = &session.Opener
	}
	for {
		frames, command, _, err := fr.next()
		if err != nil {
			return err
		}
		if command != nil {
			name, data, err := parseCommand(command)
			if err != nil {
				return err
			}
			if name == cmdPing {
				// Refused only when the queue is full: the server is not
				// reading, so a PONG would not help.
				d.q.push(outMsg{frames: [][]byte{pongFor(data)}, command: true})
			}
			continue
		}
		if enveloped && len(frames) > 1 && len(frames[0]) == 0 {
			frames = frames[1:]
		}
		d.onMessage(frames)
	}
}

// writeLoop writes everything queued in vectored writes, until stop or a
// write error (which closes the connection; what was being written is
// lost with it).
func (d *Dealer) writeLoop(conn net.Conn, session *curve.Session, enveloped bool, stop <-chan struct{}) {
	w := newBatchWriter(session)
	for {
		batch, ok := d.q.take()
		if !ok {
			return
		}
		if len(batch) == 0 {
			select {
			case <-stop:
				return
			case <-d.q.wake:
				continue
			}
		}
		if enveloped {
			for i := range batch {
				if !batch[i].command {
					batch[i].envelope = delimiter
				}
			}
		}
		_, err := d.q.writeAll(w, conn, batch, d.cfg.WriteTimeout)
		d.q.finish(batch)
		if err != nil {
			_ = conn.Close() // the reader notices and reconnects
			return
		}
	}
}

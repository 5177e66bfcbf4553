package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
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

	mu        sync.Mutex
	queue     []outMsg
	spare     []outMsg
	qbytes    int64    // sum of the frame bodies in queue
	conn      net.Conn // the live connection, nil between connections
	enveloped bool     // the peer is a REP socket
	closed    bool
	wake      chan struct{} // 1-buffered: the queue changed
}

// Dial starts connecting a DEALER to endpoint ("tcp://host:port" or
// "ipc://path") and returns at once; it fails only for a malformed
// endpoint. onMessage is called for every message that arrives, on the
// dealer's reader goroutine, in order; it must return quickly and must not
// call Close. Any goroutine.
func Dial(endpoint string, cfg DialConfig, onMessage func(frames [][]byte)) (*Dealer, error) {
	network, address, err := parseDialEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if len(cfg.Identity) > maxIdentityLen {
		return nil, fmt.Errorf("transport: dial %s: identity of %d bytes (max %d)", endpoint, len(cfg.Identity), maxIdentityLen)
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dealer{
		endpoint: endpoint, network: network, address: address,
		cfg: cfg, onMessage: onMessage,
		log: cfg.Logger.With("upstream", endpoint),
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	go d.run()
	return d, nil
}

func parseDialEndpoint(endpoint string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	switch {
	case !ok || rest == "":
	case scheme == "tcp":
		if _, _, err := net.SplitHostPort(rest); err == nil {
			return "tcp", rest, nil
		}
	case scheme == "ipc":
		return "unix", rest, nil
	}
	return "", "", fmt.Errorf("transport: dial %q: want tcp://host:port or ipc://path", endpoint)
}

// Send queues one message for the server. It never blocks: it fails with
// ErrQueueFull when SendQueue messages are already waiting or when the
// message would take the waiting bytes over SendQueueBytes (on an empty
// queue any size is accepted), and with ErrClosed after Close. Send takes
// ownership of frames. Any goroutine.
func (d *Dealer) Send(frames ...[]byte) error {
	if len(frames) == 0 {
		return fmt.Errorf("transport: send to %s: %w", d.endpoint, ErrNoFrames)
	}
	m := outMsg{frames: frames}
	size := m.size()
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return fmt.Errorf("transport: send to %s: %w", d.endpoint, ErrClosed)
	case overLimits(d.cfg.Limits, len(d.queue), d.qbytes, size):
		n, waiting := len(d.queue), d.qbytes
		d.mu.Unlock()
		return fmt.Errorf("transport: send to %s: %w (%d messages, %d bytes waiting; a %d-byte message; limits %d and %d)",
			d.endpoint, ErrQueueFull, n, waiting, size, d.cfg.SendQueue, d.cfg.SendQueueBytes)
	}
	d.queue = append(d.queue, m)
	d.qbytes += size
	d.mu.Unlock()
	d.signal()
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
		clear(d.queue)
		d.queue, d.qbytes = nil, 0
	}
	d.mu.Unlock()
	d.signal()
	<-d.done
}

func (d *Dealer) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
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
		default:
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
	h, err := handshakeAs(sd, conn, d.cfg.HandshakeTimeout, d.log)
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
	d.enveloped = h.socketType == "REP"
	d.mu.Unlock()
	d.log.Debug("upstream connected", "socket_type", h.socketType)

	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		d.writeLoop(conn, stop)
	}()
	err := d.readLoop(conn)
	_ = conn.Close()
	close(stop)
	<-writerDone

	d.mu.Lock()
	d.conn = nil
	closed := d.closed
	d.mu.Unlock()
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
func (d *Dealer) readLoop(conn net.Conn) error {
	fr := newFrameReader(conn, d.cfg.MaxMessageSize, d.cfg.MaxFrames)
	for {
		frames, command, err := fr.next()
		if err != nil {
			return err
		}
		if command != nil {
			name, data, err := parseCommand(command)
			if err != nil {
				return err
			}
			if name == cmdPing {
				pong := outMsg{frames: [][]byte{pongFor(data)}, command: true}
				d.mu.Lock()
				d.queue = append(d.queue, pong) // tiny, and answers the server: never refused
				d.qbytes += pong.size()
				d.mu.Unlock()
				d.signal()
			}
			continue
		}
		d.mu.Lock()
		enveloped := d.enveloped
		d.mu.Unlock()
		if enveloped && len(frames) > 1 && len(frames[0]) == 0 {
			frames = frames[1:]
		}
		d.onMessage(frames)
	}
}

// writeLoop writes everything queued with one vectored write per batch,
// until stop or a write error (which closes the connection).
func (d *Dealer) writeLoop(conn net.Conn, stop <-chan struct{}) {
	w := &batchWriter{}
	for {
		d.mu.Lock()
		batch, enveloped := d.queue, d.enveloped
		d.queue, d.spare, d.qbytes = d.spare[:0], nil, 0
		d.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-stop:
				return
			case <-d.wake:
				continue
			}
		}
		if enveloped {
			for i := range batch {
				batch[i].envelope = !batch[i].command
			}
		}
		_, err := w.write(conn, batch, d.cfg.WriteTimeout)
		clear(batch)
		d.mu.Lock()
		d.spare = batch[:0]
		d.mu.Unlock()
		if err != nil {
			_ = conn.Close() // the reader notices and reconnects
			return
		}
	}
}

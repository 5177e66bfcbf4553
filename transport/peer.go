package transport

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/flow"
)

// Peer names one connection of one client.
type Peer struct {
	ID     string // routing identity bytes (not necessarily UTF-8)
	Serial uint64 // serial, unique per accepted connection for the Server's life

	// ClientKey is the long-term public key a CURVE client proved in its
	// handshake; nil on a NULL connection. Read-only: the server compares
	// it when keys are revoked.
	ClientKey *curve.Key
}

// peer is the server's state for one accepted connection: from accept,
// through the handshake, to teardown. Its reader goroutine (Server.serveConn)
// owns it; its writer goroutine (writeLoop) only drains the queue.
type peer struct {
	srv       *Server
	latestEnv atomic.Pointer[Envelope] // the envelope of its latest message, for sends that answer none
	conn      net.Conn
	serial    uint64
	endpoint  string
	remote    string
	addrKey   string       // the remote IP address, for MaxConnectionsPerAddress ("" for unix sockets)
	log       *slog.Logger // with conn, remote, endpoint (and peer once known)

	id      string      // set by the reader before registration, then read-only
	closing atomic.Bool // shutdown or a Disconnect has begun: deliver nothing more

	// On a CURVE endpoint: curveServer is its settings; the reader sets
	// session (before the writer starts, then read-only) and clientKey
	// (the key the client proved; RevokeKeys reads it) after the handshake.
	curveServer *CurveServer
	session     *curve.Session
	clientKey   atomic.Pointer[curve.Key]

	closeOnce sync.Once
	reason    error // why the connection ended; written once in shutdown

	q    *sendQueue
	acct *flow.Account // what its delivered messages hold (Config.Inbound)

	// Liveness, read by the server's sweeper (liveness.go).
	lastRead atomic.Int64 // Server.now when bytes last arrived
	partial  atomic.Bool  // a message is partly read
	paused   atomic.Bool  // the reader waits for flow control: the server is not reading it
	pingSent int64        // Server.now when a heartbeat PING went out unanswered; sweeper only

	writerDone chan struct{} // closed when writeLoop returns
	gone       chan struct{} // closed when teardown is complete (Disconnected delivered)
}

func newPeer(s *Server, c net.Conn, serial uint64, endpoint string, cs *CurveServer) *peer {
	remote := c.RemoteAddr().String()
	p := &peer{
		srv:         s,
		conn:        c,
		serial:      serial,
		endpoint:    endpoint,
		curveServer: cs,
		remote:      remote,
		addrKey:     addressKey(c.RemoteAddr()),
		log:         s.log.With("conn", serial, "remote", remote, "endpoint", endpoint),
		q:           newSendQueue(&s.cfg.Limits, &s.sendBytes, &s.sendHolders),
		acct:        s.cfg.Inbound.Open(s.cfg.QueueLimit),
		writerDone:  make(chan struct{}),
		gone:        make(chan struct{}),
	}
	p.lastRead.Store(s.now.Load())
	return p
}

// addressKey is the remote IP address of a TCP connection, or "" for other
// kinds (unix sockets), which MaxConnectionsPerAddress does not bound.
func addressKey(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return ""
}

func (p *peer) public() Peer { return Peer{ID: p.id, Serial: p.serial, ClientKey: p.clientKey.Load()} }

// shutdown ends the connection for reason: it closes the socket (which
// makes the reader's next read fail), closes the queue and the inbound
// account and wakes the writer so that it returns. Only the first call
// counts; it reports true. Any goroutine.
func (p *peer) shutdown(reason error) (first bool) {
	return p.shutdownCounting(reason, nil)
}

// shutdownCounting is shutdown that, if it is the first call, increments
// counter before closing the socket, so that whoever sees the connection
// close also sees it counted in Stats. Any goroutine.
func (p *peer) shutdownCounting(reason error, counter *atomic.Uint64) (first bool) {
	p.closeOnce.Do(func() {
		first = true
		if counter != nil {
			counter.Add(1)
		}
		p.reason = reason
		p.closing.Store(true)
		_ = p.conn.Close()
		p.q.close()
		p.acct.Close()
	})
	return first
}

// closeReason returns the reason given to the first shutdown. Call it only
// after shutdown has been called by this goroutine (sync.Once orders it).
func (p *peer) closeReason() error { return p.reason }

// closeAfterFlush is the graceful close behind Disconnect: from now on the
// queue refuses messages and the reader delivers nothing more; what is
// queued, and the batch being written, are still written, then the writer
// shuts the peer down for reason. With nothing queued or being written it
// shuts down at once. A write that stalls is ended by the write deadline
// as usual. Only the first call (or a shutdown) counts. Any goroutine.
func (p *peer) closeAfterFlush(reason error) {
	started, queued, writing := p.q.drain(reason)
	if !started {
		return
	}
	p.closing.Store(true)
	if queued == 0 && !writing {
		p.shutdown(reason)
		return
	}
	// The writer has been woken for what is queued (or is writing): it
	// shuts the peer down after its last batch.
	p.log.Debug("disconnecting once the send queue is written", "queued", queued, "writing", writing)
}

// writeLoop is the peer's writer goroutine: it sleeps until the queue
// changes, then writes everything queued in vectored writes, under a
// deadline. A write error shuts the peer down, and so does the end of the
// last batch of a peer that is disconnecting (closeAfterFlush). Started by
// the reader goroutine, which waits for writerDone during teardown.
func (p *peer) writeLoop(writeTimeout time.Duration) {
	defer close(p.writerDone)
	w := newBatchWriter(p.session)
	for {
		batch, ok := p.q.take()
		if !ok {
			return
		}
		if len(batch) == 0 {
			<-p.q.wake
			continue
		}
		msgs, err := p.q.writeAll(w, p.conn, batch, writeTimeout)
		p.srv.stats.msgsOut.Add(uint64(msgs))
		draining, flushed := p.q.finish(batch)
		if err != nil {
			p.srv.writeFailed(p, err, draining)
			return
		}
		if flushed {
			p.shutdown(p.q.drainReason)
			return
		}
	}
}

// batchWriter turns a batch of messages into one net.Buffers (header and
// body slices) for a single writev. Its header scratch space and Buffers
// slice are reused across batches, so a batch costs no allocation.
type batchWriter struct {
	seal   *curve.Sealer // on a CURVE connection: every frame goes out sealed
	sealed []byte        // scratch for the sealed frames of a batch

	hdr      []byte
	bufs     net.Buffers // the batch, kept at full length
	out      net.Buffers // what WriteTo consumes (it advances the slice)
	deadline time.Time   // the connection's write deadline, as last set by write
}

// newBatchWriter returns a writer for a connection: plain, or sealing
// every frame with session's Sealer when session is not nil.
func newBatchWriter(session *curve.Session) *batchWriter {
	if session == nil {
		return &batchWriter{}
	}
	return &batchWriter{seal: &session.Sealer}
}

// build prepares the buffers for batch and returns how many of its
// messages are not commands. They stay valid until the next reset.
func (w *batchWriter) build(batch []outMsg) int {
	if w.seal != nil {
		return w.buildSealed(batch)
	}
	frames := 0
	for _, m := range batch {
		frames += len(m.envelope) + len(m.frames)
	}
	if need := frames * maxHeaderLen; cap(w.hdr) < need {
		w.hdr = make([]byte, need)
	}
	hdr := w.hdr[:cap(w.hdr)]
	bufs := w.bufs[:0]
	msgs := 0
	for _, m := range batch {
		if !m.command {
			msgs++
		}
		for _, f := range m.envelope {
			h := putHeader(hdr, flagMore, len(f))
			hdr = hdr[len(h):]
			bufs = append(bufs, h)
			if len(f) > 0 {
				bufs = append(bufs, f)
			}
		}
		for i, f := range m.frames {
			var flags byte
			if i < len(m.frames)-1 {
				flags |= flagMore
			}
			if m.command {
				flags |= flagCommand
			}
			h := putHeader(hdr, flags, len(f))
			hdr = hdr[len(h):]
			bufs = append(bufs, h)
			if len(f) > 0 {
				bufs = append(bufs, f)
			}
		}
	}
	w.bufs = bufs
	return msgs
}

// writeTo writes the built batch with one vectored write (writev on TCP
// and unix sockets; net.Buffers falls back to a loop on other conns).
func (w *batchWriter) writeTo(c net.Conn) error {
	w.out = w.bufs
	_, err := w.out.WriteTo(c)
	return err
}

// write sends batch over c with one vectored write and reports how many of
// its messages were not commands. It keeps c's write deadline between
// timeout/2 and timeout ahead, resetting it only when less than half is
// left: setting it costs a timer update, too much to pay for every batch.
func (w *batchWriter) write(c net.Conn, batch []outMsg, timeout time.Duration) (msgs int, err error) {
	msgs = w.build(batch)
	defer w.reset()
	if now := time.Now(); w.deadline.Sub(now) < timeout/2 {
		w.deadline = now.Add(timeout)
		if err := c.SetWriteDeadline(w.deadline); err != nil {
			return msgs, err
		}
	}
	return msgs, w.writeTo(c)
}

// Scratch kept between batches; a rare bigger batch allocates its own.
const (
	keepHeaderScratch = 16 << 10
	keepSealedScratch = 2 * writeChunk
	keepBuffers       = 2048
)

// reset drops the references build took, keeping the capacity unless one
// unusually large batch grew it.
func (w *batchWriter) reset() {
	clear(w.bufs[:cap(w.bufs)])
	w.bufs, w.out = w.bufs[:0], nil
	if cap(w.hdr) > keepHeaderScratch {
		w.hdr = nil
	}
	if cap(w.sealed) > keepSealedScratch {
		w.sealed = nil
	}
	if cap(w.bufs) > keepBuffers {
		w.bufs = nil
	}
}

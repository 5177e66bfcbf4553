package transport

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Peer names one connection of one client.
type Peer struct {
	ID   string // routing identity bytes (not necessarily UTF-8)
	Conn uint64 // serial, unique per accepted connection for the Server's life
}

// peer is the server's state for one accepted connection: from accept,
// through the handshake, to teardown. Its reader goroutine (Server.serveConn)
// owns it; its writer goroutine (writeLoop) only drains the queue.
type peer struct {
	srv      *Server
	conn     net.Conn
	serial   uint64
	endpoint string
	remote   string
	log      *slog.Logger // with conn, remote, endpoint (and peer once known)

	id        string      // set by the reader before registration, then read-only
	enveloped atomic.Bool // last message had an empty delimiter: prefix replies with one
	closing   atomic.Bool // shutdown or a Disconnect has begun: deliver nothing more

	closeOnce sync.Once
	reason    error // why the connection ended; written once in shutdown

	// The outbound queue. The writer swaps queue and spare so that both
	// backing arrays are reused.
	qmu         sync.Mutex
	queue       []outMsg
	spare       []outMsg
	qbytes      int64 // sum of the frame bodies in queue
	writing     bool  // the writer holds a batch it has not finished writing
	qclosed     bool
	draining    bool          // Disconnect: accept nothing more, write what is pending, then close
	drainReason error         // the reason given to closeAfterFlush (set with draining)
	wake        chan struct{} // 1-buffered: "the queue changed"

	writerDone chan struct{} // closed when writeLoop returns
	gone       chan struct{} // closed when teardown is complete (Disconnected delivered)
}

// outMsg is one queued outbound message.
type outMsg struct {
	frames   [][]byte // shared with the caller: never mutated
	envelope bool     // write an empty delimiter frame first
	command  bool     // frames[0] is a command body (PONG)
}

// size is what m weighs against a send queue's byte bound: the sum of its
// frame bodies (headers and the empty delimiter are negligible).
func (m outMsg) size() int64 {
	var n int64
	for _, f := range m.frames {
		n += int64(len(f))
	}
	return n
}

func newPeer(s *Server, c net.Conn, serial uint64, endpoint string) *peer {
	remote := c.RemoteAddr().String()
	return &peer{
		srv:        s,
		conn:       c,
		serial:     serial,
		endpoint:   endpoint,
		remote:     remote,
		log:        s.log.With("conn", serial, "remote", remote, "endpoint", endpoint),
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		gone:       make(chan struct{}),
	}
}

func (p *peer) public() Peer { return Peer{ID: p.id, Conn: p.serial} }

// shutdown ends the connection for reason: it closes the socket (which
// makes the reader's next read fail), closes the queue and wakes the
// writer so that it returns. Only the first call counts; it reports true.
// Any goroutine.
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
		p.qmu.Lock()
		p.qclosed = true
		clear(p.queue)
		p.queue, p.qbytes = p.queue[:0], 0
		p.qmu.Unlock()
		_ = p.conn.Close()
		p.signal()
	})
	return first
}

// closeReason returns the reason given to the first shutdown. Call it only
// after shutdown has been called by this goroutine (sync.Once orders it).
func (p *peer) closeReason() error { return p.reason }

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// enqueue adds m to the queue without blocking. It returns errQueueClosed
// if the peer is shutting down or disconnecting, and errQueueFull (having
// done nothing) if limit messages are already waiting or if m would take
// the waiting bytes over limitBytes. A message alone in the queue is never
// too big: on an empty queue any size is accepted.
func (p *peer) enqueue(m outMsg, l Limits) error {
	size := m.size()
	p.qmu.Lock()
	switch {
	case p.qclosed || p.draining:
		p.qmu.Unlock()
		return errQueueClosed
	case overLimits(l, len(p.queue), p.qbytes, size):
		p.qmu.Unlock()
		return errQueueFull
	}
	p.queue = append(p.queue, m)
	p.qbytes += size
	p.qmu.Unlock()
	p.signal()
	return nil
}

// closeAfterFlush is the graceful close behind Disconnect: from now on
// enqueue refuses (errQueueClosed) and the reader delivers nothing more;
// what is queued, and the batch being written, are still written, then
// the writer shuts the peer down for reason. With nothing queued or being
// written it shuts down at once. A write that stalls is ended by the write
// deadline as usual. Only the first call (or a shutdown) counts. Any
// goroutine.
func (p *peer) closeAfterFlush(reason error) {
	p.qmu.Lock()
	if p.qclosed || p.draining {
		p.qmu.Unlock()
		return
	}
	p.draining, p.drainReason = true, reason
	p.closing.Store(true)
	queued, queuedBytes, writing := len(p.queue), p.qbytes, p.writing
	p.qmu.Unlock()

	if queued == 0 && !writing {
		p.shutdown(reason)
		return
	}
	// The writer has been woken for what is queued (or is writing): it
	// shuts the peer down after its last batch.
	p.log.Debug("disconnecting once the send queue is written", "queued", queued, "queued_bytes", queuedBytes, "writing", writing)
}

type queueError string

func (e queueError) Error() string { return string(e) }

const (
	errQueueClosed = queueError("queue closed")
	errQueueFull   = queueError("queue full")
)

// takeBatch hands the writer every queued message. ok is false once the
// peer is shut down.
func (p *peer) takeBatch() (batch []outMsg, ok bool) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if p.qclosed {
		return nil, false
	}
	if len(p.queue) == 0 {
		return nil, true
	}
	batch, p.queue, p.spare = p.queue, p.spare[:0], nil
	p.qbytes = 0
	p.writing = true
	return batch, true
}

// returnBatch gives a written batch's backing array back for reuse. It
// reports whether the peer is disconnecting (closeAfterFlush) and, if so,
// whether nothing is left to write: then the writer must shut it down.
func (p *peer) returnBatch(batch []outMsg) (draining, flushed bool) {
	clear(batch) // drop frame references for the GC
	p.qmu.Lock()
	defer p.qmu.Unlock()
	p.spare = batch[:0]
	p.writing = false
	return p.draining, p.draining && len(p.queue) == 0
}

// idle reports whether nothing is queued or being written.
func (p *peer) idle() bool {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return p.qclosed || (len(p.queue) == 0 && !p.writing)
}

// writeLoop is the peer's writer goroutine: it sleeps until the queue
// changes, then writes everything queued with one vectored write, under a
// deadline. A write error shuts the peer down, and so does the end of the
// last batch of a peer that is disconnecting (closeAfterFlush). Started by
// the reader goroutine, which waits for writerDone during teardown.
func (p *peer) writeLoop(writeTimeout time.Duration) {
	defer close(p.writerDone)
	w := &batchWriter{}
	for {
		batch, ok := p.takeBatch()
		if !ok {
			return
		}
		if len(batch) == 0 {
			<-p.wake
			continue
		}
		msgs, err := w.write(p.conn, batch, writeTimeout)
		draining, flushed := p.returnBatch(batch)
		if err != nil {
			if draining {
				err = fmt.Errorf("%w; the last messages were not written: %w", p.drainReason, err)
			}
			p.shutdown(err)
			return
		}
		p.srv.stats.msgsOut.Add(uint64(msgs))
		if flushed {
			p.shutdown(p.drainReason)
			return
		}
	}
}

// batchWriter turns a batch of messages into one net.Buffers (header and
// body slices) for a single writev. Its header scratch space and Buffers
// slice are reused across batches, so a batch costs no allocation.
type batchWriter struct {
	hdr      []byte
	bufs     net.Buffers // the batch, kept at full length
	out      net.Buffers // what WriteTo consumes (it advances the slice)
	deadline time.Time   // the connection's write deadline, as last set by write
}

// build prepares the buffers for batch and returns how many of its
// messages are not commands. They stay valid until the next reset.
func (w *batchWriter) build(batch []outMsg) int {
	frames := 0
	for _, m := range batch {
		frames += len(m.frames)
		if m.envelope {
			frames++
		}
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
		if m.envelope {
			h := putHeader(hdr, flagMore, 0)
			hdr = hdr[len(h):]
			bufs = append(bufs, h)
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

// overLimits reports whether a message of size bytes would overflow a
// send queue holding n messages of queued bytes. A message alone in the
// queue is never too big: on an empty queue any size goes.
func overLimits(l Limits, n int, queued, size int64) bool {
	return n >= l.SendQueue || n > 0 && queued+size > l.SendQueueBytes
}

// Scratch kept between batches; a rare bigger batch allocates its own.
const (
	keepHeaderScratch = 16 << 10
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
	if cap(w.bufs) > keepBuffers {
		w.bufs = nil
	}
}

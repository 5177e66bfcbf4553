package transport

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// outMsg is one queued outbound message.
type outMsg struct {
	frames   [][]byte     // shared with the caller: never mutated
	envelope Envelope     // frames written before frames: the request's routing envelope
	command  bool         // frames[0] is a command body (PING, PONG)
	shared   *sharedFrame // set for a broadcast's copy: counted once server-wide
	weight   int64        // what push charged for it (cost), given back by done
}

// Per-message and per-frame overheads charged against a queue's bytes, so
// that the byte bound also bounds how many (even empty) messages it holds:
// about what a queued message and each of its frame slices cost in memory.
const (
	msgOverhead   = 40
	frameOverhead = 24
)

// cost is what m weighs against a send queue's bounds.
func (m outMsg) cost() int64 {
	n := int64(msgOverhead)
	for _, f := range m.envelope {
		n += int64(len(f)) + frameOverhead
	}
	for _, f := range m.frames {
		n += int64(len(f)) + frameOverhead
	}
	return n
}

// sharedFrame is one broadcast frame queued for many peers: the server-wide
// send bytes count it once, and give it back when the last copy is written
// or discarded.
type sharedFrame struct {
	cost  int64
	refs  atomic.Int64
	total *atomic.Int64
}

func newSharedFrame(frame []byte, total *atomic.Int64) *sharedFrame {
	sh := &sharedFrame{cost: outMsg{frames: [][]byte{frame}}.cost(), total: total}
	sh.refs.Store(1) // the broadcaster's, dropped when it has queued every copy
	total.Add(sh.cost)
	return sh
}

func (sh *sharedFrame) release() {
	if sh.refs.Add(-1) == 0 {
		sh.total.Add(-sh.cost)
	}
}

// queueResult is what a push did.
type queueResult uint8

const (
	queued     queueResult = iota // accepted
	queuedFull                    // accepted; the queue is now above its high-water mark
	queueFull                     // refused: it would take the queue past its byte bound
	queueGone                     // refused: the queue is closed or draining
)

// sendQueue is one connection's outbound queue, for Server peers and
// Dealers alike. Producers push without ever blocking; one writer takes
// what is queued as a batch and writes it in chunks, reporting each
// written chunk. What it holds (queued, plus the part of the writer's
// batch not yet written) is bounded three ways:
//
//   - above the high-water mark (Limits.SendHWM messages or SendHWMBytes
//     bytes) it is backlogged: producers that can wait (generators) are
//     told to, and broadcasts skip it, until it falls below the low-water
//     mark (half of each);
//   - a push that would take it past SendQueueBytes is refused (the
//     caller drops the peer), except on an empty queue, so that any single
//     message can be sent;
//   - a writer that makes no progress for WriteTimeout fails its write
//     (the connection's write deadline).
//
// When total is set (a Server's peers), every byte held also counts in it,
// broadcast copies once (sharedFrame), and holders counts the queues that
// hold anything.
type sendQueue struct {
	lim     *Limits
	total   *atomic.Int64
	holders *atomic.Int64

	mu          sync.Mutex
	msgs        []outMsg
	spare       []outMsg
	held        int64 // cost of msgs plus the unwritten part of the writer's batch
	heldMsgs    int
	writing     bool // the writer holds a batch
	closed      bool
	draining    bool  // closeAfterFlush: accept nothing more, write what is held, then close
	drainReason error // set with draining
	backlogged  bool
	notify      []func() // called once when backlogged clears or the queue closes
	wake        chan struct{}

	// writeSince is when the writer's current write call began (unix
	// nanoseconds), 0 between writes: a write that has lasted long means
	// the peer is not reading.
	writeSince atomic.Int64
}

func newSendQueue(lim *Limits, total, holders *atomic.Int64) *sendQueue {
	return &sendQueue{lim: lim, total: total, holders: holders, wake: make(chan struct{}, 1)}
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push appends m. Any goroutine.
func (q *sendQueue) push(m outMsg) queueResult {
	cost := m.cost()
	m.weight = cost // done gives back exactly this, whatever the writer adds (a Dealer's delimiter)
	q.mu.Lock()
	switch {
	case q.closed || q.draining:
		q.mu.Unlock()
		return queueGone
	case q.heldMsgs > 0 && q.held+cost > q.lim.SendQueueBytes:
		q.mu.Unlock()
		return queueFull
	}
	q.msgs = append(q.msgs, m)
	q.held += cost
	if q.heldMsgs++; q.heldMsgs == 1 && q.holders != nil {
		q.holders.Add(1)
	}
	if m.shared == nil && q.total != nil {
		q.total.Add(cost)
	}
	if !q.backlogged && (q.heldMsgs > q.lim.SendHWM || q.held > q.lim.SendHWMBytes) {
		q.backlogged = true
	}
	res := queued
	if q.backlogged {
		res = queuedFull
	}
	q.mu.Unlock()
	q.signal()
	return res
}

// isBacklogged reports whether the queue is above its high-water mark (and
// not yet back under the low-water mark). Any goroutine.
func (q *sendQueue) isBacklogged() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.backlogged
}

// whenWritable arranges for fn to be called once, on some other goroutine,
// when the queue falls below its low-water mark or closes, and reports
// true; when it is not backlogged (or closed) it arranges nothing and
// reports false. Any goroutine.
func (q *sendQueue) whenWritable(fn func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.backlogged || q.closed {
		return false
	}
	q.notify = append(q.notify, fn)
	return true
}

// heldBytes returns the bytes the queue holds. Any goroutine.
func (q *sendQueue) heldBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held
}

// stuck reports whether the writer's current write began before since.
func (q *sendQueue) stuck(since time.Time) bool {
	w := q.writeSince.Load()
	return w != 0 && w < since.UnixNano()
}

// take hands the writer every queued message. ok is false once the queue
// is closed. Writer goroutine.
func (q *sendQueue) take() (batch []outMsg, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, false
	}
	if len(q.msgs) == 0 {
		return nil, true
	}
	batch, q.msgs, q.spare = q.msgs, q.spare[:0], nil
	q.writing = true
	return batch, true
}

// done reports that msgs, part of the writer's batch, left the queue
// (written, or lost with their connection). Writer goroutine.
func (q *sendQueue) done(msgs []outMsg) {
	var cost int64
	for _, m := range msgs {
		c := m.weight
		cost += c
		if m.shared != nil {
			m.shared.release()
		} else if q.total != nil {
			q.total.Add(-c)
		}
	}
	q.mu.Lock()
	q.held -= cost
	if q.heldMsgs -= len(msgs); q.heldMsgs == 0 && len(msgs) > 0 && q.holders != nil {
		q.holders.Add(-1)
	}
	var fire []func()
	if q.backlogged && q.heldMsgs <= q.lim.SendHWM/2 && q.held <= q.lim.SendHWMBytes/2 {
		q.backlogged = false
		fire, q.notify = q.notify, nil
	}
	q.mu.Unlock()
	for _, fn := range fire {
		fn()
	}
}

// finish gives a batch's backing array back for reuse once the writer is
// through with it. It reports whether the queue is draining and, if so,
// whether nothing is left to write: then the writer must close the
// connection. Writer goroutine.
func (q *sendQueue) finish(batch []outMsg) (draining, flushed bool) {
	clear(batch) // drop frame references for the GC
	q.mu.Lock()
	defer q.mu.Unlock()
	q.spare = batch[:0]
	q.writing = false
	return q.draining, q.draining && len(q.msgs) == 0
}

// drain makes the queue accept nothing more and reports what it still
// holds: the writer writes that, then closes (finish). Only the first call
// (before close) counts. Any goroutine.
func (q *sendQueue) drain(reason error) (started bool, queued int, writing bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.draining {
		return false, 0, false
	}
	q.draining, q.drainReason = true, reason
	return true, len(q.msgs), q.writing
}

// close discards what is queued (a batch the writer holds is its to
// finish) and wakes the writer and whoever waits for the queue to become
// writable. Idempotent. Any goroutine.
func (q *sendQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	msgs := q.msgs
	q.msgs = nil
	fire := q.notify
	q.notify = nil
	q.mu.Unlock()
	q.done(msgs)
	for _, fn := range fire {
		fn()
	}
	q.signal()
}

// idle reports whether nothing is queued or being written.
func (q *sendQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed || len(q.msgs) == 0 && !q.writing
}

// writeChunk is the most a writer hands one vectored write: progress is
// reported (and the write deadline refreshed) at least that often, so a
// peer that reads slowly but steadily is never taken for one that stopped.
const writeChunk = 256 << 10

// writeAll writes batch over c in chunks, reporting each to q, and returns
// how many non-command messages it wrote. On an error the rest of the
// batch is reported done too (lost with the connection). Writer goroutine.
func (q *sendQueue) writeAll(w *batchWriter, c net.Conn, batch []outMsg, timeout time.Duration) (msgs int, err error) {
	for i := 0; i < len(batch); {
		j, size := i, int64(0)
		for j < len(batch) && (j == i || size < writeChunk) {
			size += batch[j].weight
			j++
		}
		q.writeSince.Store(time.Now().UnixNano())
		n, err := w.write(c, batch[i:j], timeout)
		q.writeSince.Store(0)
		if err != nil {
			q.done(batch[i:])
			return msgs, err
		}
		msgs += n
		q.done(batch[i:j])
		i = j
	}
	return msgs, nil
}

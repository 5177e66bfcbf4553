package jsrt

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moebius-js/moebius-js/flow"
)

// Retiring a worker stuck in a native call.
//
// The watchdog's interrupt is seen between JavaScript instructions, so a
// step inside a long native call ('x'.repeat(2**29), new
// Array(1e8).fill(0), a huge JSON.stringify, a Go function that blocks)
// holds its worker's goroutine, and every client pinned to it, until the
// call returns. When a guarded call is still running stuckAfter(budget)
// after its first interrupt (three step budgets, at least a second;
// watchdog.go), the worker is retired:
//
//   - Its gate shuts. Whatever the stuck goroutine does once the native
//     call returns reaches no one: sends, broadcasts, dials and dealer
//     sends through the gate are refused, and the goroutine ends itself
//     (runtime.Goexit) at the next place it would act for the worker: the
//     end of the guarded call, the start of the next, a posted event, a
//     job's Start or Finish. It touches only its own worker's state until
//     then, which nothing else reads any more.
//   - A successor is loaded on the retiring goroutine (the old watchdog's)
//     from the sources of the live generation (not the files as they are
//     now), the way New loads before any goroutine runs, and takes the
//     slot: the same clients (as the transport reported them, from the
//     slot's own table), with client.state empty, and every event from
//     then on.
//   - The slot's ledger says what its clients have in flight. A request
//     that had run JavaScript on the old worker (its custom route, or its
//     handler, running or parked) gets one runaway_handler reply, in its
//     envelope, before the successor runs anything. One that had not
//     (still waiting in the inbox or in its client's queue) is handed to
//     the successor and runs there, in order, as a queued request does
//     after a runaway step.
//   - The upstream connections it opened (dealer(), request()'s pool) are
//     closed, its scheduler counters carry over to the successor's, and the
//     retirement is logged at WARN and counted (Counters.WorkersRetired).
//
// Work that belonged to the old runtime alone ends with it: background()
// restarts on the successor, server.spawn tasks are gone. Once the server
// is shutting down nothing is retired: Shutdown's own hard deadline
// abandons a stuck worker then.
//
// An abandoned goroutine still holds a CPU and what its call allocates
// until the call returns, so a client repeating such a call could pile
// them up. At most as many abandoned goroutines as there are workers may
// be still running at once; past that a stuck worker stays stuck (as it
// would without retirement), and the watchdog asks again every
// stuckAfter(budget) until one of them has ended.

// errRetired is what a retired worker's sends and dials fail with.
var errRetired = errors.New("this worker was retired: it was stuck in a native call")

// slot is one worker position: a share of the client identities, the
// worker serving them now, and what those clients have in flight, which
// outlives a retired worker. Its fields are guarded by mu.
type slot struct {
	mu         sync.Mutex
	w          *worker             // the worker serving the slot
	clients    map[string]connInfo // connected identities pinned here, with their connections
	head, tail *ticket             // requests handed to w and not yet settled, oldest first
}

// current returns the worker serving the slot. Any goroutine.
func (s *slot) current() *worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w
}

// link appends t to the ledger. s.mu held.
func (s *slot) link(t *ticket) {
	t.prev, t.listed = s.tail, true
	if s.tail != nil {
		s.tail.next = t
	} else {
		s.head = t
	}
	s.tail = t
}

// unlink takes t out of the ledger, if it is there. s.mu held.
func (s *slot) unlink(t *ticket) {
	if !t.listed {
		return
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		s.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		s.tail = t.prev
	}
	t.prev, t.next, t.listed = nil, nil, false
}

// ticket is one client message handed to a slot's worker, in the slot's
// ledger until the worker settles it (it needs no answer any more) or the
// worker is retired. Its first fields never change once it is posted.
type ticket struct {
	id     string
	conn   uint64
	env    [][]byte
	frames [][]byte
	hold   flow.Hold

	held  atomic.Bool  // hold not yet released: whoever swaps it to false releases it
	phase atomic.Int32 // how far the worker got with it (the phase constants)

	prev, next *ticket // in the slot's ledger, guarded by its mu
	listed     bool
}

// How far a worker got with a ticket. A retired worker's tickets in
// phaseWaiting or phaseQueued have run no JavaScript and move to its
// successor; the others get the runaway_handler reply.
const (
	phaseWaiting int32 = iota // posted, not yet taken by the worker
	phaseRouting              // routed by a custom route(), which ran JavaScript: it stays here until it starts
	phaseQueued               // routed by the default router (no JavaScript), waiting in its client's queue
	phaseStarted              // its handler started
)

func newTicket(id string, conn uint64, env, frames [][]byte, hold flow.Hold) *ticket {
	t := &ticket{id: id, conn: conn, env: env, frames: frames, hold: hold}
	t.held.Store(true)
	return t
}

// releaseHold gives the message's room on its client's inbound account
// back, once, whoever calls it first. Any goroutine.
func (t *ticket) releaseHold() {
	if t.held.CompareAndSwap(true, false) {
		t.hold.Release()
	}
}

// moved is a fresh ticket for the same message, holding its hold if t
// still did, for a retired worker's successor.
func (t *ticket) moved() *ticket {
	n := &ticket{id: t.id, conn: t.conn, env: t.env, frames: t.frames}
	if t.held.CompareAndSwap(true, false) {
		n.hold = t.hold
		n.held.Store(true)
	}
	return n
}

// settle takes t out of the slot's ledger: it is answered, or needs no
// answer. A retired worker settles nothing: the retirement answers what
// was left. Scheduler goroutine.
func (w *worker) settle(t *ticket) {
	if !w.gate.enter() {
		w.exitIfRetired()
		return
	}
	s := w.slot
	s.mu.Lock()
	s.unlink(t)
	s.mu.Unlock()
	w.gate.leave()
}

// exitIfRetired ends the calling goroutine, the worker's own, when the
// worker was retired: it must not act for the worker any more. Scheduler
// goroutine of w only.
func (w *worker) exitIfRetired() {
	if w.gate.isShut() {
		runtime.Goexit() // deferred calls run: the watchdog's end, run's close(done)
	}
}

// post runs fn on the worker's goroutine, unless the worker is retired by
// then. It reports false when the scheduler refused it (it has stopped).
// Any goroutine.
func (w *worker) post(fn func()) bool {
	return w.sched.Post(func() {
		w.exitIfRetired()
		fn()
	})
}

// gate lets a worker's effects on the world through until it is shut.
// The worker's goroutine brackets each effect with enter and leave (an
// effect never blocks); shut waits for the one under way, so nothing
// passes after it returns.
type gate struct {
	mu   sync.RWMutex
	shut atomic.Bool
}

// enter reports whether the gate is open; if so the caller must leave.
func (g *gate) enter() bool {
	g.mu.RLock()
	if g.shut.Load() {
		g.mu.RUnlock()
		return false
	}
	return true
}

func (g *gate) leave() { g.mu.RUnlock() }

// close shuts the gate for good. Any goroutine.
func (g *gate) close() {
	g.mu.Lock()
	g.shut.Store(true)
	g.mu.Unlock()
}

func (g *gate) isShut() bool { return g.shut.Load() }

// gatedSender is the Host's Sender as one worker sees it: nothing goes
// through once that worker's gate is shut.
type gatedSender struct {
	out  Sender
	gate *gate
}

func (s gatedSender) SendConn(id string, conn uint64, frames ...[]byte) (bool, error) {
	if !s.gate.enter() {
		return false, errRetired
	}
	defer s.gate.leave()
	return s.out.SendConn(id, conn, frames...)
}

func (s gatedSender) ReplyConn(id string, conn uint64, env [][]byte, frames ...[]byte) (bool, error) {
	if !s.gate.enter() {
		return false, errRetired
	}
	defer s.gate.leave()
	return s.out.ReplyConn(id, conn, env, frames...)
}

func (s gatedSender) Broadcast(frame []byte, to []Target) int {
	if !s.gate.enter() {
		return 0
	}
	defer s.gate.leave()
	return s.out.Broadcast(frame, to)
}

func (s gatedSender) WhenWritable(id string, conn uint64, fn func()) bool {
	if !s.gate.enter() {
		return false
	}
	defer s.gate.leave()
	return s.out.WhenWritable(id, conn, fn)
}

func (s gatedSender) DisconnectConn(id string, conn uint64) bool {
	if !s.gate.enter() {
		return false
	}
	defer s.gate.leave()
	return s.out.DisconnectConn(id, conn)
}

// gatedCluster is the Host's Cluster as one worker sees it: nothing goes
// across once the worker is retired, and the subscriptions it made are
// closed with it (closeAll), as trackingDialer closes its connections.
type gatedCluster struct {
	c    Cluster
	gate *gate

	mu     sync.Mutex
	subs   map[*func()]struct{} // the unsubscribes of the open subscriptions
	closed bool                 // closeAll ran
}

func newGatedCluster(c Cluster, g *gate) *gatedCluster {
	return &gatedCluster{c: c, gate: g, subs: map[*func()]struct{}{}}
}

// through runs f, unless the worker was retired. Its worker's goroutine.
func (gc *gatedCluster) through(f func() error) error {
	if !gc.gate.enter() {
		return errRetired
	}
	defer gc.gate.leave()
	return f()
}

func (gc *gatedCluster) Broadcast(frame []byte) error {
	return gc.through(func() error { return gc.c.Broadcast(frame) })
}

func (gc *gatedCluster) Send(id string, frames [][]byte) error {
	return gc.through(func() error { return gc.c.Send(id, frames) })
}

func (gc *gatedCluster) Publish(subject string, payload []byte) error {
	return gc.through(func() error { return gc.c.Publish(subject, payload) })
}

// Subscribe subscribes, keeping the subscription to close it if the worker
// is retired; the unsubscribe it returns may be called more than once.
func (gc *gatedCluster) Subscribe(subject string, deliver func(string, []byte)) (func(), error) {
	if gc.gate.isShut() {
		return nil, errRetired
	}
	unsubscribe, err := gc.c.Subscribe(subject, deliver)
	if err != nil {
		return nil, err
	}
	once := sync.OnceFunc(unsubscribe)
	key := &once
	gc.mu.Lock()
	if gc.closed {
		gc.mu.Unlock()
		once()
		return nil, errRetired
	}
	gc.subs[key] = struct{}{}
	gc.mu.Unlock()
	return func() {
		gc.mu.Lock()
		delete(gc.subs, key)
		gc.mu.Unlock()
		once()
	}, nil
}

// closeAll ends every subscription still open, and any made later. Any
// goroutine, once the gate is shut.
func (gc *gatedCluster) closeAll() {
	gc.mu.Lock()
	gc.closed = true
	subs := gc.subs
	gc.subs = nil
	gc.mu.Unlock()
	for unsubscribe := range subs {
		(*unsubscribe)()
	}
}

// trackingDialer is the Host's Dialer as one worker sees it: it keeps what
// the worker opened, to close it all when the worker is retired, and opens
// nothing once the worker's gate is shut.
type trackingDialer struct {
	d    Dialer
	gate *gate

	mu     sync.Mutex
	open   map[*trackedUpstream]struct{}
	closed bool // closeAll ran
}

func newTrackingDialer(d Dialer, g *gate) *trackingDialer {
	return &trackingDialer{d: d, gate: g, open: make(map[*trackedUpstream]struct{})}
}

// Dial is the wrapped Dialer's, outside the gate (a dial may block: that
// is one way a worker gets stuck). Its worker's goroutine, or the one
// loading its code.
func (td *trackingDialer) Dial(endpoint string, opts DialOptions, onMessage func([][]byte)) (Upstream, error) {
	if td.gate.isShut() {
		return nil, errRetired
	}
	up, err := td.d.Dial(endpoint, opts, onMessage)
	if err != nil {
		return nil, err // as the Dialer says it: dealer() and request() name the address
	}
	u := &trackedUpstream{up: up, td: td}
	td.mu.Lock()
	if td.closed {
		td.mu.Unlock()
		up.Close() // opened by a call that returned after its worker was retired
		return nil, errRetired
	}
	td.open[u] = struct{}{}
	td.mu.Unlock()
	return u, nil
}

// closeAll closes every connection still open, and any opened later. Any
// goroutine, once the gate is shut.
func (td *trackingDialer) closeAll() int {
	td.mu.Lock()
	td.closed = true
	open := td.open
	td.open = nil
	td.mu.Unlock()
	for u := range open {
		u.once.Do(u.up.Close)
	}
	return len(open)
}

// trackedUpstream is one connection a worker opened.
type trackedUpstream struct {
	up   Upstream
	td   *trackingDialer
	once sync.Once // closes up
}

func (u *trackedUpstream) Send(frames ...[]byte) error {
	if !u.td.gate.enter() {
		return errRetired
	}
	defer u.td.gate.leave()
	return u.up.Send(frames...)
}

func (u *trackedUpstream) Close() {
	u.td.mu.Lock()
	delete(u.td.open, u)
	u.td.mu.Unlock()
	u.once.Do(u.up.Close)
}

// retire replaces old, whose goroutine is stuck in guarded call number
// call, interrupted stuckAfter(budget) ago and still running (owner is
// whom it runs for, ran how long), with a fresh worker in its slot, and
// reports whether it did. It declines once the server is shutting down,
// when old no longer serves its slot, while as many retired workers as
// there are slots are still in their calls, when the successor's code does
// not load (old then stays, as it would have without retirement), or when
// the call ended while the successor loaded (old has recovered). The old
// watchdog's goroutine.
func (h *Host) retire(old *worker, owner string, ran time.Duration, call uint64) bool {
	s := old.slot
	h.mu.Lock()
	stopped, gen, src := h.stopped, h.gen, h.sources
	h.mu.Unlock()
	if stopped || s.current() != old {
		return false
	}
	who := owner
	if who == "" {
		who = "(none)" // background work, or code run for no client
	}
	if n := h.abandoned.Load(); n >= int64(len(h.slots)) {
		h.lim.Log(h.log, slog.LevelError, "worker_not_retired", fmt.Sprint(old.idx),
			"a worker is stuck in a native call and is not replaced yet: as many retired workers as there are workers are still in theirs",
			"worker", old.idx, "client", who, "ran", ran, "abandoned", n)
		return false
	}
	fresh := h.newWorker(old.idx, s)
	rt, err := load(h.cfg.Handlers, fresh, gen, src)
	if err != nil {
		h.lim.Log(h.log, slog.LevelError, "worker_not_retired", fmt.Sprint(old.idx),
			"a worker is stuck in a native call and cannot be replaced: its successor's code did not load",
			"worker", old.idx, "client", who, "ran", ran, "error", err.Error())
		return false
	}
	fresh.rt = rt

	h.lifecycle.Lock() // no reload makes a generation live, and Shutdown does not begin, meanwhile
	defer h.lifecycle.Unlock()
	h.mu.Lock()
	stopped, live, liveSrc := h.stopped, h.gen, h.sources
	h.mu.Unlock()
	if stopped || h.abandoned.Load() >= int64(len(h.slots)) || // another slot's retirement came first
		!old.dog.running(call) { // the call returned while fresh loaded: old serves on
		rt.life.scope.close() // what its top level opened; no goroutine runs it
		return false
	}

	old.gate.close() // from here on nothing old does reaches anyone
	fresh.out = gatedSender{h.out, &fresh.gate}
	fresh.dog = newWatchdog(fresh.budget, func(owner string, ran time.Duration, call uint64) bool {
		return h.retire(fresh, owner, ran, call)
	})
	fresh.sched.Stats().CarryOver(old.sched.Stats())
	if live != gen { // a reload made a newer generation live while fresh loaded
		fresh.sched.Post(func() { fresh.reloadTo(live, liveSrc) })
	}

	type answer struct {
		t         *ticket
		connected bool
	}
	var answers []answer
	moved := 0
	s.mu.Lock()
	s.w = fresh // every event from now on goes to fresh, in order after what moves below
	for id, ci := range s.clients {
		fresh.clients[id] = newClient(id, ci)
	}
	t := s.head
	s.head, s.tail = nil, nil
	for t != nil {
		next := t.next
		t.prev, t.next, t.listed = nil, nil, false
		switch t.phase.Load() {
		case phaseWaiting, phaseQueued: // no JavaScript ran for it: it runs on fresh
			n := t.moved()
			s.link(n)
			fresh.sched.Post(func() { fresh.message(n) })
			moved++
		default:
			answers = append(answers, answer{t, s.clients[t.id].conn == t.conn})
		}
		t = next
	}
	clients := len(s.clients)
	s.mu.Unlock()

	// The replies go out before fresh runs, so that each client gets them
	// before anything fresh answers.
	reply := errorReply(CodeRunaway, fmt.Sprintf("%v (%v) inside a native call the interrupt cannot stop; "+
		"the worker serving this request was replaced", errStepBudget, h.cfg.StepBudget))
	h.retired.Add(1) // counted before its replies go out: whoever gets one sees it counted
	for _, a := range answers {
		a.t.releaseHold()
		h.errorReplies[CodeRunaway].Add(1)
		if a.connected {
			if _, err := h.out.ReplyConn(a.t.id, a.t.conn, a.t.env, reply); err != nil {
				h.log.Debug("runaway_handler reply of a retired worker not delivered", "error", err)
			}
		}
	}
	closed := 0
	if old.up.tracker != nil {
		closed = old.up.tracker.closeAll()
	}
	if old.cluster != nil {
		old.cluster.closeAll()
	}
	old.sched.Post(old.exitIfRetired) // ends its goroutine now if it is idle by then, else when the call returns
	h.abandoned.Add(1)                // under lifecycle, as the check above
	close(old.retired)
	go func() { // its goroutine has ended: so has the watch on it
		<-old.done
		h.abandoned.Add(-1)
		old.dog.stop()
	}()
	h.log.Warn("worker retired: a step ran past its budget inside a native call the interrupt cannot stop; its clients move to a fresh worker",
		"worker", old.idx, "client", who, "ran", ran, "clients", clients, "failed", len(answers), "moved", moved,
		"connections_closed", closed, "gen", live)
	go fresh.run()
	return true
}

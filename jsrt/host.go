package jsrt

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moebius-js/moebius-js/core"
)

// Sender delivers messages to connected peers; the transport implements it.
// A peer is one connection (an identity and the connection's serial), so
// that nothing meant for a client reaches a later connection that reuses
// its identity.
type Sender interface {
	// SendConn queues one message for that connection (conn 0: whichever
	// connection holds the identity). It fails when the connection is gone.
	// Any goroutine; never blocks.
	SendConn(id string, conn uint64, frames ...[]byte) error
	// DisconnectConn closes that connection. Any goroutine.
	DisconnectConn(id string, conn uint64) bool
}

// Config sets up a Host. Zero values take the defaults.
type Config struct {
	Handlers   string        // path to handlers.js (default "handlers.js")
	Workers    int           // scheduler goroutines, each with its own runtime (default 1)
	StepBudget time.Duration // longest a step may run before it is interrupted (default 1s)
	QueueLimit int           // requests a client may queue behind its running one (default 100)
	Dialer     Dialer        // connects dealer() and request() to other servers (nil: they throw)
	Logger     *slog.Logger  // default slog.Default()
}

// Defaults for Config's zero values.
const (
	DefaultHandlers   = "handlers.js"
	DefaultStepBudget = time.Second
)

// Host runs handlers.js on one or more workers and routes each client's
// events to the worker its identity is pinned to.
type Host struct {
	cfg     Config
	log     *slog.Logger
	workers []*worker

	mu      sync.Mutex // guards gen, files, started, stopped; serialises reloads
	gen     int
	files   []string
	started bool
	stopped bool

	gates sync.Map // identity -> *gate of its current connection

	reloads, reloadFailures atomic.Uint64
	errorReplies            map[string]*atomic.Uint64 // by error code; the map itself never changes
}

// errorCodes are every code of the JSON error reply.
var errorCodes = []string{CodeInvalidJSON, CodeMissingCommand, CodeUnknownCommand, CodeNoRoute,
	CodeQueueFull, CodeHandlerError, CodeRunaway, CodeShuttingDown}

// ErrorCodes lists every code of the JSON error reply. Any goroutine.
func ErrorCodes() []string { return slices.Clone(errorCodes) }

// Counters are a Host's totals since New.
type Counters struct {
	Reloads        uint64            // successful reloads
	ReloadFailures uint64            // reloads refused for an error in handlers.js
	Errors         map[string]uint64 // failed requests by error code (whether a hook or the default reply answered them)
}

// ErrorReplies returns how many requests failed with code so far. Any
// goroutine.
func (h *Host) ErrorReplies(code string) uint64 {
	if n := h.errorReplies[code]; n != nil {
		return n.Load()
	}
	return 0
}

// Counters returns the Host's totals. Any goroutine.
func (h *Host) Counters() Counters {
	c := Counters{Reloads: h.reloads.Load(), ReloadFailures: h.reloadFailures.Load(), Errors: map[string]uint64{}}
	for code, n := range h.errorReplies {
		c.Errors[code] = n.Load()
	}
	return c
}

// New loads handlers.js into every worker and returns a Host ready to
// Start. The error names the file, line and column of what is wrong. Any
// goroutine.
func New(cfg Config) (*Host, error) {
	if cfg.Handlers == "" {
		cfg.Handlers = DefaultHandlers
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.StepBudget <= 0 {
		cfg.StepBudget = DefaultStepBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Host{cfg: cfg, log: cfg.Logger, gen: 1, errorReplies: map[string]*atomic.Uint64{}}
	for _, code := range errorCodes {
		h.errorReplies[code] = new(atomic.Uint64)
	}
	for i := 0; i < cfg.Workers; i++ {
		log := cfg.Logger
		if cfg.Workers > 1 {
			log = log.With("worker", i)
		}
		w := &worker{
			idx:          i,
			host:         h,
			budget:       cfg.StepBudget,
			log:          log,
			old:          make(map[*jsRuntime]struct{}),
			dialer:       cfg.Dialer,
			pool:         make(map[string]*upstreamPool),
			clients:      make(map[string]*client),
			clientSpawns: make(map[*client]spawned),
			drained:      make(chan struct{}),
			done:         make(chan struct{}),
		}
		w.sched = core.New(core.Config{
			QueueLimit: cfg.QueueLimit,
			OnPanic: func(where string, v any) {
				w.log.Error("bug: panic in scheduler callback", "where", where, "panic", fmt.Sprint(v))
			},
		})
		rt, err := load(cfg.Handlers, w, h.gen)
		if err != nil {
			return nil, err
		}
		w.rt = rt
		h.files = rt.files
		h.workers = append(h.workers, w)
	}
	return h, nil
}

// Start starts the workers' scheduler goroutines and the background
// generators, sending through out. Any goroutine, once.
func (h *Host) Start(out Sender) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return
	}
	h.started = true
	for _, w := range h.workers {
		w.out = out
		w.dog = newWatchdog(w.budget)
		go w.run()
	}
	h.log.Info("handlers loaded", "file", h.cfg.Handlers, "gen", h.gen, "workers", len(h.workers))
}

// pick returns the worker a client identity is pinned to.
func (h *Host) pick(id string) *worker {
	if len(h.workers) == 1 {
		return h.workers[0]
	}
	hash := uint32(2166136261) // FNV-1a, inline: no allocation per message
	for i := 0; i < len(id); i++ {
		hash = (hash ^ uint32(id[i])) * 16777619
	}
	return h.workers[hash%uint32(len(h.workers))]
}

// broadcast sends frame to every client of every worker: from's own at
// once, the others' on their scheduler goroutines. Scheduler goroutine of
// from.
func (h *Host) broadcast(from *worker, frame []byte) {
	for _, w := range h.workers {
		if w == from {
			for _, c := range w.clients {
				w.sendQuietly(c, frame)
			}
			continue
		}
		w.sched.Post(func() {
			for _, c := range w.clients {
				w.sendQuietly(c, frame)
			}
		})
	}
}

// Connected reports a new client connection. Any goroutine; calls for one
// identity must come in order (Connected, Message*, Disconnected).
func (h *Host) Connected(id string, conn uint64) {
	g := newGate(conn)
	h.mu.Lock()
	if h.stopped {
		g.close()
	}
	h.gates.Store(id, g) // under mu: Shutdown closes every gate stored before it stops
	h.mu.Unlock()
	w := h.pick(id)
	w.sched.Post(func() { w.connected(id, conn) })
}

// Message hands over one message from a client; the Host owns frames. Any
// goroutine, in order per identity. It blocks while the client already has
// InboxPerClient messages waiting for its worker, so that a client cannot
// pile up messages while its worker is busy: its connection is simply not
// read, and TCP slows it down.
func (h *Host) Message(id string, conn uint64, frames [][]byte) {
	var g *gate
	if v, ok := h.gates.Load(id); ok && v.(*gate).conn == conn {
		g = v.(*gate)
		g.acquire()
	}
	w := h.pick(id)
	w.sched.Post(func() {
		w.message(id, conn, frames)
		if g != nil {
			g.release()
		}
	})
}

// Disconnected reports that a client connection ended: its task is
// cancelled and its queue freed. Any goroutine, in order per identity.
func (h *Host) Disconnected(id string, conn uint64) {
	if v, ok := h.gates.Load(id); ok && v.(*gate).conn == conn {
		v.(*gate).close()
		h.gates.CompareAndDelete(id, v)
	}
	w := h.pick(id)
	w.sched.Post(func() { w.disconnected(id, conn) })
}

// InboxPerClient is how many of one client's messages may wait for its
// worker to take them in before reading from that client pauses.
const InboxPerClient = 16

// gate counts one connection's messages posted to its worker and not yet
// taken in.
type gate struct {
	conn   uint64
	mu     sync.Mutex
	cond   sync.Cond
	n      int
	closed bool // the connection ended, or the host stopped: never block
}

func newGate(conn uint64) *gate {
	g := &gate{conn: conn}
	g.cond.L = &g.mu
	return g
}

// acquire waits for room for one more message. Transport reader goroutine.
func (g *gate) acquire() {
	g.mu.Lock()
	for g.n >= InboxPerClient && !g.closed {
		g.cond.Wait()
	}
	g.n++
	g.mu.Unlock()
}

// release frees a message's room. Scheduler goroutine.
func (g *gate) release() {
	g.mu.Lock()
	g.n--
	g.mu.Unlock()
	g.cond.Signal()
}

// close lets every waiter through, now and later. Any goroutine.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cond.Broadcast()
}

// Files lists the files the live generation loaded. Any goroutine.
func (h *Host) Files() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.files...)
}

// Generation returns the live generation's number (1 for the first load).
// Any goroutine.
func (h *Host) Generation() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// Reload evaluates handlers.js afresh for every worker. If that fails, the
// error (with file:line:col) is logged and returned, and the old code keeps
// serving. Otherwise new requests, and queued ones when they start, go to the
// new code, work in flight finishes on the code it started on, and the
// background generator restarts. Any goroutine.
func (h *Host) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return errors.New("reload: the server is shutting down")
	}
	gen := h.gen + 1
	rts := make([]*jsRuntime, 0, len(h.workers))
	for _, w := range h.workers {
		rt, err := load(h.cfg.Handlers, w, gen)
		if err != nil {
			for _, loaded := range rts {
				loaded.scope.close() // never used: close what their top level opened
			}
			h.reloadFailures.Add(1)
			h.log.Error("reload failed; still serving the previous code", "gen", h.gen, "error", err.Error())
			return err
		}
		rts = append(rts, rt)
	}
	h.reloads.Add(1)
	h.gen, h.files = gen, rts[0].files
	for i, w := range h.workers {
		rt := rts[i]
		w.sched.Post(func() { w.swap(rt) })
	}
	h.log.Info("handlers reloaded", "file", h.cfg.Handlers, "gen", gen)
	return nil
}

// Shutdown stops taking requests, lets the work in flight finish for up to
// grace, cancels what is left and stops the workers. It returns once every
// scheduler goroutine has ended. Any goroutine, once Start has run.
func (h *Host) Shutdown(grace time.Duration) {
	h.mu.Lock()
	if h.stopped || !h.started {
		h.stopped = true
		h.mu.Unlock()
		return
	}
	h.stopped = true
	h.mu.Unlock()

	for _, w := range h.workers {
		w.sched.Post(w.beginDrain)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
waiting:
	for _, w := range h.workers {
		select {
		case <-w.drained:
		case <-timer.C:
			break waiting
		}
	}
	for _, w := range h.workers {
		w.sched.Post(func() {
			w.sched.CancelAll(errShutdown)
			w.closeConnections()
			w.sched.Stop()
		})
	}
	for _, w := range h.workers {
		<-w.done
		w.dog.stop()
	}
	// Nothing takes messages in any more: readers must not wait for it.
	h.mu.Lock()
	h.gates.Range(func(_, v any) bool {
		v.(*gate).close()
		return true
	})
	h.mu.Unlock()
}

// errShutdown ends the work still running (or queued) when the grace
// period is over; its clients get the shutting_down reply.
var errShutdown = errors.New("the server is shutting down")

// Stats returns each worker's scheduler counters. Any goroutine.
func (h *Host) Stats() []*core.Stats {
	out := make([]*core.Stats, len(h.workers))
	for i, w := range h.workers {
		out[i] = w.sched.Stats()
	}
	return out
}

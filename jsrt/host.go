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
	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/lograte"
)

// Sender delivers messages to connected peers; the transport implements it.
// A peer is one connection (an identity and the connection's serial), so
// that nothing meant for a client reaches a later connection that reuses
// its identity. Every method may be called from any goroutine and never
// blocks.
type Sender interface {
	// SendConn queues one message for that connection (conn 0: whichever
	// connection holds the identity). It fails when the connection is gone.
	// backlogged reports that the connection's send queue is now above
	// its high-water mark: generators that sent to it wait (WhenWritable).
	// The message carries the envelope of the latest message from that
	// connection: what a message that answers no particular request
	// carries.
	SendConn(id string, conn uint64, frames ...[]byte) (backlogged bool, err error)
	// ReplyConn is SendConn carrying env, the envelope of the request
	// being answered (nil: none), instead.
	ReplyConn(id string, conn uint64, env [][]byte, frames ...[]byte) (backlogged bool, err error)
	// Broadcast queues one frame for each of the connections to, skipping
	// the backlogged ones, and returns how many it queued.
	Broadcast(frame []byte, to []Target) int
	// WhenWritable arranges for fn to be called once (on another
	// goroutine) when that connection's send queue falls below its
	// low-water mark or the connection ends, and reports true; it reports
	// false, arranging nothing, when the queue is not backlogged.
	WhenWritable(id string, conn uint64, fn func()) bool
	// DisconnectConn closes that connection.
	DisconnectConn(id string, conn uint64) bool
}

// Target names one connection: a client identity and the transport's
// serial of its connection.
type Target struct {
	ID     string
	Serial uint64
}

// Config sets up a Host. Zero values take the defaults.
type Config struct {
	Handlers   string        // path to handlers.js (default "handlers.js")
	Workers    int           // scheduler goroutines, each with its own runtime (default 1)
	StepBudget time.Duration // longest a step may run before it is interrupted (default 1s)
	QueueLimit int           // requests a client may queue behind its running one (default 100)
	Dialer     Dialer        // connects dealer() and request() to other servers (nil: they throw)
	Logger     *slog.Logger  // default slog.Default()

	// MaxSpawned bounds the tasks server.spawn may have running in one
	// worker, MaxSpawnedPerClient those spawned on behalf of one client;
	// past either, server.spawn throws a RangeError. Defaults 10,000 and
	// 100.
	MaxSpawned, MaxSpawnedPerClient int

	// NewClock makes each worker's scheduler clock: what sleep() and the
	// timeouts of recv() and request() count on (default:
	// core.NewSystemClock). Tests give a virtual one. The step budget is
	// always real time.
	NewClock func() core.Clock

	// PoolIdleTimeout is how long one of request()'s connections may stay
	// idle in its pool before it is closed. Default 60s.
	PoolIdleTimeout time.Duration

	// LogLimiter rate-limits the log lines that one client can cause again
	// and again (refused and failed requests). Default: one of the Host's
	// own.
	LogLimiter *lograte.Limiter

	// Instance names this server (cluster.instance in JavaScript; null
	// when empty). Cluster, when set, links it to the other instances of a
	// cluster: unfiltered broadcasts and server.send reach their clients,
	// and cluster.publish/subscribe work.
	Instance string
	Cluster  Cluster

	// OnRequest, when set, hears how long each request took from its
	// start to its end, and its command as Status names it (the rule's
	// command, "(route)" when a custom route() chose its handler,
	// "(refused)" when it got an error reply before any handler ran).
	// Called on the worker's goroutine: it must be quick and not block.
	OnRequest func(command string, took time.Duration)
}

// Defaults for Config's zero values.
const (
	DefaultHandlers            = "handlers.js"
	DefaultStepBudget          = time.Second
	DefaultMaxSpawned          = 10_000
	DefaultMaxSpawnedPerClient = 100
	DefaultPoolIdleTimeout     = time.Minute
)

// Host runs handlers.js on one or more workers and routes each client's
// events to the worker its identity is pinned to. Each worker serves a
// slot; a worker stuck in a native call is retired and a fresh one takes
// its slot over (retire.go).
type Host struct {
	cfg   Config
	log   *slog.Logger
	slots []*slot // fixed at New; the worker in each may change
	out   Sender  // set by Start

	mu        sync.Mutex // guards gen, files, sources, started, stopped
	reloading sync.Mutex // serialises reloads
	lifecycle sync.Mutex // serialises a retirement with making a generation live and with the start of Shutdown
	gen       int
	files     []string
	sources   map[string][]byte // what the live generation loaded, for a retired worker's successor
	started   bool
	stopped   bool

	lim *lograte.Limiter

	reloads, reloadFailures atomic.Uint64
	authorizes              atomic.Bool               // the live code exports authorize()
	retired                 atomic.Uint64             // workers retired for a step stuck in a native call
	abandoned               atomic.Int64              // retired workers whose goroutine has not ended yet
	backpressure            atomic.Uint64             // generator steps that waited for a backlogged client
	spawnRefused            atomic.Uint64             // server.spawn calls refused by a bound
	subscriberDropped       atomic.Uint64             // cluster messages dropped: their subscriber was behind by maxPendingDeliveries
	errorReplies            map[string]*atomic.Uint64 // by error code; the map itself never changes
	history                 history                   // recent errors and loads (history.go)
}

// errorCodes are every code of the JSON error reply.
var errorCodes = []string{CodeInvalidJSON, CodeMissingCommand, CodeUnknownCommand, CodeNoRoute,
	CodeQueueFull, CodeHandlerError, CodeRunaway, CodeShuttingDown}

// ErrorCodes lists every code of the JSON error reply. Any goroutine.
func ErrorCodes() []string { return slices.Clone(errorCodes) }

// Counters are a Host's totals since New.
type Counters struct {
	Reloads           uint64            // successful reloads
	ReloadFailures    uint64            // reloads refused for an error in handlers.js
	Backpressure      uint64            // generator steps that waited for a backlogged client to drain
	SpawnRefused      uint64            // server.spawn calls refused by MaxSpawned or MaxSpawnedPerClient
	WorkersRetired    uint64            // workers replaced because a step was stuck in a native call past its budget
	SubscriberDropped uint64            // cluster messages dropped for a subscriber already that far behind (maxPendingDeliveries)
	Errors            map[string]uint64 // failed requests by error code (whether a hook or the default reply answered them)
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
	c := Counters{Reloads: h.reloads.Load(), ReloadFailures: h.reloadFailures.Load(),
		Backpressure: h.backpressure.Load(), SpawnRefused: h.spawnRefused.Load(), WorkersRetired: h.retired.Load(),
		SubscriberDropped: h.subscriberDropped.Load(),
		Errors:            map[string]uint64{}}
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
	if cfg.PoolIdleTimeout <= 0 {
		cfg.PoolIdleTimeout = DefaultPoolIdleTimeout
	}
	if cfg.StepBudget <= 0 {
		cfg.StepBudget = DefaultStepBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	limitRegexpMatch(cfg.StepBudget, cfg.Logger) // before load: goja compiles regex literals with the script
	if cfg.MaxSpawned <= 0 {
		cfg.MaxSpawned = DefaultMaxSpawned
	}
	if cfg.MaxSpawnedPerClient <= 0 {
		cfg.MaxSpawnedPerClient = DefaultMaxSpawnedPerClient
	}
	if cfg.LogLimiter == nil {
		cfg.LogLimiter = lograte.New()
	}
	h := &Host{cfg: cfg, log: cfg.Logger, lim: cfg.LogLimiter, gen: 1, errorReplies: map[string]*atomic.Uint64{}}
	for _, code := range errorCodes {
		h.errorReplies[code] = new(atomic.Uint64)
	}
	for i := 0; i < cfg.Workers; i++ {
		s := &slot{clients: make(map[string]connInfo)}
		w := h.newWorker(i, s)
		rt, err := load(cfg.Handlers, w, h.gen, nil)
		if err != nil {
			for _, loaded := range h.slots {
				loaded.w.rt.life.scope.close() // what their top level opened (no goroutine runs them yet)
			}
			return nil, err
		}
		w.rt = rt
		s.w = w
		h.files, h.sources = rt.files, rt.sources
		h.slots = append(h.slots, s)
		h.authorizes.Store(rt.exports.authorize != nil)
	}
	h.history.addLoad(LoadEvent{Time: time.Now(), Generation: h.gen, OK: true})
	return h, nil
}

// newWorker makes the worker number i, to serve s: its scheduler, no
// runtime yet, no goroutine. Any goroutine.
func (h *Host) newWorker(i int, s *slot) *worker {
	cfg := &h.cfg
	log := cfg.Logger
	if cfg.Workers > 1 {
		log = log.With("worker", i)
	}
	w := &worker{
		idx:          i,
		host:         h,
		slot:         s,
		budget:       cfg.StepBudget,
		log:          log,
		old:          make(map[*jsRuntime]struct{}),
		up:           upstreams{pool: make(map[string]*upstreamPool)},
		clients:      make(map[string]*client),
		clientSpawns: make(map[*client]spawned),
		retired:      make(chan struct{}),
		drained:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	if cfg.Cluster != nil {
		w.cluster = newGatedCluster(cfg.Cluster, &w.gate)
	}
	if cfg.Dialer != nil {
		w.up.tracker = newTrackingDialer(cfg.Dialer, &w.gate)
		w.up.dialer = w.up.tracker
	}
	var clock core.Clock
	if cfg.NewClock != nil {
		clock = cfg.NewClock()
	}
	w.sched = core.New(core.Config{
		Clock:      clock,
		QueueLimit: cfg.QueueLimit,
		OnPanic: func(where string, v any) {
			w.log.Error("bug: panic in scheduler callback", "where", where, "panic", fmt.Sprint(v))
		},
	})
	return w
}

// workers returns the worker serving each slot now. Any goroutine.
func (h *Host) workers() []*worker {
	ws := make([]*worker, len(h.slots))
	for i, s := range h.slots {
		ws[i] = s.current()
	}
	return ws
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
	h.out = out
	for _, s := range h.slots {
		w := s.w // no retirement before the watchdogs start
		w.out = gatedSender{out, &w.gate}
		w.dog = newWatchdog(w.budget, func(owner string, ran time.Duration, call uint64) bool {
			return h.retire(w, owner, ran, call)
		})
		go w.run()
	}
	h.log.Info("handlers loaded", "file", h.cfg.Handlers, "gen", h.gen, "workers", len(h.slots))
}

// pick returns the slot a client identity is pinned to.
func (h *Host) pick(id string) *slot {
	if len(h.slots) == 1 {
		return h.slots[0]
	}
	hash := uint32(2166136261) // FNV-1a, inline: no allocation per message
	for i := 0; i < len(id); i++ {
		hash = (hash ^ uint32(id[i])) * 16777619
	}
	return h.slots[hash%uint32(len(h.slots))]
}

// broadcast sends frame to every client of every worker that is not
// backlogged: the others' on their scheduler goroutines, then from's own.
// A retired worker broadcasts nothing. Scheduler goroutine of from.
func (h *Host) broadcast(from *worker, frame []byte) {
	if !from.gate.enter() {
		return // retired: the step's end ends its goroutine (guarded)
	}
	h.postBroadcast(from, frame)
	from.gate.leave()
	from.broadcast(frame) // through its own gate
}

// postBroadcast has every worker but skip broadcast frame to its clients,
// on its own goroutine. Any goroutine.
func (h *Host) postBroadcast(skip *worker, frame []byte) {
	for _, s := range h.slots {
		if w := s.current(); w != skip {
			w.sched.Post(func() { w.broadcast(frame) })
		}
	}
}

// Connected reports a new client connection; publicKey is the CURVE
// public key (Z85) the client proved, "" on a NULL connection. Any
// goroutine; calls for one identity must come in order (Connected,
// Message*, Disconnected).
func (h *Host) Connected(id string, conn uint64, publicKey string) {
	s := h.pick(id)
	ci := connInfo{conn: conn, publicKey: publicKey}
	s.mu.Lock()
	s.clients[id] = ci
	w := s.w
	s.mu.Unlock()
	w.sched.Post(func() { w.connected(id, ci) })
}

// Message hands over one message from a client: its envelope (the frames
// up to and including its first empty frame, nil when it has none), which
// every reply sent while serving it carries back, and its payload. The
// Host owns env, frames and hold, which it releases once the request no longer waits (it starts, or
// is dropped): until then the transport counts it against the client's
// queue_limit and the server-wide bound, and stops reading a connection
// that is out of room. Any goroutine, in order per identity; it never
// blocks.
func (h *Host) Message(id string, conn uint64, env, frames [][]byte, hold flow.Hold) {
	s := h.pick(id)
	t := newTicket(id, conn, env, frames, hold)
	s.mu.Lock()
	s.link(t) // in the ledger until it is answered, so a retirement knows of it
	w := s.w
	s.mu.Unlock()
	if !w.sched.Post(func() { w.message(t) }) { // stopped: it will never run
		t.releaseHold()
		s.mu.Lock()
		s.unlink(t)
		s.mu.Unlock()
	}
}

// Disconnected reports that a client connection ended: its task is
// cancelled and its queue freed. Any goroutine, in order per identity.
func (h *Host) Disconnected(id string, conn uint64) {
	s := h.pick(id)
	s.mu.Lock()
	if s.clients[id].conn == conn {
		delete(s.clients, id)
	}
	w := s.w
	s.mu.Unlock()
	w.sched.Post(func() { w.disconnected(id, conn) })
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
// background generator restarts.
//
// Each worker evaluates the new code on its own scheduler goroutine (a
// runtime is only ever touched there), between two steps, so its clients
// wait for the evaluation as they would for a long step; nothing else
// holds a lock meanwhile. Any goroutine; reloads run one at a time.
func (h *Host) Reload() error {
	h.reloading.Lock()
	defer h.reloading.Unlock()
	h.mu.Lock()
	if h.stopped || !h.started {
		h.mu.Unlock()
		return errors.New("reload: the server is not running")
	}
	gen, live := h.gen+1, h.gen
	h.mu.Unlock()

	n := len(h.slots)
	results := make([]chan loadResult, n)
	ws := make([]*worker, n) // the worker each load was posted to
	post := func(i int) {
		w := h.slots[i].current()
		ch := make(chan loadResult, 1)
		ws[i], results[i] = w, ch
		w.post(func() {
			rt, err := load(h.cfg.Handlers, w, gen, nil)
			ch <- loadResult{rt, err}
		})
	}
	for i := range h.slots {
		post(i)
	}
	rts := make([]*jsRuntime, n)
	var failure error
	for i := range h.slots {
		for {
			res, retired, stopped := awaitLoad(results[i], ws[i])
			if retired { // stuck, and replaced: load on its successor
				post(i)
				continue
			}
			if stopped {
				failure = errors.New("reload: the server is shutting down")
			} else if rts[i] = res.rt; res.err != nil && failure == nil {
				failure = res.err
			}
			break
		}
	}
	if failure != nil {
		for i, rt := range rts {
			if rt != nil { // never used: close what its top level opened, on its worker
				ws[i].post(rt.life.scope.close)
			}
		}
		h.reloadFailures.Add(1)
		h.history.addLoad(LoadEvent{Time: time.Now(), Generation: gen, Error: failure.Error()})
		h.log.Error("reload failed; still serving the previous code", "gen", live, "error", failure.Error())
		return failure
	}
	h.reloads.Add(1)
	h.lifecycle.Lock()
	defer h.lifecycle.Unlock()
	h.mu.Lock()
	h.gen, h.files, h.sources = gen, rts[0].files, rts[0].sources
	h.mu.Unlock()
	h.authorizes.Store(rts[0].exports.authorize != nil)
	for i, s := range h.slots {
		w, rt := s.current(), rts[i]
		if w != ws[i] {
			// Retired since it loaded: its successor runs the previous
			// generation and loads this one from the same sources.
			src := rts[0].sources
			w.post(func() { w.reloadTo(gen, src) })
			continue
		}
		w.post(func() { w.swap(rt) })
	}
	h.history.addLoad(LoadEvent{Time: time.Now(), Generation: gen, OK: true})
	h.log.Info("handlers reloaded", "file", h.cfg.Handlers, "gen", gen)
	return nil
}

// loadResult is what a reload's load on one worker gave.
type loadResult struct {
	rt  *jsRuntime
	err error
}

// awaitLoad waits for the load posted to w: its result; or retired, when w
// was retired meanwhile and the load must go to its successor (this wins
// over w's goroutine having ended, which a retired worker's also does once
// its stuck call returns); or stopped, when w's goroutine ended because
// the server is shutting down. Reload's goroutine.
func awaitLoad(result <-chan loadResult, w *worker) (res loadResult, retired, stopped bool) {
	select {
	case res = <-result:
		return res, false, false
	case <-w.retired:
		return res, true, false
	case <-w.done:
		select {
		case <-w.retired:
			return res, true, false
		default:
			return res, false, true
		}
	}
}

// Shutdown stops taking requests, lets the work in flight finish for up to
// grace, cancels what is left and stops the workers. It returns once every
// scheduler goroutine has ended, or at a hard deadline (five step budgets,
// at least a second, after the grace period) for a worker stuck in a
// native call. No worker is retired once it has begun; one retired before
// is not waited for. Any goroutine, once Start has run.
func (h *Host) Shutdown(grace time.Duration) {
	h.lifecycle.Lock()
	h.mu.Lock()
	if h.stopped || !h.started {
		h.stopped = true
		h.mu.Unlock()
		h.lifecycle.Unlock()
		return
	}
	h.stopped = true
	h.mu.Unlock()
	workers := h.workers() // no retirement changes them from now on
	h.lifecycle.Unlock()

	for _, w := range workers {
		w.sched.Post(w.beginDrain)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
waiting:
	for _, w := range workers {
		select {
		case <-w.drained:
		case <-timer.C:
			break waiting
		}
	}
	for _, w := range workers {
		w.sched.Post(func() {
			w.sched.CancelAll(errShutdown)
			w.closeConnections()
			w.sched.Stop()
		})
	}
	// A worker stuck in a native call (one the watchdog's interrupt cannot
	// reach) would hold the process for good: past a hard deadline it is
	// abandoned, to end when that call returns, if ever.
	deadline := max(stopDeadlineBudgets*h.cfg.StepBudget, minStopDeadline)
	hard := time.NewTimer(deadline)
	defer hard.Stop()
	expired := false
	for _, w := range workers {
		if !expired {
			select {
			case <-w.done:
			case <-hard.C:
				expired = true
			}
		}
		if expired {
			select {
			case <-w.done:
			default:
				h.log.Error("a worker did not stop: it is stuck in a call the step budget cannot interrupt; leaving it behind",
					"worker", w.idx, "waited", deadline)
				continue
			}
		}
		w.dog.stop()
		h.answerUnrun(w)
	}
}

// answerUnrun settles what reached w's slot too late for w's last turn (a
// message posted while its scheduler stopped, which dropped it): the
// message's room on its client's account is given back, and a client
// still connected is told the server is shutting down. Once w's goroutine
// has ended. Shutdown's goroutine.
func (h *Host) answerUnrun(w *worker) {
	s := w.slot
	var left []*ticket
	s.mu.Lock()
	for t := s.head; t != nil; {
		next := t.next
		s.unlink(t)
		if s.clients[t.id].conn == t.conn {
			left = append(left, t)
		} else {
			t.releaseHold()
		}
		t = next
	}
	s.mu.Unlock()
	reply := errorReply(CodeShuttingDown, "the server is shutting down")
	for _, t := range left {
		t.releaseHold()
		h.errorReplies[CodeShuttingDown].Add(1)
		if _, err := h.out.ReplyConn(t.id, t.conn, t.env, reply); err != nil {
			h.log.Debug("shutting_down reply not delivered", "error", err)
		}
	}
}

// How long Shutdown waits, after the grace period, for the workers to stop.
const (
	stopDeadlineBudgets = 5
	minStopDeadline     = time.Second
)

// errShutdown ends the work still running (or queued) when the grace
// period is over; its clients get the shutting_down reply.
var errShutdown = errors.New("the server is shutting down")

// Stats returns the scheduler counters of the worker serving each slot
// (a retired worker's successor carries its counts on). Any goroutine.
func (h *Host) Stats() []*core.Stats {
	ws := h.workers()
	out := make([]*core.Stats, len(ws))
	for i, w := range ws {
		out[i] = w.sched.Stats()
	}
	return out
}

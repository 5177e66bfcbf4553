package jsrt

import (
	"log/slog"
	"time"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
)

// worker is one scheduler goroutine with its runtime(s) and the clients
// pinned to it. Every field belongs to the scheduler goroutine except those
// set before it starts, and gate and retired, which retire.go shares with
// the goroutine that retires the worker.
type worker struct {
	idx    int
	host   *Host
	slot   *slot // the position it serves; a successor takes it over when it is retired
	log    *slog.Logger
	sched  *core.Scheduler
	dog    *watchdog
	budget time.Duration // the step budget
	out    Sender        // Host's Sender through gate, set before the goroutine starts

	gate    gate          // shut when the worker is retired: nothing it does reaches anyone after
	retired chan struct{} // closed once it is retired and its successor serves its slot

	up           upstreams               // dealer() sockets and request()'s pool (upstream.go)
	cluster      *gatedCluster           // the other instances (cluster.go); nil: no cluster
	scope        *scope                  // owner of what the JavaScript running now opens
	rt           *jsRuntime              // the live generation
	old          map[*jsRuntime]struct{} // retired generations with work still running
	clients      map[string]*client      // connected clients, by identity
	targets      []Target                // scratch for broadcast
	clientSpawns map[*client]spawned     // server.spawn work of each client, cancelled when it leaves
	stepSpawns   []core.SpawnID          // spawned by the guarded call running now (cancelled if it is interrupted)
	draining     bool                    // shutting down: no new requests
	drained      chan struct{}           // closed once draining and no client task is left
	done         chan struct{}           // closed when the scheduler goroutine ends
}

// run is the scheduler goroutine.
func (w *worker) run() {
	defer close(w.done)
	w.startBackground()
	w.sched.Run()
}

func (w *worker) connected(id string, ci connInfo) {
	w.exitIfRetired()
	if c := w.clients[id]; c != nil {
		// The transport reports a connection's end before the next one with
		// the same identity; this is a stale duplicate.
		w.log.Warn("client connected twice without a disconnect", "client", c.text)
		w.disconnected(id, c.conn)
	}
	w.clients[id] = newClient(id, ci)
}

func (w *worker) disconnected(id string, conn uint64) {
	w.exitIfRetired()
	c := w.clients[id]
	if c == nil || c.conn != conn {
		return
	}
	c.gone = true
	delete(w.clients, id)
	w.sched.Drop(id)
	if set := w.clientSpawns[c]; set != nil {
		set.cancelAll(w.sched)
		delete(w.clientSpawns, c)
	}
	w.rt.forget(c)
	for rt := range w.old {
		rt.forget(c)
	}
	w.checkDrained()
}

// message routes one request and hands it to the scheduler. The request
// keeps its ticket's hold until it starts (or is dropped); the ticket
// leaves the slot's ledger when the request no longer needs an answer.
func (w *worker) message(t *ticket) {
	w.exitIfRetired()
	c := w.clients[t.id]
	if c == nil || c.conn != t.conn {
		t.releaseHold()
		w.settle(t)
		return // from a connection already reported gone
	}
	if w.draining {
		t.releaseHold()
		w.shuttingDown(c, t.env)
		w.settle(t)
		return
	}
	t.phase.Store(phaseRouting) // a custom route() runs JavaScript for it
	j := &clientJob{w: w, c: c, t: t, env: t.env, raw: t.frames}
	strategy := j.route(w.rt)
	if w.rt.exports.route == nil {
		t.phase.Store(phaseQueued) // the default router ran no JavaScript: it may still move
	}
	switch w.sched.Submit(t.id, j, strategy) {
	case core.Refused:
		t.releaseHold()
		w.failed(j.rt, c, t.env, j.commandName(), j.message(), &refusal{CodeQueueFull,
			"too many requests queued for this client; wait for replies before sending more"})
		w.settle(t)
	case core.Ignored:
		t.releaseHold()
		w.log.Debug("request ignored: the client's previous request is still running", "client", c.text)
		w.settle(t)
	}
}

// send delivers one message to c, or fails with a ClientGoneError. Code
// serving one of c's requests (its scope answers it) sends with that
// request's envelope; any other code with the envelope of c's latest
// message. When c's send queue is backlogged, the code running now (its
// scope) is told: a generator waits before its next step.
func (w *worker) send(c *client, frames [][]byte) error {
	if s := w.scope; s != nil && s.answers && s.client == c {
		return w.reply(c, s.env, frames)
	}
	if c.gone {
		return &clientGoneError{"client " + c.text + " has disconnected"}
	}
	return w.sendTo(Target{c.id, c.conn}, c.text, frames)
}

// reply delivers one message to c carrying env, the envelope of the
// request it answers.
func (w *worker) reply(c *client, env, frames [][]byte) error {
	if c.gone {
		return &clientGoneError{"client " + c.text + " has disconnected"}
	}
	backlogged, err := w.out.ReplyConn(c.id, c.conn, env, frames...)
	return w.sent(Target{c.id, c.conn}, c.text, backlogged, err)
}

// sendTo delivers one message to a connection (conn 0: any with that
// identity), whichever worker its client is pinned to.
func (w *worker) sendTo(t Target, text string, frames [][]byte) error {
	backlogged, err := w.out.SendConn(t.ID, t.Serial, frames...)
	return w.sent(t, text, backlogged, err)
}

// sent is what a send's outcome means to the code that sent.
func (w *worker) sent(t Target, text string, backlogged bool, err error) error {
	if err != nil {
		return &clientGoneError{"client " + text + " is gone: " + err.Error()}
	}
	if backlogged && w.scope != nil {
		w.scope.backlogged(t)
	}
	return nil
}

// broadcast queues frame for every client of this worker that is not
// backlogged (those are skipped, as libzmq's PUB does; the transport
// counts them).
func (w *worker) broadcast(frame []byte) {
	to := w.targets[:0]
	for _, c := range w.clients {
		to = append(to, Target{c.id, c.conn})
	}
	w.out.Broadcast(frame, to)
	clear(to)
	w.targets = to
}

// broadcastTo sends one broadcast copy to c, as a filtered broadcast does:
// skipped when c is gone or backlogged.
func (w *worker) broadcastTo(c *client, frame []byte) {
	if !c.gone {
		w.out.Broadcast(frame, []Target{{c.id, c.conn}})
	}
}

// disconnect closes c's connection; the transport reports the disconnect.
func (w *worker) disconnect(c *client) {
	if !c.gone {
		w.out.DisconnectConn(c.id, c.conn)
	}
}

// startBackground starts the live generation's exported background(server).
func (w *worker) startBackground() {
	rt := w.rt
	if rt.exports.background == nil || w.draining {
		return
	}
	leave := w.enter(nil) // owned by no client: background work
	if err := rt.spawn(rt.exports.background, []goja.Value{rt.serverObject()}, "background"); err != nil {
		w.log.Error("background() not started", "error", err.Error())
	}
	w.stepSpawns = w.stepSpawns[:0]
	leave()
}

// swap makes rt the live generation: new requests and queued ones run on
// it, work in flight finishes where it started, the old background task is
// cancelled and the new one started.
func (w *worker) swap(rt *jsRuntime) {
	old := w.rt
	rt.adoptStates(old)
	w.rt = rt
	old.life.bgSpawns.cancelAll(w.sched)
	w.startBackground()
	if old.life.refs > 0 {
		w.old[old] = struct{}{} // until its last job ends (dispose removes it)
	}
	old.retire()
}

// beginDrain stops taking requests and cancels background work.
func (w *worker) beginDrain() {
	w.draining = true
	w.log.Info("draining: new requests get shutting_down; waiting for the work in flight", "clients_busy", w.sched.Clients())
	w.rt.life.bgSpawns.cancelAll(w.sched)
	w.checkDrained()
}

func (w *worker) checkDrained() {
	if w.draining && w.sched.Clients() == 0 {
		select {
		case <-w.drained:
		default:
			close(w.drained)
		}
	}
}

// closeConnections closes request()'s pool and the dealers the live and
// retired runtimes opened at load time, at shutdown.
func (w *worker) closeConnections() {
	if w.up.poolTimer != nil {
		w.up.poolTimer.Stop()
		w.up.poolTimer = nil
	}
	for addr, pool := range w.up.pool {
		for _, pc := range pool.idle {
			pc.discard()
		}
		delete(w.up.pool, addr)
	}
	w.rt.life.scope.close()
	for rt := range w.old {
		rt.life.scope.close()
	}
}

// reloadTo loads generation gen from src and makes it live, unless the
// worker runs gen (or a later one) already: a worker that replaced a
// retired one while a reload was under way catches up this way.
func (w *worker) reloadTo(gen int, src map[string][]byte) {
	if w.rt.gen >= gen {
		return
	}
	rt, err := load(w.host.cfg.Handlers, w, gen, src)
	if err != nil {
		w.log.Error("reload failed on the worker that replaced a retired one; it serves the previous code",
			"gen", w.rt.gen, "error", err.Error())
		return
	}
	w.swap(rt)
}

// shuttingDown answers a request the draining server will not run.
func (w *worker) shuttingDown(c *client, env [][]byte) {
	w.host.errorReplies[CodeShuttingDown].Add(1)
	_ = w.reply(c, env, [][]byte{errorReply(CodeShuttingDown, "the server is shutting down")})
}

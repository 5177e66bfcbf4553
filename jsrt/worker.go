package jsrt

import (
	"log/slog"
	"time"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/internal/ident"
)

// worker is one scheduler goroutine with its runtime(s) and the clients
// pinned to it. Every field belongs to the scheduler goroutine except those
// set before it starts.
type worker struct {
	idx    int
	host   *Host
	log    *slog.Logger
	sched  *core.Scheduler
	dog    *watchdog
	budget time.Duration // the step budget
	out    Sender        // set by Host.Start before the goroutine starts

	dialer       Dialer                   // opens dealer() and request() connections; nil: none
	pool         map[string]*upstreamPool // request()'s connections, by address
	dealers      int                      // dealer() sockets open
	scope        *scope                   // owner of what the JavaScript running now opens
	rt           *jsRuntime               // the live generation
	old          map[*jsRuntime]struct{}  // retired generations with work still running
	clients      map[string]*client       // connected clients, by identity
	clientSpawns map[*client]spawned      // server.spawn work of each client, cancelled when it leaves
	draining     bool                     // shutting down: no new requests
	drained      chan struct{}            // closed once draining and no client task is left
	done         chan struct{}            // closed when the scheduler goroutine ends
}

// run is the scheduler goroutine.
func (w *worker) run() {
	defer close(w.done)
	w.startBackground()
	w.sched.Run()
}

func (w *worker) connected(id string, conn uint64) {
	if c := w.clients[id]; c != nil {
		// The transport reports a connection's end before the next one with
		// the same identity; this is a stale duplicate.
		w.log.Warn("client connected twice without a disconnect", "client", c.text)
		w.disconnected(id, c.conn)
	}
	w.clients[id] = &client{id: id, text: ident.Text(id), conn: conn}
}

func (w *worker) disconnected(id string, conn uint64) {
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

// message routes one request and hands it to the scheduler.
func (w *worker) message(id string, conn uint64, frames [][]byte) {
	c := w.clients[id]
	if c == nil || c.conn != conn {
		return // from a connection already reported gone
	}
	if w.draining {
		w.shuttingDown(c)
		return
	}
	r := &request{w: w, c: c, raw: frames}
	switch w.sched.Submit(id, r, r.route(w.rt)) {
	case core.Refused:
		w.failed(r.rt, c, r.message(), &requestError{CodeQueueFull,
			"too many requests queued for this client; wait for replies before sending more"})
	case core.Ignored:
		w.log.Debug("request ignored: the client's previous request is still running", "client", c.text)
	}
}

// send delivers one message to c, or fails with a ClientGoneError.
func (w *worker) send(c *client, frames [][]byte) error {
	if c.gone {
		return &clientGoneError{"client " + c.text + " has disconnected"}
	}
	if err := w.out.SendConn(c.id, c.conn, frames...); err != nil {
		return &clientGoneError{"client " + c.text + " is gone: " + err.Error()}
	}
	return nil
}

// sendQuietly sends one frame to c, as broadcasts do: a client that has
// just gone is skipped.
func (w *worker) sendQuietly(c *client, frame []byte) {
	if err := w.send(c, [][]byte{frame}); err != nil {
		w.log.Debug("broadcast skipped a client", "client", c.text, "error", err)
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
	if rt.background == nil || w.draining {
		return
	}
	leave := w.enter(nil) // owned by no client: background work
	rt.spawn(rt.background, []goja.Value{rt.serverObject()}, "background")
	leave()
}

// swap makes rt the live generation: new requests and queued ones run on
// it, work in flight finishes where it started, the old background task is
// cancelled and the new one started.
func (w *worker) swap(rt *jsRuntime) {
	old := w.rt
	rt.adoptStates(old)
	w.rt = rt
	old.bgSpawns.cancelAll(w.sched)
	w.startBackground()
	if old.refs > 0 {
		w.old[old] = struct{}{} // until its last job ends (dispose removes it)
	}
	old.retire()
}

// beginDrain stops taking requests and cancels background work.
func (w *worker) beginDrain() {
	w.draining = true
	w.log.Info("draining: new requests get shutting_down; waiting for the work in flight", "clients_busy", w.sched.Clients())
	w.rt.bgSpawns.cancelAll(w.sched)
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
	for addr, pool := range w.pool {
		for _, pc := range pool.idle {
			pc.discard()
		}
		delete(w.pool, addr)
	}
	w.rt.scope.close()
	for rt := range w.old {
		rt.scope.close()
	}
}

// shuttingDown answers a request the draining server will not run.
func (w *worker) shuttingDown(c *client) {
	w.host.errorReplies[CodeShuttingDown].Add(1)
	_ = w.send(c, [][]byte{errorReply(CodeShuttingDown, "the server is shutting down")})
}

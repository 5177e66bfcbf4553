package jsrt

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/curve"
)

// Dialer opens DEALER connections to other ZeroMQ servers, for dealer()
// and request(); the transport implements it.
type Dialer interface {
	// Dial starts connecting to endpoint in the background (reconnecting
	// on its own) and returns at once. onMessage is called, on a goroutine
	// of the connection's, for every message that arrives. Any goroutine.
	Dial(endpoint string, opts DialOptions, onMessage func(frames [][]byte)) (Upstream, error)
}

// DialOptions say how dealer() and request() connect.
type DialOptions struct {
	Identity string     // the routing identity to announce ("" for none)
	Curve    *CurveKeys // CURVE keys; nil: NULL
}

// CurveKeys are a CURVE client's keys, as JavaScript gave them and
// curveOptions checked them: the server's public key, and the client's
// key pair (nil: the dialer makes a fresh pair).
type CurveKeys struct {
	ServerKey curve.Key
	Keys      *curve.KeyPair
}

// curveOptions reads {curve: {serverKey, publicKey?, secretKey?}} from the
// options argument of fn(addr, ...) (dealer, request); nil when it has
// none. A key pair is checked once per worker: the check costs a Curve25519
// multiplication, too much for every request().
func (rt *jsRuntime) curveOptions(fn, addr string, opts goja.Value) *CurveKeys {
	o, ok := opts.(*goja.Object)
	if !ok {
		return nil
	}
	v := o.Get("curve")
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	bad := func(format string, args ...any) {
		rt.throw(badArgument("%s(%q): "+format, append([]any{fn, addr}, args...)...))
	}
	c, ok := v.(*goja.Object)
	if !ok {
		bad("curve must be an object {serverKey, publicKey, secretKey}")
	}
	text := func(name string) string {
		x := c.Get(name)
		if x == nil || goja.IsUndefined(x) || goja.IsNull(x) {
			return ""
		}
		if _, ok := x.Export().(string); !ok {
			bad("curve.%s must be a Z85 string of 40 characters", name)
		}
		return x.String()
	}
	serverKey, publicKey, secretKey := text("serverKey"), text("publicKey"), text("secretKey")
	switch {
	case serverKey == "":
		bad("curve.serverKey is needed (the server's public key, Z85)")
	case (publicKey == "") != (secretKey == ""):
		bad("curve.publicKey and curve.secretKey go together (or leave both out for a fresh pair)")
	}
	server, err := curve.ParseKey(serverKey)
	if err != nil {
		bad("curve.serverKey: %v", err)
	}
	keys := &CurveKeys{ServerKey: server}
	if secretKey == "" {
		return keys
	}
	public, err := curve.ParseKey(publicKey)
	if err != nil {
		bad("curve.publicKey: %v", err)
	}
	secret, err := curve.ParseKey(secretKey)
	if err != nil { // never say what the secret was
		bad("curve.secretKey is not 40 characters of Z85")
	}
	pair := curve.KeyPair{Public: public, Secret: secret}
	if !rt.w.up.checkedPair(pair) {
		bad("curve.publicKey is not curve.secretKey's public key")
	}
	keys.Keys = &pair
	return keys
}

// checkedPair reports whether pair's public key is its secret key's,
// remembering the pairs found true (a few: past maxCheckedPairs it
// starts over). Scheduler goroutine.
func (up *upstreams) checkedPair(pair curve.KeyPair) bool {
	if _, ok := up.pairs[pair]; ok {
		return true
	}
	if curve.KeyPairFromSecret(pair.Secret) != pair {
		return false
	}
	if up.pairs == nil || len(up.pairs) >= maxCheckedPairs {
		up.pairs = map[curve.KeyPair]struct{}{}
	}
	up.pairs[pair] = struct{}{}
	return true
}

const maxCheckedPairs = 64

// Upstream is one DEALER connection.
type Upstream interface {
	// Send queues a message; it never blocks. Any goroutine.
	Send(frames ...[]byte) error
	// Close stops the connection and its reconnecting. Any goroutine except
	// the onMessage callback.
	Close()
}

// DefaultRemoteTimeout is how long recv() and request() wait for a reply
// when the call does not say.
const DefaultRemoteTimeout = 10 * time.Second

// maxBuffered bounds the replies a dealer keeps for recv() calls that have
// not come yet; past it the oldest is dropped.
const maxBuffered = 1000

// maxIdlePerAddress bounds request()'s pool of idle connections per address.
const maxIdlePerAddress = 8

// maxDealers bounds the dealer() sockets one worker may have open.
const maxDealers = 1024

// waitOp is a value a generator yields to wait for something outside
// JavaScript: a sleep, a reply on a dealer, a pooled request.
type waitOp interface {
	// park registers the wait; the step it returns parks (or resumes) the
	// task.
	park(f *genCoroutine) core.Step
	// resumed settles the wait when the task resumes with in, and returns
	// what JavaScript resumes with.
	resumed(in core.Input) core.Input
	// cancelled settles the wait when the task is cancelled while parked.
	cancelled()
}

// remoteOptions reads {timeout, message} from a recv()/request() options
// argument. timeout is in milliseconds; 0 or Infinity waits for ever.
func (rt *jsRuntime) remoteOptions(v goja.Value) (timeout time.Duration, asMessage bool) {
	timeout = DefaultRemoteTimeout
	o, ok := v.(*goja.Object)
	if !ok {
		return timeout, false
	}
	if t := o.Get("timeout"); t != nil && !goja.IsUndefined(t) {
		ms := t.ToFloat()
		switch {
		case math.IsNaN(ms) || ms < 0:
			rt.throw(badArgument("timeout must be a number of milliseconds >= 0, got %s", t.String()))
		case ms == 0 || math.IsInf(ms, 1):
			timeout = 0
		default:
			timeout = time.Duration(ms * float64(time.Millisecond))
		}
	}
	if m := o.Get("message"); m != nil {
		asMessage = m.ToBoolean()
	}
	return timeout, asMessage
}

// parkFor is the step that waits for key, or throws a TimeoutError after
// timeout (0: no deadline).
func (rt *jsRuntime) parkFor(key core.WaitKey, timeout time.Duration, what string) core.Step {
	st := core.Step{Kind: core.Park, Wait: key}
	if timeout > 0 {
		st.Until = rt.w.sched.Now().Add(timeout)
		st.In = core.Input{Err: &timeoutError{fmt.Sprintf("no reply from %s within %v", what, timeout)}}
	}
	return st
}

// reply converts a received message to what JavaScript resumes with: the
// first frame's text, or with {message: true} a message object.
func (rt *jsRuntime) reply(frames [][]byte, asMessage bool) goja.Value {
	if asMessage {
		return rt.vm.NewDynamicObject(&message{rt: rt, raw: frames})
	}
	if len(frames) == 0 {
		return rt.vm.ToValue("")
	}
	return rt.vm.ToValue(string(frames[0]))
}

// ---- dealer(address, options?) ----

// upstreams is a worker's outbound side: the connections its JavaScript
// opens with dealer() and request(). Its worker's goroutine (or the one
// loading the worker's code before that goroutine starts).
type upstreams struct {
	dialer    Dialer                     // opens dealer() and request() connections (through tracker); nil: none
	tracker   *trackingDialer            // what dialer opened, closed when the worker is retired; nil: no dialer
	pool      map[string]*upstreamPool   // request()'s connections, by address
	poolTimer *time.Timer                // armed while idle pooled connections may expire
	dealers   int                        // dealer() sockets its handlers opened and have not closed
	pairs     map[curve.KeyPair]struct{} // CURVE key pairs checked already (checkedPair)
}

// dealerSocket is the Go side of a dealer() object: one DEALER connection
// and the replies that arrived before anyone asked for them.
type dealerSocket struct {
	rt      *jsRuntime
	addr    string
	up      Upstream
	inbox   [][][]byte
	waiting core.WaitKey // the task parked in recv(), if any
	closed  bool
	count   *int // the bound it counts against, given back when it closes
}

// newDealer opens a dealer for JavaScript, owned by the job being stepped
// (or by the runtime, at load time), which closes it when it ends.
func (rt *jsRuntime) newDealer(addr string, opts goja.Value) goja.Value {
	identity := ""
	if o, ok := opts.(*goja.Object); ok {
		if id := o.Get("identity"); id != nil && !goja.IsUndefined(id) {
			identity = id.String()
		}
	}
	if rt.w.up.dialer == nil {
		rt.throw(fmt.Errorf("dealer(): this server cannot open connections"))
	}
	// A dealer counts against the bound of what opened it: its
	// generation's top-level code (which keeps its dealers while a reload
	// loads the next generation's), or the worker's handlers. Either way on
	// the worker's goroutine: a load runs there, or before it starts (New,
	// a retirement).
	w := rt.w
	count := &w.up.dealers
	if !rt.loaded {
		count = &rt.life.topDealers
	}
	if *count >= maxDealers {
		rt.throw(fmt.Errorf("dealer(%q): %d dealers are open already; close() the ones you are done with", addr, maxDealers))
	}
	d := &dealerSocket{rt: rt, addr: addr, count: count}
	keys := rt.curveOptions("dealer", addr, opts)
	up, err := w.up.dialer.Dial(addr, DialOptions{Identity: identity, Curve: keys}, func(frames [][]byte) {
		w.sched.Post(func() { d.deliver(frames) })
	})
	if err != nil {
		rt.throw(badArgument("dealer(%q): %v", addr, err))
	}
	d.up = up
	*count++
	rt.own(d.close)

	o := rt.vm.NewObject()
	_ = o.Set("address", addr)
	_ = o.Set("send", func(call goja.FunctionCall) goja.Value {
		frames, err := rt.frames(call.Arguments)
		if err != nil {
			rt.throw(err)
		}
		if d.closed {
			rt.throw(fmt.Errorf("dealer %s is closed", addr))
		}
		if err := d.up.Send(frames...); err != nil {
			rt.throw(fmt.Errorf("dealer %s: %w", addr, err))
		}
		return goja.Undefined()
	})
	_ = o.Set("recv", func(call goja.FunctionCall) goja.Value {
		timeout, asMessage := rt.remoteOptions(call.Argument(0))
		return rt.vm.ToValue(&recvOp{d: d, timeout: timeout, asMessage: asMessage})
	})
	_ = o.Set("close", func(goja.FunctionCall) goja.Value {
		d.close()
		return goja.Undefined()
	})
	return o
}

// deliver hands a reply to the task waiting in recv(), or keeps it.
// Scheduler goroutine.
func (d *dealerSocket) deliver(frames [][]byte) {
	if d.closed {
		return
	}
	if key := d.waiting; key != 0 {
		d.waiting = 0
		if d.rt.w.sched.Resolve(key, core.Input{Value: frames}) {
			return
		}
	}
	if len(d.inbox) == maxBuffered {
		d.rt.w.log.Warn("dealer dropped its oldest unread reply: nobody calls recv()", "address", d.addr)
		d.inbox = d.inbox[1:]
	}
	d.inbox = append(d.inbox, frames)
}

// close closes the connection; a task still waiting in recv() gets an
// error at its yield.
func (d *dealerSocket) close() {
	if d.closed {
		return
	}
	d.closed = true
	d.up.Close()
	*d.count--
	d.inbox = nil
	if key := d.waiting; key != 0 {
		d.waiting = 0
		d.rt.w.sched.Resolve(key, core.Input{Err: fmt.Errorf("dealer %s was closed", d.addr)})
	}
}

// recvOp is what dealer.recv() returns: yield it to wait for the next reply.
type recvOp struct {
	d         *dealerSocket
	timeout   time.Duration
	asMessage bool
	key       core.WaitKey
}

func (op *recvOp) park(f *genCoroutine) core.Step {
	d := op.d
	switch {
	case d.closed:
		return core.Step{Kind: core.Yield, In: core.Input{Err: fmt.Errorf("dealer %s is closed", d.addr)}}
	case len(d.inbox) > 0:
		frames := d.inbox[0]
		d.inbox = d.inbox[1:]
		return core.Step{Kind: core.Yield, In: core.Input{Value: frames}}
	case d.waiting != 0:
		return core.Step{Kind: core.Yield, In: core.Input{Err: fmt.Errorf(
			"dealer %s: another task is already waiting in recv(); use one dealer per task", d.addr)}}
	}
	op.key = f.rt.w.sched.NewWaitKey()
	d.waiting = op.key
	return f.rt.parkFor(op.key, op.timeout, d.addr)
}

func (op *recvOp) resumed(in core.Input) core.Input {
	op.cancelled()
	if frames, ok := in.Value.([][]byte); ok && in.Err == nil {
		in.Value = op.d.rt.reply(frames, op.asMessage)
	}
	return in
}

func (op *recvOp) cancelled() {
	if op.key != 0 && op.d.waiting == op.key {
		op.d.waiting = 0
	}
}

// ---- request(address, x, options?) ----

// maxConnsPerAddress bounds request()'s connections to one address (per
// worker); more requests at once wait, in order, for one to come free.
const maxConnsPerAddress = 64

// upstreamPool is request()'s connections to one address.
type upstreamPool struct {
	key     string // addr, and the CURVE keys when there are any
	addr    string
	curve   *CurveKeys    // nil: NULL
	idle    []*pooledConn // connected and free
	open    int           // connections dialled and not discarded
	waiting []*requestOp  // requests waiting for a connection, oldest first
}

// pooledConn is one of request()'s connections: it carries one request at
// a time, so a reply belongs to the task that waits on key.
type pooledConn struct {
	w         *worker
	pool      *upstreamPool
	up        Upstream     // nil once discarded
	key       core.WaitKey // the request in flight, 0 when idle
	idleSince time.Time    // when it last went idle
}

// requestOp is what request() returns: yield it to send x and wait for the
// reply on a connection of the pool.
type requestOp struct {
	rt        *jsRuntime // of the coroutine that yielded it
	addr      string
	curve     *CurveKeys
	pool      string // its pool's key (poolKey)
	frame     []byte
	timeout   time.Duration
	asMessage bool
	conn      *pooledConn // the connection carrying it, once it has one
	key       core.WaitKey
	deadline  time.Time // zero: none
}

// poolKey names the pool of connections a request may use: one per
// address and set of CURVE keys.
func poolKey(addr string, keys *CurveKeys) string {
	switch {
	case keys == nil:
		return addr
	case keys.Keys == nil: // a fresh pair each connection: any of them will do
		return addr + "\x00" + string(keys.ServerKey[:])
	}
	return addr + "\x00" + string(keys.ServerKey[:]) + string(keys.Keys.Public[:])
}

func (rt *jsRuntime) newRequest(addr string, x, opts goja.Value) goja.Value {
	if rt.w.up.dialer == nil {
		rt.throw(fmt.Errorf("request(): this server cannot open connections"))
	}
	f, err := rt.frame(x)
	if err != nil {
		rt.throw(err)
	}
	timeout, asMessage := rt.remoteOptions(opts)
	keys := rt.curveOptions("request", addr, opts)
	return rt.vm.ToValue(&requestOp{addr: addr, curve: keys, pool: poolKey(addr, keys), frame: f, timeout: timeout, asMessage: asMessage})
}

// park sends the request on a free connection of the pool, or waits for
// one; the timeout counts from now either way.
func (op *requestOp) park(f *genCoroutine) core.Step {
	op.rt = f.rt
	w := f.rt.w
	op.key = w.sched.NewWaitKey()
	pool := w.up.pool[op.pool]
	if pool == nil {
		pool = &upstreamPool{key: op.pool, addr: op.addr, curve: op.curve}
		w.up.pool[pool.key] = pool
	}
	pc, err := pool.take(w)
	switch {
	case err != nil:
		return core.Step{Kind: core.Yield, In: core.Input{Err: badArgument("request(%q): %v", op.addr, err)}}
	case pc == nil:
		pool.waiting = append(pool.waiting, op)
	default:
		if err := op.sendOn(pc); err != nil {
			return core.Step{Kind: core.Yield, In: core.Input{Err: err}}
		}
	}
	st := f.rt.parkFor(op.key, op.timeout, op.addr)
	op.deadline = st.Until
	return st
}

// nextWaiting takes the oldest waiting request that has not timed out yet
// (one that has leaves the line when its task resumes), or nil.
func (pool *upstreamPool) nextWaiting(now time.Time) *requestOp {
	for len(pool.waiting) > 0 {
		op := pool.waiting[0]
		pool.waiting[0] = nil // the backing array must not keep it alive
		pool.waiting = pool.waiting[1:]
		if op.deadline.IsZero() || now.Before(op.deadline) {
			return op
		}
	}
	return nil
}

// sendOn puts the request on pc.
func (op *requestOp) sendOn(pc *pooledConn) error {
	op.conn = pc
	pc.key = op.key
	if err := pc.up.Send(op.frame); err != nil {
		pc.discard()
		return fmt.Errorf("request(%q): %w", op.addr, err)
	}
	return nil
}

// settle ends the request's hold on the pool when it did not get its reply
// (it timed out or was cancelled): a connection still carrying it is
// dropped, so that a late reply cannot reach the next request, and a
// request still waiting for a connection leaves the line.
func (op *requestOp) settle() {
	if pc := op.conn; pc != nil {
		if pc.key == op.key {
			pc.discard()
		}
		return
	}
	if pool := op.rt.w.up.pool[op.pool]; pool != nil {
		if i := slices.Index(pool.waiting, op); i >= 0 {
			pool.waiting = slices.Delete(pool.waiting, i, i+1)
		}
	}
}

func (op *requestOp) resumed(in core.Input) core.Input {
	op.settle()
	if frames, ok := in.Value.([][]byte); ok && in.Err == nil {
		in.Value = op.rt.reply(frames, op.asMessage)
	}
	return in
}

func (op *requestOp) cancelled() { op.settle() }

// take returns a free connection, dialling one if the pool has room, or
// nil when the request must wait.
func (pool *upstreamPool) take(w *worker) (*pooledConn, error) {
	if n := len(pool.idle); n > 0 {
		pc := pool.idle[n-1]
		pool.idle[n-1] = nil
		pool.idle = pool.idle[:n-1]
		return pc, nil
	}
	if pool.open >= maxConnsPerAddress {
		return nil, nil
	}
	pc := &pooledConn{w: w, pool: pool}
	up, err := w.up.dialer.Dial(pool.addr, DialOptions{Curve: pool.curve}, func(frames [][]byte) {
		w.sched.Post(func() { pc.deliver(frames) })
	})
	if err != nil {
		return nil, err
	}
	pc.up = up
	pool.open++
	return pc, nil
}

// deliver resumes the request in flight with its reply, then gives the
// connection to the next waiting request or back to the pool. A message
// nobody waits for means the connection is out of step: it is dropped.
// Scheduler goroutine.
func (pc *pooledConn) deliver(frames [][]byte) {
	if pc.up == nil {
		return // discarded: a late reply
	}
	key := pc.key
	pc.key = 0
	if key == 0 || !pc.w.sched.Resolve(key, core.Input{Value: frames}) {
		pc.discard()
		return
	}
	pc.free()
}

// free hands a connection that carries nothing to the oldest waiting
// request, or keeps it idle (within maxIdlePerAddress).
func (pc *pooledConn) free() {
	pool := pc.pool
	if op := pool.nextWaiting(pc.w.sched.Now()); op != nil {
		if err := op.sendOn(pc); err != nil {
			// pc was dropped (and a new one dialled for the next in line).
			pc.w.sched.Resolve(op.key, core.Input{Err: err})
		}
		return
	}
	if len(pool.idle) < maxIdlePerAddress && !pc.w.draining {
		pc.idleSince = pc.w.sched.Now()
		pool.idle = append(pool.idle, pc)
		pc.w.armPoolExpiry()
		return
	}
	pc.discard()
}

// armPoolExpiry makes sure idle pooled connections are looked at again
// once they may have been idle for PoolIdleTimeout. Scheduler goroutine.
func (w *worker) armPoolExpiry() {
	if w.up.poolTimer != nil {
		return
	}
	w.up.poolTimer = time.AfterFunc(w.host.cfg.PoolIdleTimeout, func() { w.sched.Post(w.expirePool) })
}

// expirePool closes the pooled connections idle for PoolIdleTimeout or
// more, and forgets pools with nothing left. Scheduler goroutine.
func (w *worker) expirePool() {
	w.up.poolTimer = nil
	cutoff := w.sched.Now().Add(-w.host.cfg.PoolIdleTimeout)
	left := false
	for _, pool := range w.up.pool {
		keep := pool.idle[:0]
		var stale []*pooledConn
		for _, pc := range pool.idle {
			if pc.idleSince.After(cutoff) {
				keep = append(keep, pc)
			} else {
				stale = append(stale, pc)
			}
		}
		clear(pool.idle[len(keep):])
		pool.idle = keep
		for _, pc := range stale {
			pc.discard()
		}
		left = left || len(keep) > 0
	}
	if left {
		w.armPoolExpiry()
	}
}

// discard closes the connection for good and, as the pool has room again,
// dials one for the oldest waiting request.
func (pc *pooledConn) discard() {
	pc.key = 0
	if pc.up == nil {
		return
	}
	pc.up.Close()
	pc.up = nil
	pool := pc.pool
	pool.open--
	now := pc.w.sched.Now()
	if pc.w.draining || !slices.ContainsFunc(pool.waiting, func(op *requestOp) bool {
		return op.deadline.IsZero() || now.Before(op.deadline)
	}) {
		if pool.open == 0 && len(pool.waiting) == 0 && pc.w.up.pool[pool.key] == pool {
			delete(pc.w.up.pool, pool.key) // an address used once is not kept for good
		}
		return
	}
	next, err := pool.take(pc.w)
	if err != nil || next == nil {
		return
	}
	next.free()
}

package jsrt_test

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/waitfor"
	"github.com/moebius-js/moebius-js/jsrt"
)

// stuckDialer's Dial of an address tcp://stuck… blocks until the test
// unblocks that address: a Go native call that the watchdog's interrupt
// cannot reach, exact and cheap, that the test ends when it likes. Other
// addresses connect at once. It counts the connections opened and closed
// per address.
type stuckDialer struct {
	mu       sync.Mutex
	cond     *sync.Cond
	releases map[string]chan struct{}
	opened   map[string]int
	closed   map[string]int
}

func newStuckDialer(t *testing.T) *stuckDialer {
	d := &stuckDialer{releases: map[string]chan struct{}{}, opened: map[string]int{}, closed: map[string]int{}}
	d.cond = sync.NewCond(&d.mu)
	t.Cleanup(d.unblockAll) // after the Host's Shutdown (registered later), which must not wait for it
	return d
}

// release is the channel that unblocks addr. d.mu held.
func (d *stuckDialer) release(addr string) chan struct{} {
	ch := d.releases[addr]
	if ch == nil {
		ch = make(chan struct{})
		d.releases[addr] = ch
	}
	return ch
}

func (d *stuckDialer) unblock(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.release(addr):
	default:
		close(d.release(addr))
	}
}

func (d *stuckDialer) unblockAll() {
	d.mu.Lock()
	var addrs []string
	for addr := range d.releases {
		addrs = append(addrs, addr)
	}
	d.mu.Unlock()
	for _, addr := range addrs {
		d.unblock(addr)
	}
}

func (d *stuckDialer) Dial(addr string, _ jsrt.DialOptions, _ func([][]byte)) (jsrt.Upstream, error) {
	d.mu.Lock()
	if strings.HasPrefix(addr, "tcp://stuck") {
		ch := d.release(addr)
		d.mu.Unlock()
		<-ch
		d.mu.Lock()
	}
	defer d.mu.Unlock()
	d.opened[addr]++
	return &stubUpstream{d: d, addr: addr}, nil
}

func (d *stuckDialer) counts(addr string) (opened, closed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opened[addr], d.closed[addr]
}

// waitClosed waits until n connections to addr have been closed.
func (d *stuckDialer) waitClosed(t *testing.T, addr string, n int) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !waitfor.Cond(&d.mu, d.cond, 5*time.Second, func() bool { return d.closed[addr] >= n }) {
		t.Fatalf("%d connections to %s closed, want %d", d.closed[addr], addr, n)
	}
}

type stubUpstream struct {
	d    *stuckDialer
	addr string
}

func (u *stubUpstream) Send(...[]byte) error { return nil }

func (u *stubUpstream) Close() {
	u.d.mu.Lock()
	u.d.closed[u.addr]++
	u.d.cond.Broadcast()
	u.d.mu.Unlock()
}

const stuckJS = `
const { dealer, sleep, log } = require('moebius');
const upstream = dealer('tcp://open'); // each runtime's own: the retired one's closes with it
let served = 0; // per runtime: a fresh one counts from 0
module.exports = { rules: [
  { command: 'stuck', handler: (c, d) => {
      log.info('entering the stuck call', { client: c.id }); dealer(d.addr || 'tcp://stuck'); c.send('after the stuck call'); } },
  { command: 'ping', handler: (c) => { served++; c.state.n = (c.state.n || 0) + 1; c.send('pong ' + served + ' ' + c.state.n); } },
  { command: 'nap', handler: function* (c) { c.send('napping'); yield sleep(3600 * 1000); c.send('woke'); } },
]};
`

const stuckBudget = 50 * time.Millisecond

// retiredLog is the WARN line of a retirement, with the worker and the
// client whose step was stuck.
func retiredLog(worker int, client string) *regexp.Regexp {
	return regexp.MustCompile(`level=WARN msg="worker retired:[^"]*" worker=` + fmt.Sprint(worker) + ` client=` + client + ` `)
}

// isRunaway reports whether a reply is the runaway_handler error of a
// retired worker.
func isRunaway(reply string) bool {
	return strings.Contains(reply, `"code":"runaway_handler"`) && strings.Contains(reply, "native call")
}

func TestAWorkerStuckInANativeCallIsRetiredAndItsClientsMove(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, StepBudget: stuckBudget, Workers: 1}, map[string]string{"handlers.js": stuckJS})
	for _, id := range []string{"bad", "napper", "good"} {
		e.connect(id)
	}
	e.send("good", `{"command":"ping"}`)
	if got := e.reply("good", 1); got != "pong 1 1" {
		t.Fatalf("good got %q", got)
	}
	e.send("napper", `{"command":"nap"}`)
	if got := e.reply("napper", 1); got != "napping" {
		t.Fatalf("napper got %q", got)
	}
	// The successor runs the live generation's code, not what the file
	// says now (nothing reloaded this).
	e.write("handlers.js", "this does not parse (")

	began := time.Now()
	e.send("bad", `{"command":"stuck"}`)
	e.waitLog("entering the stuck call")
	e.send("good", `{"command":"ping"}`) // waits behind the stuck step, never started there

	// In flight on the stuck worker: the stuck request, and napper's
	// parked one. Each gets one runaway_handler reply.
	if got := e.reply("bad", 1); !isRunaway(got) {
		t.Fatalf("bad got %s, want runaway_handler", got)
	}
	t.Logf("retired after %v", time.Since(began))
	if got := e.reply("napper", 2); !isRunaway(got) {
		t.Fatalf("napper got %s, want runaway_handler", got)
	}
	// good's request had not started: it runs on the fresh worker, whose
	// runtime starts afresh (its globals, client.state).
	if got := e.reply("good", 2); got != "pong 1 1" {
		t.Fatalf("good's waiting request got %q, want it served by a fresh runtime", got)
	}
	if !retiredLog(0, "bad").MatchString(e.logs.String()) {
		t.Fatalf("no WARN line naming worker 0 and client bad:\n%s", e.logs.String())
	}
	c := e.host.Counters()
	if c.WorkersRetired != 1 || c.Errors["runaway_handler"] != 2 {
		t.Fatalf("workers retired %d, runaway_handler %d; want 1 and 2", c.WorkersRetired, c.Errors["runaway_handler"])
	}
	if opened, closed := d.counts("tcp://open"); opened != 2 || closed != 1 {
		t.Fatalf("top-level dealers: %d opened, %d closed; want the retired runtime's closed and the fresh one's open", opened, closed)
	}

	// Everyone is served by the fresh worker, the clients whose work failed too.
	e.send("bad", `{"command":"ping"}`)
	if got := e.reply("bad", 2); got != "pong 2 1" {
		t.Fatalf("bad got %q", got)
	}
	e.send("napper", `{"command":"ping"}`)
	if got := e.reply("napper", 3); got != "pong 3 1" {
		t.Fatalf("napper got %q", got)
	}

	// The stuck call returns: the abandoned goroutine goes on into
	// nothing. The connection it opened is closed at once, and it sends
	// nobody anything (no "after the stuck call", no second error).
	d.unblock("tcp://stuck")
	d.waitClosed(t, "tcp://stuck", 1)
	e.send("good", `{"command":"ping"}`)
	if got := e.reply("good", 3); got != "pong 4 2" {
		t.Fatalf("good got %q", got)
	}
	e.send("bad", `{"command":"ping"}`)
	if got := e.replies("bad", 3); len(got) != 3 || got[2] != "pong 5 2" {
		t.Fatalf("bad got %q, want runaway_handler and two pongs", got)
	}
}

// slotOf is the worker a Host with n workers pins id to (FNV-1a, as
// Host.pick).
func slotOf(id string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

func TestOtherWorkersAreServedWhileOneIsStuckAndRetired(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, StepBudget: stuckBudget, Workers: 2}, map[string]string{"handlers.js": stuckJS})
	// bad and sibling share a worker; other is on the other one.
	ids := map[int][]string{}
	for i := 0; len(ids[0]) < 2 || len(ids[1]) < 2; i++ {
		id := fmt.Sprintf("c%d", i)
		ids[slotOf(id, 2)] = append(ids[slotOf(id, 2)], id)
	}
	bad, sibling, other := ids[1][0], ids[1][1], ids[0][0]
	for _, id := range []string{bad, sibling, other} {
		e.connect(id)
	}
	e.send(bad, `{"command":"stuck"}`)
	e.waitLog("entering the stuck call")
	e.send(sibling, `{"command":"ping"}`)
	for i := 1; i <= 3; i++ {
		e.send(other, `{"command":"ping"}`)
		if got, want := e.reply(other, i), fmt.Sprintf("pong %d %d", i, i); got != want {
			t.Fatalf("other got %q, want %q", got, want)
		}
	}
	if n := len(e.out.messages(bad)) + len(e.out.messages(sibling)); n != 0 {
		t.Fatalf("the stuck worker's clients got %d messages before it was retired", n)
	}
	if got := e.reply(bad, 1); !isRunaway(got) {
		t.Fatalf("bad got %s, want runaway_handler", got)
	}
	if got := e.reply(sibling, 1); got != "pong 1 1" {
		t.Fatalf("sibling got %q, want its waiting request served by the fresh worker", got)
	}
	e.send(bad, `{"command":"ping"}`)
	if got := e.reply(bad, 2); got != "pong 2 1" {
		t.Fatalf("bad got %q", got)
	}
	e.send(other, `{"command":"ping"}`)
	if got := e.reply(other, 4); got != "pong 4 4" {
		t.Fatalf("other got %q: its worker should not have been touched", got)
	}
	if !retiredLog(1, bad).MatchString(e.logs.String()) {
		t.Fatalf("no WARN line naming worker 1 and client %s:\n%s", bad, e.logs.String())
	}
	if n := e.host.Counters().WorkersRetired; n != 1 {
		t.Fatalf("workers retired %d, want 1", n)
	}
}

func TestAReloadWaitingOnAStuckWorkerCompletesOnItsSuccessor(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, StepBudget: stuckBudget, Workers: 1}, map[string]string{"handlers.js": stuckJS})
	e.connect("bad")
	e.connect("good")
	e.send("bad", `{"command":"stuck"}`)
	e.waitLog("entering the stuck call")
	e.write("handlers.js", strings.Replace(stuckJS, `c.send('pong ' +`, `c.send('v2 pong ' +`, 1))
	reloaded := make(chan error, 1)
	go func() { reloaded <- e.host.Reload() }()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reload waits for good on the stuck worker")
	}
	if got := e.reply("bad", 1); !isRunaway(got) {
		t.Fatalf("bad got %s, want runaway_handler", got)
	}
	e.send("good", `{"command":"ping"}`)
	if got := e.reply("good", 1); got != "v2 pong 1 1" {
		t.Fatalf("good got %q, want the reloaded code", got)
	}
	if g := e.host.Generation(); g != 2 {
		t.Fatalf("generation %d, want 2", g)
	}
}

func TestShutdownDoesNotWaitForARetiredWorker(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, StepBudget: stuckBudget}, map[string]string{"handlers.js": stuckJS})
	e.connect("bad")
	e.send("bad", `{"command":"stuck"}`)
	if got := e.reply("bad", 1); !isRunaway(got) {
		t.Fatalf("bad got %s, want runaway_handler", got)
	}
	// The abandoned goroutine is still in its call; the worker serving the
	// slot now stops at once, well before the hard deadline (1s here).
	began := time.Now()
	done := make(chan struct{})
	go func() { e.host.Shutdown(0); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown waits for good")
	}
	if took := time.Since(began); took > 900*time.Millisecond {
		t.Fatalf("Shutdown took %v: it waited for the retired worker", took)
	}
	if strings.Contains(e.logs.String(), "a worker did not stop") {
		t.Fatalf("Shutdown waited for the retired worker:\n%s", e.logs.String())
	}
}

func TestRetiredWorkersStillInTheirCallsAreBounded(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, StepBudget: stuckBudget, Workers: 1}, map[string]string{"handlers.js": stuckJS})
	e.connect("first")
	e.connect("second")
	e.send("first", `{"command":"stuck","addr":"tcp://stuck-1"}`)
	if got := e.reply("first", 1); !isRunaway(got) {
		t.Fatalf("first got %s, want runaway_handler", got)
	}
	// The fresh worker gets stuck too while the first retired one is still
	// in its call: with one worker, one abandoned goroutine is the bound,
	// so it stays stuck...
	e.send("second", `{"command":"stuck","addr":"tcp://stuck-2"}`)
	e.waitLog("client=second")
	e.waitLog("is not replaced yet")
	if n := e.host.Counters().WorkersRetired; n != 1 || len(e.out.messages("second")) != 0 {
		t.Fatalf("%d workers retired, second got %q; want the second stuck worker kept", n, e.out.messages("second"))
	}
	// ...until the first call returns and its goroutine ends: then it is
	// retired in turn.
	d.unblock("tcp://stuck-1")
	if got := e.reply("second", 1); !isRunaway(got) {
		t.Fatalf("second got %s, want runaway_handler", got)
	}
	if n := e.host.Counters().WorkersRetired; n != 2 {
		t.Fatalf("%d workers retired, want 2", n)
	}
	e.send("first", `{"command":"ping"}`)
	if got := e.reply("first", 2); got != "pong 1 1" {
		t.Fatalf("first got %q", got)
	}
}

// A request whose custom route() ran on the stuck worker has run
// JavaScript there, even while it waits in its client's queue: it is
// answered with runaway_handler, never routed a second time on the
// successor (whatever route() sent would go out twice).
func TestAQueuedRequestWhoseRouteRanIsAnsweredNotMoved(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, StepBudget: stuckBudget, Workers: 1}, map[string]string{"handlers.js": `
const { dealer, sleep, log } = require('moebius');
const handlers = {
  stuck: (c) => { log.info('entering the stuck call'); dealer('tcp://stuck'); },
  nap: function* (c) { c.send('napping'); yield sleep(3600 * 1000); },
  ping: (c) => c.send('pong'),
};
module.exports = {
  route(msg, c) {
    const cmd = JSON.parse(msg.text).command;
    if (cmd === 'ping') c.send('routed ping');
    return { handler: handlers[cmd] };
  },
};
`})
	e.connect("x")
	e.connect("y")
	e.send("x", `{"command":"nap"}`)
	if got := e.reply("x", 1); got != "napping" {
		t.Fatalf("got %q", got)
	}
	e.send("x", `{"command":"ping"}`) // routed at once (JavaScript ran), queued behind nap
	if got := e.reply("x", 2); got != "routed ping" {
		t.Fatalf("got %q", got)
	}
	e.send("y", `{"command":"stuck"}`)
	e.waitLog("entering the stuck call")
	got := e.replies("x", 4)
	if !isRunaway(got[2]) || !isRunaway(got[3]) {
		t.Fatalf("x got %q, want runaway_handler for the parked nap and for the routed ping", got)
	}
	e.send("x", `{"command":"ping"}`) // the successor routes and serves new requests
	if got := e.replies("x", 6); got[4] != "routed ping" || got[5] != "pong" {
		t.Fatalf("x got %q after the retirement", got)
	}
	if got := strings.Count(strings.Join(e.replies("x", 6), "\n"), "routed ping"); got != 2 {
		t.Fatalf("route() ran %d times for two pings", got)
	}
}

package jsrt_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/waitfor"
	"github.com/moebius-js/moebius-js/jsrt"
)

// fakeDialer stands in for the transport's DEALER: each address maps to a
// Go "server" that answers a message (nil: no answer) after a delay, on its
// own goroutine, as a remote server would.
type fakeDialer struct {
	mu      sync.Mutex
	cond    *sync.Cond // signalled when a connection closes
	servers map[string]func(frames [][]byte) (reply [][]byte, delay time.Duration)
	opened  int
	closed  int
	idents  []string
	curves  []*jsrt.CurveKeys // what each Dial was given
}

func (d *fakeDialer) Dial(addr string, opts jsrt.DialOptions, onMessage func([][]byte)) (jsrt.Upstream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	srv, ok := d.servers[addr]
	if !ok {
		return nil, errors.New("no such test server")
	}
	d.opened++
	d.idents = append(d.idents, opts.Identity)
	d.curves = append(d.curves, opts.Curve)
	return &fakeUpstream{d: d, srv: srv, onMessage: onMessage, done: make(chan struct{})}, nil
}

func (d *fakeDialer) counts() (opened, closed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opened, d.closed
}

type fakeUpstream struct {
	d         *fakeDialer
	srv       func([][]byte) ([][]byte, time.Duration)
	onMessage func([][]byte)
	mu        sync.Mutex
	closed    bool
	wg        sync.WaitGroup
	last      chan struct{} // closed when the previous reply was delivered: one connection keeps order
	done      chan struct{} // closed by Close: pending replies are dropped at once
}

func (u *fakeUpstream) Send(frames ...[]byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errors.New("closed")
	}
	reply, delay := u.srv(frames)
	if reply == nil {
		return nil
	}
	u.wg.Add(1)
	prev, done := u.last, make(chan struct{})
	u.last = done
	go func() {
		defer u.wg.Done()
		defer close(done)
		select { // the remote server's own pace
		case <-time.After(delay):
		case <-u.done:
			return
		}
		if prev != nil {
			select {
			case <-prev:
			case <-u.done:
				return
			}
		}
		u.mu.Lock()
		closed := u.closed
		u.mu.Unlock()
		if !closed {
			u.onMessage(reply)
		}
	}()
	return nil
}

func (u *fakeUpstream) Close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	close(u.done)
	u.mu.Unlock()
	u.wg.Wait() // quick: the reply goroutines see done
	u.d.mu.Lock()
	u.d.closed++
	u.d.cond.Broadcast()
	u.d.mu.Unlock()
}

// waitClosed waits until n connections have been closed.
func (d *fakeDialer) waitClosed(t *testing.T, n int) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !waitfor.Cond(&d.mu, d.cond, 5*time.Second, func() bool { return d.closed >= n }) {
		t.Fatalf("%d connections closed, want %d", d.closed, n)
	}
}

func newFakeDialer() *fakeDialer {
	d := &fakeDialer{servers: map[string]func([][]byte) ([][]byte, time.Duration){
		// echo answers "echo:" + the request, after a random few ms
		"tcp://echo": func(f [][]byte) ([][]byte, time.Duration) {
			return [][]byte{[]byte("echo:" + string(f[0]))}, time.Duration(rand.IntN(20)) * time.Millisecond
		},
		// multi answers three frames at once
		"tcp://multi": func(f [][]byte) ([][]byte, time.Duration) {
			return [][]byte{[]byte("a"), {0, 1}, []byte("c")}, 0
		},
		// slow answers after 300 ms
		"tcp://slow": func(f [][]byte) ([][]byte, time.Duration) {
			return [][]byte{[]byte("late:" + string(f[0]))}, 300 * time.Millisecond
		},
		// down never answers
		"tcp://down": func([][]byte) ([][]byte, time.Duration) { return nil, 0 },
	}}
	d.cond = sync.NewCond(&d.mu)
	return d
}

const upstreamHandlers = `
const { dealer, request, sleep, server, TimeoutError } = require('moebius');
const shared = dealer('tcp://echo', { identity: 'module-level' });

function* viaDealer(client, data) {
  const up = dealer('tcp://echo');
  up.send(data.text);
  client.send(yield up.recv({ timeout: 2000 }));
}
function* viaRequest(client, data) {
  client.send(yield request('tcp://echo', data.text, { timeout: 2000 }));
}
function* fanOut(client, data) {
  // data.n requests at once, each in its own spawned task
  for (let i = 0; i < data.n; i++) {
    server.spawn(function* (i) {
      const r = yield request('tcp://echo', client.id + '#' + i, { timeout: 2000 });
      client.send(r);
    }, i);
  }
}
function* timesOut(client, data) {
  try {
    yield request(data.address, 'ping', { timeout: data.timeout });
    client.send('no timeout?');
  } catch (e) {
    client.send((e instanceof TimeoutError) + ' ' + e.message);
  }
}
function* dealerTimesOut(client, data) {
  const up = dealer(data.address);
  up.send('ping');
  try { yield up.recv({ timeout: 100 }); } catch (e) { client.send(e.name); }
  client.send(yield up.recv({ timeout: 2000 })); // the late reply was kept for the next recv
}
function* multi(client) {
  const m = yield request('tcp://multi', 'x', { message: true });
  client.send(m.frames.length + ' ' + m.text + ' ' + m.frames[1][1]);
}
function* buffered(client) {
  const up = dealer('tcp://echo');
  up.send('one'); up.send('two');
  yield sleep(100); // both replies arrive before anyone asks
  client.send((yield up.recv()) + ',' + (yield up.recv()));
}
function* orphan(client) {
  const up = dealer('tcp://down');
  server.spawn(function* () {
    try { yield up.recv({ timeout: 0 }); } catch (e) { client.send(e.message); }
  });
  yield; // the spawned task is waiting when this handler ends and closes up
}
function* twoWaiters(client) {
  const up = dealer('tcp://down');
  server.spawn(function* () { try { yield up.recv({ timeout: 500 }); } catch (e) {} });
  yield;
  try { yield up.recv({ timeout: 500 }); } catch (e) { client.send(e.message); }
}
function* useShared(client, data) {
  shared.send(data.text);
  client.send(yield shared.recv());
}
function* hang(client) { client.send('waiting'); yield request('tcp://down', 'x', { timeout: 0 }); }
module.exports = { rules: [
  { command: 'viaDealer', handler: viaDealer },
  { command: 'viaRequest', handler: viaRequest },
  { command: 'fanOut', handler: fanOut },
  { command: 'timesOut', handler: timesOut },
  { command: 'dealerTimesOut', handler: dealerTimesOut },
  { command: 'multi', handler: multi },
  { command: 'buffered', handler: buffered },
  { command: 'twoWaiters', handler: twoWaiters },
  { command: 'useShared', handler: useShared },
  { command: 'hang', handler: hang },
  { command: 'orphan', handler: orphan },
]};
`

func startUpstream(t *testing.T) (*env, *fakeDialer) {
	d := newFakeDialer()
	return start(t, jsrt.Config{Dialer: d}, map[string]string{"handlers.js": upstreamHandlers}), d
}

func TestDealerSendsAndAwaitsTheReplyAndClosesWithItsHandler(t *testing.T) {
	e, d := startUpstream(t)
	e.connect("c")
	e.send("c", `{"command":"viaDealer","text":"hi"}`)
	if got := e.reply("c", 1); got != "echo:hi" {
		t.Fatalf("got %q", got)
	}
	e.send("c", `{"command":"viaDealer","text":"again"}`)
	e.reply("c", 2)
	// One connection per handler run plus the module-level one; the two
	// handlers' dealers are closed when their handlers end, the module's
	// stays open.
	d.waitClosed(t, 2)
	if opened, closed := d.counts(); opened != 3 || closed != 2 {
		t.Fatalf("opened %d, closed %d; want 3 and 2", opened, closed)
	}
}

func TestRequestResumesExactlyTheTaskThatAsked(t *testing.T) {
	e, d := startUpstream(t)
	const clients, each = 10, 5
	for i := 0; i < clients; i++ {
		id := fmt.Sprintf("c%d", i)
		e.connect(id)
		e.send(id, fmt.Sprintf(`{"command":"fanOut","n":%d}`, each))
	}
	for i := 0; i < clients; i++ {
		id := fmt.Sprintf("c%d", i)
		got := e.replies(id, each)
		seen := map[string]bool{}
		for _, r := range got {
			seen[r] = true
			if !strings.HasPrefix(r, "echo:"+id+"#") {
				t.Fatalf("%s got someone else's answer %q", id, r)
			}
		}
		if len(seen) != each {
			t.Fatalf("%s got %v, want %d distinct answers", id, got, each)
		}
	}
	// Connections went back to the pool instead of one per request.
	if opened, _ := d.counts(); opened > 1+clients*each {
		t.Fatalf("opened %d connections", opened)
	}
}

func TestRequestTimesOutWithTimeoutErrorAndDropsTheConnection(t *testing.T) {
	e, d := startUpstream(t)
	e.connect("c")
	for _, addr := range []string{"tcp://down", "tcp://slow"} {
		_, closedBefore := d.counts()
		start := time.Now()
		e.send("c", fmt.Sprintf(`{"command":"timesOut","address":%q,"timeout":100}`, addr))
		got := e.reply("c", len(e.out.messages("c"))+1)
		if !strings.HasPrefix(got, "true no reply from "+addr+" within 100ms") {
			t.Fatalf("%s: got %q", addr, got)
		}
		if el := time.Since(start); el < 100*time.Millisecond || el > 2*time.Second {
			t.Fatalf("%s: timed out after %v", addr, el)
		}
		if _, closed := d.counts(); closed != closedBefore+1 {
			t.Fatalf("%s: the timed-out connection was not closed", addr)
		}
	}
	// The slow server's late answer went nowhere: the next request is
	// answered by its own reply.
	e.send("c", `{"command":"viaRequest","text":"fresh"}`)
	if got := e.reply("c", 3); got != "echo:fresh" {
		t.Fatalf("got %q", got)
	}
}

func TestDealerKeepsALateReplyForTheNextRecv(t *testing.T) {
	e, _ := startUpstream(t)
	e.connect("c")
	e.send("c", `{"command":"dealerTimesOut","address":"tcp://slow"}`)
	if got := e.replies("c", 2); got[0] != "TimeoutError" || got[1] != "late:ping" {
		t.Fatalf("got %v", got)
	}
}

func TestRemoteRepliesAsTextBufferedOrWholeMessages(t *testing.T) {
	e, _ := startUpstream(t)
	e.connect("c")
	e.send("c", `{"command":"multi"}`)
	e.send("c", `{"command":"buffered"}`)
	e.send("c", `{"command":"twoWaiters"}`)
	e.send("c", `{"command":"useShared","text":"s"}`)
	got := e.replies("c", 4)
	want := []string{"3 a 1", "echo:one,echo:two", "", "echo:s"}
	if got[0] != want[0] || got[1] != want[1] || !strings.Contains(got[2], "another task is already waiting") || got[3] != want[3] {
		t.Fatalf("got %q", got)
	}
}

func TestDisconnectWhileAwaitingClosesTheConnection(t *testing.T) {
	e, d := startUpstream(t)
	e.connect("c")
	e.send("c", `{"command":"hang"}`)
	e.reply("c", 1)
	_, closedBefore := d.counts()
	e.disconnect("c")
	d.waitClosed(t, closedBefore+1)
}

func TestClosingADealerWakesItsWaiter(t *testing.T) {
	e, _ := startUpstream(t)
	e.connect("c")
	e.send("c", `{"command":"orphan"}`)
	if got := e.reply("c", 1); got != "dealer tcp://down was closed" {
		t.Fatalf("got %q", got)
	}
}

func TestIdlePooledConnectionsExpire(t *testing.T) {
	d := newFakeDialer()
	e := start(t, jsrt.Config{Dialer: d, PoolIdleTimeout: 50 * time.Millisecond}, map[string]string{"handlers.js": upstreamHandlers})
	e.connect("c")
	e.send("c", `{"command":"viaRequest","text":"once"}`)
	if got := e.reply("c", 1); got != "echo:once" {
		t.Fatalf("reply %q", got)
	}
	// The module-level dealer stays; the pooled connection goes once idle.
	opened, _ := d.counts()
	d.waitClosed(t, opened-1)
	e.send("c", `{"command":"viaRequest","text":"again"}`)
	if got := e.reply("c", 2); got != "echo:again" {
		t.Fatalf("after expiry: %q", got)
	}
}

// secondDialFails is a Dialer whose second Dial fails; it counts closes.
type secondDialFails struct {
	mu             sync.Mutex
	dials, closeds int
}

func (d *secondDialFails) Dial(string, jsrt.DialOptions, func([][]byte)) (jsrt.Upstream, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials++
	if d.dials == 2 {
		return nil, errors.New("refused on purpose")
	}
	return closeCounter{d}, nil
}

type closeCounter struct{ d *secondDialFails }

func (c closeCounter) Send(...[]byte) error { return nil }
func (c closeCounter) Close()               { c.d.mu.Lock(); c.d.closeds++; c.d.mu.Unlock() }

func TestALoadThatFailsOnOneWorkerClosesWhatTheOthersOpened(t *testing.T) {
	d := &secondDialFails{}
	dir := t.TempDir()
	file := filepath.Join(dir, "handlers.js")
	src := "const { dealer } = require('moebius');\nconst up = dealer('tcp://anywhere');\nmodule.exports = { rules: [] };\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := jsrt.New(jsrt.Config{Handlers: file, Workers: 2, Dialer: d}); err == nil {
		t.Fatal("New succeeded though worker 1 could not open its dealer")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closeds != 1 {
		t.Fatalf("%d of worker 0's dealers closed, want 1", d.closeds)
	}
}

// Dealers opened at the top of handlers.js count against their own
// generation's bound, not against the worker's alongside the generation
// a reload replaces: a file that opens more than half the bound at top
// level still reloads.
func TestAFileWhoseTopLevelOpensManyDealersStillReloads(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, Workers: 1}, map[string]string{"handlers.js": `
const { dealer } = require('moebius');
const backends = [];
for (let i = 0; i < 600; i++) backends.push(dealer('tcp://open'));
module.exports = { rules: [{ command: 'ping', handler: (c) => c.send('pong ' + backends.length) }] };
`})
	if err := e.host.Reload(); err != nil {
		t.Fatalf("reload of unchanged code: %v", err)
	}
	e.connect("c")
	e.send("c", `{"command":"ping"}`)
	if got := e.reply("c", 1); got != "pong 600" {
		t.Fatalf("got %q", got)
	}
	if opened, closed := d.counts("tcp://open"); opened != 1200 {
		t.Fatalf("%d dealers opened (%d closed), want 600 per generation", opened, closed)
	}
}

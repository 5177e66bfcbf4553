package jsrt_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

const hostileJS = `
const { sleep, log, text, bytes, dealer, request, server } = require('moebius');
function missing(c) {
  const results = [];
  for (const f of [() => sleep(), () => text(), () => bytes(), () => dealer(), () => request(),
                   () => log.info(), () => server.broadcast(), () => server.client(), () => server.iterate(),
                   () => server.send()]) {
    try { f(); results.push('ok'); } catch (e) { results.push(e.name); }
  }
  c.send(results.join(','));
}
function throwsGetter() { throw { get message() { for (;;) {} }, get name() { for (;;) {} } }; }
function throwsToString() { throw { toString() { for (;;) {} } }; }
module.exports = {
  rules: [
    { command: 'missing', handler: missing },
    { command: 'getter', handler: throwsGetter },
    { command: 'toString', handler: throwsToString },
    { command: 'echo', handler: (c, d) => c.send(d) },
  ],
};
`

func TestNativesCalledWithoutArgumentsThrowInsteadOfCrashing(t *testing.T) {
	e := start(t, jsrt.Config{Dialer: newFakeDialer()}, map[string]string{"handlers.js": hostileJS})
	e.connect("c")
	e.send("c", `{"command":"missing"}`)
	want := "TypeError,TypeError,TypeError,TypeError,TypeError,ok,TypeError,ok,TypeError,TypeError"
	if got := e.reply("c", 1); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestThrownObjectsAreDescribedWithoutRunningTheirCode(t *testing.T) {
	e := start(t, jsrt.Config{StepBudget: 200 * time.Millisecond}, map[string]string{"handlers.js": hostileJS})
	e.connect("c")
	e.send("c", `{"command":"getter"}`)
	e.send("c", `{"command":"toString"}`)
	e.send("c", `{"command":"echo"}`)
	got := e.replies("c", 3)
	for _, r := range got[:2] {
		if !strings.Contains(r, `"handler_error"`) || !strings.Contains(r, "thrown Object object") {
			t.Fatalf("got %s", r)
		}
	}
	if got[2] != `{"command":"echo"}` {
		t.Fatalf("the worker is stuck: %q", got[2])
	}
}

const routeCrash = `
const { sleep } = require('moebius');
module.exports = { route() { sleep(); } };
`

func TestNativeMisuseInsideRouteDoesNotKillTheWorker(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": routeCrash})
	e.connect("c")
	e.send("c", "hi")
	e.send("c", "again")
	got := e.replies("c", 2)
	for _, r := range got {
		if !strings.Contains(r, `"no_route"`) || !strings.Contains(r, "TypeError: sleep(ms)") {
			t.Fatalf("got %s", r)
		}
	}
}

const ownedSpawns = `
const { sleep, server } = require('moebius');
function report(what) { const w = server.client('watcher'); if (w) w.send(what); }
module.exports = {
  rules: [
    { command: 'spawnLoop', handler: (c) => {
        // It says so from inside its try: a generator cancelled before its
        // first step never runs its finally.
        server.spawn(function* (c) {
          try { c.send('spawned'); for (;;) yield sleep(1000); } finally { report('stopped work of ' + c.id); }
        }, c);
    } },
  ],
  *background() {
    server.spawn(function* () {
      try { for (;;) yield sleep(1000); } finally { report('stopped background work of VERSION'); }
    });
    for (;;) yield sleep(1000);
  },
};
`

func TestSpawnedWorkEndsWithItsClientOrWithItsCode(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": strings.Replace(ownedSpawns, "VERSION", "v1", 1)})
	e.connect("watcher")
	e.connect("c")
	e.send("c", `{"command":"spawnLoop"}`)
	e.reply("c", 1)
	e.disconnect("c")
	if got := e.reply("watcher", 1); got != "stopped work of c" {
		t.Fatalf("watcher got %q", got)
	}
	e.write("handlers.js", strings.Replace(ownedSpawns, "VERSION", "v2", 1))
	if err := e.host.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := e.reply("watcher", 2); got != "stopped background work of v1" {
		t.Fatalf("watcher got %q", got)
	}
}

const manyRequests = `
const { request, server } = require('moebius');
module.exports = { rules: [
  { command: 'flood', handler: (c, d) => {
      for (let i = 0; i < d.n; i++) server.spawn(function* (i) {
        const timeout = i < (d.first || d.n) ? d.timeout : d.rest;
        try { c.send(yield request('tcp://slow', 'q' + i, { timeout })); }
        catch (e) { c.send(e.name); }
      }, i);
  } },
]};
`

func TestRequestsBeyondTheConnectionLimitWaitTheirTurn(t *testing.T) {
	d := newFakeDialer()
	e := start(t, jsrt.Config{Dialer: d}, map[string]string{"handlers.js": manyRequests})
	e.connect("c")
	const n = 100 // more than the 64 connections one address may have
	e.send("c", fmt.Sprintf(`{"command":"flood","n":%d,"timeout":5000}`, n))
	got := e.replies("c", n)
	seen := map[string]bool{}
	for _, r := range got {
		seen[r] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct answers of %d: %v", len(seen), n, got)
	}
	if opened, _ := d.counts(); opened > 64 {
		t.Fatalf("opened %d connections to one address; at most 64 at once", opened)
	}
}

func TestARequestWaitingForAConnectionTimesOutInLine(t *testing.T) {
	d := newFakeDialer()
	e := start(t, jsrt.Config{Dialer: d}, map[string]string{"handlers.js": manyRequests})
	e.connect("c")
	// 64 requests hold every connection for 300 ms and get their answers;
	// six more wait in line and give up after 100 ms, never getting one.
	e.send("c", `{"command":"flood","n":70,"first":64,"timeout":2000,"rest":100}`)
	got := e.replies("c", 70)
	timeouts, answers := 0, 0
	for _, r := range got {
		switch {
		case r == "TimeoutError":
			timeouts++
		case strings.HasPrefix(r, "late:q"):
			answers++
		}
	}
	if timeouts != 6 || answers != 64 {
		t.Fatalf("%d timeouts and %d answers, want 6 and 64: %v", timeouts, answers, got)
	}
	if opened, _ := d.counts(); opened != 64 {
		t.Fatalf("opened %d connections, want 64", opened)
	}
}

const leakyTop = `
const { dealer } = require('moebius');
const up = dealer('tcp://echo');
oops(); // fails after opening a dealer
`

func TestAFailedReloadClosesWhatItsCodeOpened(t *testing.T) {
	d := newFakeDialer()
	e := start(t, jsrt.Config{Dialer: d}, map[string]string{"handlers.js": `module.exports = { rules: [] };`})
	for i := 0; i < 3; i++ {
		e.write("handlers.js", leakyTop)
		if err := e.host.Reload(); err == nil {
			t.Fatal("the reload succeeded")
		}
	}
	if opened, closed := d.counts(); opened != 3 || closed != 3 {
		t.Fatalf("opened %d dealers, closed %d", opened, closed)
	}
	if c := e.host.Counters(); c.ReloadFailures != 3 {
		t.Fatalf("counters %+v", c)
	}
}

func TestSparseRulesArrayIsRefused(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `module.exports = { rules: [] };`})
	e.write("handlers.js", "const r = []; r.length = 4e9; module.exports = { rules: r };")
	if err := e.host.Reload(); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("reload error %v", err)
	}
}

const busyWorker = `
module.exports = { rules: [
  { command: 'spin', handler: (c, d) => { c.send('spinning'); const end = Date.now() + d.ms; while (Date.now() < end) {} c.send('done'); } },
  { command: 'echo', handler: (c, d) => c.send(d) },
]};
`

func TestRequestsHoldTheirRoomUntilTheyStart(t *testing.T) {
	e := start(t, jsrt.Config{StepBudget: 10 * time.Second, QueueLimit: 3}, map[string]string{"handlers.js": busyWorker})
	e.connect("spinner")
	e.connect("flooder")
	e.send("spinner", `{"command":"spin","ms":500}`)
	e.reply("spinner", 1) // the worker is now busy for half a second
	for i := 0; i < 3; i++ {
		if !e.trySend("flooder", `{"command":"echo"}`) {
			t.Fatalf("message %d refused within the queue limit of 3", i)
		}
	}
	if e.trySend("flooder", `{"command":"echo"}`) {
		t.Fatal("a fourth message got room while three waited for the busy worker")
	}
	e.send("flooder", `{"command":"echo"}`) // waits, as a reader would, until one starts
	e.replies("flooder", 4)                 // each released its room when it started, before replying
	if n := e.held("flooder"); n != 0 {
		t.Fatalf("%d messages still held after every request ran", n)
	}
}

func TestDroppedRequestsReleaseTheirRoom(t *testing.T) {
	e := start(t, jsrt.Config{QueueLimit: 10}, map[string]string{"handlers.js": `
const { sleep } = require('moebius');
module.exports = { rules: [
  { command: 'park', handler: function* (c) { c.send('parked'); yield sleep(60000); } },
  { command: 'skip', handler: (c) => c.send('ran'), strategy: 'ignore' },
]};`})
	e.connect("a")
	e.connect("b")
	e.send("a", `{"command":"park"}`)
	e.reply("a", 1)
	e.send("a", `{"command":"skip"}`) // ignored: the park still runs
	e.send("a", `{"command":"park"}`) // queued behind it
	e.send("a", `{"command":"park"}`)
	e.send("b", `{"command":"skip"}`) // taken in after a's: once b is answered, a's were handled
	e.reply("b", 1)
	if n := e.held("a"); n != 2 {
		t.Fatalf("%d messages held; want the 2 queued (the ignored one released)", n)
	}
	e.disconnect("a") // the queued ones are dropped with the task
	e.send("b", `{"command":"skip"}`)
	e.reply("b", 2)
	if n := e.held("a"); n != 0 {
		t.Fatalf("%d messages held after the client left", n)
	}
}

// JavaScript a custom route returns (or a client's state) may run code of
// its own when it is read: a getter, a toString. Reading it is a step like
// any other: a loop there is interrupted, and the worker serves on.
func TestValuesReadAfterARouteOrAtReloadRunUnderTheWatchdog(t *testing.T) {
	const src = `
const echo = (c, d) => c.send('echo ' + d);
module.exports = {
  route(message) {
    switch (message.text) {
    case 'getter': return { get handler() { for (;;) {} } };
    case 'strategy': return { handler: echo, strategy: { toString() { for (;;) {} } } };
    case 'trap':
      return { handler: (c) => {
        delete c.state;
        Object.defineProperty(c, 'state', { get() { for (;;) {} }, configurable: true });
        c.send('trapped');
      } };
    default: return { handler: echo };
    }
  },
};`
	cases := []struct{ name, msg string }{{"a looping handler getter", "getter"}, {"a looping strategy toString", "strategy"}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, jsrt.Config{StepBudget: 100 * time.Millisecond}, map[string]string{"handlers.js": src})
			e.connect("a")
			e.connect("b")
			e.send("a", tc.msg)
			if got := e.reply("a", 1); !strings.Contains(got, `"runaway_handler"`) {
				t.Fatalf("reply %s, want runaway_handler", got)
			}
			e.send("b", "hello")
			if got := e.reply("b", 1); got != "echo hello" {
				t.Fatalf("the worker is stuck: %q", got)
			}
		})
	}
	t.Run("a looping state getter at reload", func(t *testing.T) {
		e := start(t, jsrt.Config{StepBudget: 100 * time.Millisecond}, map[string]string{"handlers.js": src})
		e.connect("a")
		e.send("a", "trap")
		if got := e.reply("a", 1); got != "trapped" {
			t.Fatalf("reply %q", got)
		}
		done := make(chan error, 1)
		go func() { done <- e.host.Reload() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("reload: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("reload hangs on a looping state getter")
		}
		e.send("a", "again")
		if got := e.reply("a", 2); got != "echo again" {
			t.Fatalf("after the reload: %q", got)
		}
	})
}

// blockingDialer's Dial blocks until release is closed: a native call the
// step budget cannot interrupt.
type blockingDialer struct{ release chan struct{} }

func (d blockingDialer) Dial(string, jsrt.DialOptions, func([][]byte)) (jsrt.Upstream, error) {
	<-d.release
	return nil, fmt.Errorf("released")
}

func TestShutdownReturnsThoughAWorkerIsStuckInANativeCall(t *testing.T) {
	d := blockingDialer{release: make(chan struct{})}
	defer close(d.release) // let the abandoned goroutine end with the test
	e := start(t, jsrt.Config{Dialer: d, StepBudget: 50 * time.Millisecond}, map[string]string{"handlers.js": `
const { dealer, log } = require('moebius');
module.exports = { rules: [{ command: 'stuck', handler: () => { log.info('entering the stuck call'); dealer('tcp://nowhere'); } }] };`})
	e.connect("c")
	e.send("c", `{"command":"stuck"}`)
	e.waitLog("entering the stuck call")
	done := make(chan struct{})
	go func() { e.host.Shutdown(0); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown waits for good on a worker stuck in a native call")
	}
	e.waitLog("a worker did not stop")
}

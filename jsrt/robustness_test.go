package jsrt_test

import (
	"fmt"
	"strings"
	"sync/atomic"
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
        server.spawn(function* (id) {
          try { for (;;) yield sleep(1000); } finally { report('stopped work of ' + id); }
        }, c.id);
        c.send('spawned');
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

func TestAClientCannotPileUpMessagesWhileItsWorkerIsBusy(t *testing.T) {
	e := start(t, jsrt.Config{StepBudget: 10 * time.Second}, map[string]string{"handlers.js": busyWorker})
	e.connect("spinner")
	e.connect("flooder")
	e.send("spinner", `{"command":"spin","ms":1000}`)
	e.reply("spinner", 1) // the worker is now busy for a second
	var delivered atomic.Int32
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; i < jsrt.InboxPerClient+4; i++ {
			e.host.Message("flooder", e.conn["flooder"], [][]byte{[]byte(`{"command":"echo"}`)})
			delivered.Add(1)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for delivered.Load() < jsrt.InboxPerClient {
		if time.Now().After(deadline) {
			t.Fatal("the flooder's first messages were not taken")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a window in which no more may get through
	if n := delivered.Load(); n != jsrt.InboxPerClient || len(e.out.messages("spinner")) != 1 {
		t.Fatalf("%d messages taken while the worker was busy (want %d)", n, jsrt.InboxPerClient)
	}
	<-finished // once the worker is free, the rest go through
	e.replies("flooder", jsrt.InboxPerClient+4)
}

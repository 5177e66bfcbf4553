package tests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstreamB is the server that A awaits: it answers after a few ms, in an
// order unrelated to the order of the questions.
const upstreamB = `
const { sleep } = require('moebius');
module.exports = { rules: [
  { command: 'answer', handler: function* (c, d) {
      yield sleep(Math.floor(Math.random() * 20));
      c.send('B says ' + d.q);
  } },
]};
`

// proxyA relays to B; each relay runs as its own spawned task, so one
// client's requests are in flight together.
const proxyA = `
const { request, dealer, server, TimeoutError } = require('moebius');
const B = %q;
function* ask(client, data) {
  try {
    const answer = yield request(B, { command: 'answer', q: data.q }, { timeout: data.timeout || 2000 });
    client.send(answer);
  } catch (e) {
    if (e instanceof TimeoutError) client.send('timeout: ' + data.q);
    else throw e;
  }
}
module.exports = { rules: [
  { command: 'relay', handler: function* (c, d) {
      const up = dealer(B);
      up.send({ command: 'answer', q: d.q });
      c.send(yield up.recv({ timeout: 2000 }));
  } },
  { command: 'ask', handler: ask },
  { command: 'fanOut', handler: (c, d) => { server.spawn(ask, c, d); } },
]};
`

func startPair(t *testing.T) (a, b *server) {
	t.Helper()
	b = startServer(t, writeHandlers(t, upstreamB))
	a = startServer(t, writeHandlers(t, fmt.Sprintf(proxyA, b.addr)))
	return a, b
}

func TestHandlerAwaitsAnotherServerAndRelaysItsReply(t *testing.T) {
	a, _ := startPair(t)
	c := dial(t, a.addr, "asker", false)
	if got := c.roundTrip(`{"command":"relay","q":"via dealer"}`); got != "B says via dealer" {
		t.Fatalf("got %q", got)
	}
	if got := c.roundTrip(`{"command":"ask","q":"via request"}`); got != "B says via request" {
		t.Fatalf("got %q", got)
	}
}

func TestConcurrentProxiedRequestsEachGetTheirOwnAnswer(t *testing.T) {
	a, _ := startPair(t)
	const clients, each = 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		c := dial(t, a.addr, fmt.Sprintf("client-%d", i), false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := map[string]bool{}
			for j := 0; j < each; j++ {
				q := fmt.Sprintf("%s/%d", c.id, j)
				want["B says "+q] = true
				if err := c.sock.Send(zmqMsg(fmt.Sprintf(`{"command":"fanOut","q":%q}`, q))); err != nil {
					errs <- err
					return
				}
			}
			for j := 0; j < each; j++ {
				select {
				case m := <-c.in:
					if got := string(m[0]); !want[got] {
						errs <- fmt.Errorf("%s got %q, which is not one of its answers", c.id, got)
						return
					}
					delete(want, string(m[0]))
				case <-time.After(10 * time.Second):
					errs <- fmt.Errorf("%s: answers missing: %v", c.id, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestUpstreamDownTimesOutCleanlyAndRecoversWhenItIsBack(t *testing.T) {
	a, b := startPair(t)
	c := dial(t, a.addr, "patient", false)
	if got := c.roundTrip(`{"command":"ask","q":"first"}`); got != "B says first" {
		t.Fatalf("got %q", got)
	}
	port := strings.TrimPrefix(b.addr, "tcp://")
	b.stop()

	const timeout = 300 * time.Millisecond
	for i := 0; i < 3; i++ {
		start := time.Now()
		got := c.roundTrip(fmt.Sprintf(`{"command":"ask","q":"down %d","timeout":%d}`, i, timeout.Milliseconds()))
		if got != fmt.Sprintf("timeout: down %d", i) {
			t.Fatalf("while B is down: %q", got)
		}
		if el := time.Since(start); el < timeout || el > timeout+time.Second {
			t.Fatalf("the timeout took %v, want about %v", el, timeout)
		}
	}

	startServer(t, writeHandlers(t, upstreamB), "--bind", "tcp://"+port) // B is back on its address
	if got := c.roundTrip(`{"command":"ask","q":"back"}`); got != "B says back" {
		t.Fatalf("after B restarted: %q", got)
	}
}

const ticker = `
const { sleep, server } = require('moebius');
module.exports = {
  rules: [
    { command: 'subscribe', handler: (c) => { c.state.subscribed = true; c.send('subscribed'); } },
    { command: 'spawn', handler: (c) => server.spawn(function* (id) {
        yield sleep(10);
        server.client(id).send('spawned work ran');
      }, c.id) },
    { command: 'echo', handler: (c, d) => c.send(d) },
  ],
  *background(srv) {
    for (let n = 1; ; n++) {
      srv.iterate((c) => { if (c.state.subscribed) c.send('tick ' + n); });
      yield sleep(100);
    }
  },
};
`

func TestBackgroundTicksSubscribersAtItsCadence(t *testing.T) {
	srv := startServer(t, writeHandlers(t, ticker))
	sub := dial(t, srv.addr, "subscriber", false)
	quiet := dial(t, srv.addr, "quiet", false)
	if got := sub.roundTrip(`{"command":"subscribe"}`); got != "subscribed" {
		t.Fatalf("got %q", got)
	}
	first := sub.recvText()
	start := time.Now()
	const ticks = 10
	var last string
	for i := 0; i < ticks; i++ {
		last = sub.recvText()
	}
	var a, b int
	_, errA := fmt.Sscanf(first, "tick %d", &a)
	_, errB := fmt.Sscanf(last, "tick %d", &b)
	if errA != nil || errB != nil || b-a != ticks {
		t.Fatalf("ticks %q .. %q are not consecutive", first, last)
	}
	if el := time.Since(start); el < 900*time.Millisecond || el > 3*time.Second {
		t.Fatalf("%d ticks every 100ms took %v", ticks, el)
	}
	if got := quiet.roundTrip(`{"command":"echo"}`); got != `{"command":"echo"}` {
		t.Fatalf("the client that did not subscribe received %q", got)
	}
	if got := quiet.roundTrip(`{"command":"spawn"}`); got != "spawned work ran" {
		t.Fatalf("spawn: %q", got)
	}
}

package tests

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"testing"
	"time"
)

// stuckHandlers' slow command makes one native call that the step
// budget's interrupt cannot stop: Array.prototype.indexOf over an object
// claiming d.n elements looks at each of them inside goja, allocating
// nothing that lives (some seconds for the n the test sends).
const stuckHandlers = `
let served = 0; // per runtime: a fresh worker counts from 0
module.exports = { rules: [
  { command: 'slow', handler: (c, d) => {
      c.send('starting');
      Array.prototype.indexOf.call({ length: d.n }, 1);
      c.send('after the native call');
  } },
  { command: 'ping', handler: (c) => { served++; c.send('pong ' + served); } },
]};
`

// workerOf is the worker the server pins identity id to with n workers
// (FNV-1a of the identity, as jsrt's Host.pick).
func workerOf(id string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

func TestAStepStuckInANativeCallRetiresItsWorkerWhileOthersAreServed(t *testing.T) {
	const budget = 100 * time.Millisecond // retired 1s (the minimum) after the interrupt
	// About 4s of indexOf on the development machine (6s with the race
	// detector): well past the point of retirement.
	n := 60_000_000
	if raceEnabled {
		n = 20_000_000
	}
	srv := startServer(t, writeHandlers(t, stuckHandlers), "--workers", "2", "--step-budget", budget.String(),
		"--metrics", "127.0.0.1:0")
	ids := map[int][]string{}
	for i := 0; len(ids[0]) < 2 || len(ids[1]) < 1; i++ {
		id := fmt.Sprintf("client-%d", i)
		ids[workerOf(id, 2)] = append(ids[workerOf(id, 2)], id)
	}
	stuckWorker := 0
	bad := dial(t, srv.addr, ids[0][0], false)
	sibling := dial(t, srv.addr, ids[0][1], false) // on the same worker as bad
	other := dial(t, srv.addr, ids[1][0], false)   // on the other worker

	if got := sibling.roundTrip(`{"command":"ping"}`); got != "pong 1" {
		t.Fatalf("sibling got %q", got)
	}
	bad.send(fmt.Sprintf(`{"command":"slow","n":%d}`, n))
	if got := bad.recvText(); got != "starting" {
		t.Fatalf("bad got %q", got)
	}
	began := time.Now()
	sibling.send(`{"command":"ping"}`) // waits behind the stuck step

	// The other worker answers at once, again and again, until the stuck
	// worker is retired and bad gets its error.
	served := 0
	for bad.pending() == 0 {
		if time.Since(began) > 15*time.Second {
			t.Fatal("bad got no reply within 15s: its worker was never retired")
		}
		asked := time.Now()
		if got, want := other.roundTrip(`{"command":"ping"}`), fmt.Sprintf("pong %d", served+1); got != want {
			t.Fatalf("other got %q, want %q", got, want)
		}
		served++
		if waited := time.Since(asked); waited > time.Second {
			t.Fatalf("other waited %v for a reply while a worker was stuck", waited)
		}
	}
	var reply struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	raw := bad.recvText()
	if err := json.Unmarshal([]byte(raw), &reply); err != nil || reply.Error.Code != "runaway_handler" ||
		!strings.Contains(reply.Error.Message, "native call") {
		t.Fatalf("bad got %s, want runaway_handler naming the native call", raw)
	}
	t.Logf("retired after %v; the other worker answered %d requests meanwhile", time.Since(began), served)
	if served < 2 {
		t.Fatalf("the other worker answered %d requests while one was stuck", served)
	}

	// sibling's waiting request ran on the fresh worker, and everyone is
	// served afterwards: the fresh worker's clients and the other worker's.
	if got := sibling.recvText(); got != "pong 1" {
		t.Fatalf("sibling's waiting request got %q, want it served by a fresh worker", got)
	}
	if got := bad.roundTrip(`{"command":"ping"}`); got != "pong 2" {
		t.Fatalf("bad got %q after the retirement", got)
	}
	if got, want := other.roundTrip(`{"command":"ping"}`), fmt.Sprintf("pong %d", served+1); got != want {
		t.Fatalf("other got %q, want %q", got, want)
	}
	srv.logs.waitFor(t, regexp.MustCompile(fmt.Sprintf(`level=WARN msg="worker retired:[^"]*" worker=%d client=%s `,
		stuckWorker, regexp.QuoteMeta(ids[0][0]))), 5*time.Second)
	if got := srv.metric("moebius_workers_retired_total"); got != 1 {
		t.Fatalf("moebius_workers_retired_total %v, want 1", got)
	}
	if got := srv.metricLabelled("moebius_request_errors_total", `code="runaway_handler"`); got != 1 {
		t.Fatalf("runaway_handler counter %v, want 1", got)
	}
}

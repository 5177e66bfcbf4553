package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchOutput is `moebius-js bench --json`.
type benchOutput struct {
	Clients    int     `json:"clients"`
	DurationS  float64 `json:"duration_s"`
	Replies    int64   `json:"replies"`
	Throughput float64 `json:"throughput"`
	LatencyUS  struct {
		P50, P90, P99, Max float64
	} `json:"latency_us"`
	Errors     int64  `json:"errors"`
	Timeouts   int64  `json:"timeouts"`
	FirstError string `json:"first_error"`
}

// runBench runs `moebius-js bench --json` against addr with a short run
// and extra flags, and returns its result and exit code.
func runBench(t *testing.T, addr string, flags ...string) (benchOutput, int) {
	t.Helper()
	args := append([]string{"bench", "--connect", addr, "--clients", "4", "--duration", "1s", "--warmup", "200ms", "--json"}, flags...)
	stdout, stderr, code := runCLI(t, args...)
	var out benchOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("bench %q: exit %d, stdout is not JSON (%v):\n%s\nstderr:\n%s", flags, code, err, stdout, stderr)
	}
	if code != 0 {
		t.Logf("bench %q: exit %d, stderr:\n%s", flags, code, stderr)
	}
	return out, code
}

// checkMeasured checks a run that went well.
func checkMeasured(t *testing.T, out benchOutput, code int) {
	t.Helper()
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	l := out.LatencyUS
	if out.Clients != 4 || out.DurationS != 1 || out.Replies <= 0 || out.Throughput <= 0 {
		t.Errorf("clients %d, duration %vs, replies %d, throughput %v", out.Clients, out.DurationS, out.Replies, out.Throughput)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency out of order: %+v", l)
	}
	if out.Errors != 0 {
		t.Errorf("%d errors, first: %s", out.Errors, out.FirstError)
	}
}

func TestBenchEcho(t *testing.T) {
	srv := startServer(t, "../handlers.js")
	out, code := runBench(t, srv.addr)
	checkMeasured(t, out, code)
	t.Logf("%d replies, %.0f/s, p50 %.0fµs p99 %.0fµs", out.Replies, out.Throughput, out.LatencyUS.P50, out.LatencyUS.P99)
}

// Replies that fail --expect are errors; a run in which none matched exits 1.
func TestBenchExpectMismatchFails(t *testing.T) {
	srv := startServer(t, "../handlers.js")
	out, code := runBench(t, srv.addr, "--expect", "Reply to {id}")
	if code != 1 || out.Errors == 0 || out.Replies != 0 {
		t.Errorf("exit %d, %d errors, %d replies: want 1, some, none", code, out.Errors, out.Replies)
	}
	if !strings.Contains(out.FirstError, `want "Reply to bench-`) {
		t.Errorf("first error %q", out.FirstError)
	}
}

const replyHandlers = `
let n = 0;
module.exports = {
  rules: [
    { command: 'reply', handler: (client) => client.send('Reply to ' + client.id) },
    // every other reply is wrong
    { command: 'mixed', handler: (client) => client.send(n++ % 2 ? 'Reply to ' + client.id : 'wrong') },
  ],
};
`

func TestBenchExpectReplyToID(t *testing.T) {
	srv := startServer(t, writeHandlers(t, replyHandlers))
	out, code := runBench(t, srv.addr, "--message", `{"command":"reply"}`, "--expect", "Reply to {id}")
	checkMeasured(t, out, code)
}

// Errors alone do not fail a run in which some replies matched.
func TestBenchSomeErrorsStillSucceeds(t *testing.T) {
	srv := startServer(t, writeHandlers(t, replyHandlers))
	out, code := runBench(t, srv.addr, "--message", `{"command":"mixed"}`, "--expect", "Reply to {id}")
	if code != 0 || out.Errors == 0 || out.Replies == 0 {
		t.Errorf("exit %d, %d errors, %d replies: want 0, some, some", code, out.Errors, out.Replies)
	}
}

// The first request of each client outlives the timeout and its handler
// replies later: the client reconnects and the late reply is never taken
// for a later request's.
func TestBenchTimeoutLateReplyIsNotCounted(t *testing.T) {
	srv := startServer(t, writeHandlers(t, `
const { sleep } = require('moebius');
let n = 0;
function* slowFirst(client) {
  if (n++ < 4) yield sleep(1500); // the four clients' first requests
  client.send('Reply to ' + client.id);
}
module.exports = { rules: [{ command: 'slow', handler: slowFirst }] };
`))
	out, code := runBench(t, srv.addr, "--message", `{"command":"slow"}`, "--expect", "Reply to {id}",
		"--warmup", "0s", "--timeout", "300ms")
	checkMeasured(t, out, code)
	if out.Timeouts != 4 {
		t.Errorf("%d timeouts, want 4", out.Timeouts)
	}
}

func TestBenchConnectFailureExits1(t *testing.T) {
	srv := startServer(t, "../handlers.js")
	addr := srv.addr
	srv.stop()
	_, stderr, code := runCLI(t, "bench", "--connect", addr, "--duration", "100ms")
	if code != 1 || !strings.Contains(stderr, "connect "+addr) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

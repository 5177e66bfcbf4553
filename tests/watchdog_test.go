package tests

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

const runawayHandlers = `
const { sleep } = require('moebius');
function recurse(n) { return recurse(n + 1) + 1; }
module.exports = { rules: [
  { command: 'spin', handler: () => { while (true) {} } },
  { command: 'spinLater', handler: function* (c) { c.send('started'); yield sleep(10); for (;;) {} } },
  { command: 'recurse', handler: () => recurse(0) },
  { command: 'echo', handler: (c, d) => c.send(d) },
]};
`

func TestRunawayHandlersAreInterruptedWhileOthersAreServed(t *testing.T) {
	const budget = 300 * time.Millisecond
	srv := startServer(t, writeHandlers(t, runawayHandlers), "--step-budget", budget.String(), "--metrics", "127.0.0.1:0")
	other := dial(t, srv.addr, "other", false)
	for _, tc := range []struct{ command, message string }{
		{"spin", "step exceeded its time budget"},
		{"spinLater", "step exceeded its time budget"},
		{"recurse", "maximum call stack size exceeded"},
	} {
		t.Run(tc.command, func(t *testing.T) {
			bad := dial(t, srv.addr, "bad-"+tc.command, false)
			bad.send(`{"command":"` + tc.command + `"}`)
			if tc.command == "spinLater" {
				if got := bad.recvText(); got != "started" {
					t.Fatalf("got %q", got)
				}
			}
			// Another client asks while the step runs away: it waits at
			// most for the budget, not forever.
			start := time.Now()
			if got := other.roundTrip(`{"command":"echo","during":"` + tc.command + `"}`); !strings.Contains(got, tc.command) {
				t.Fatalf("other got %q", got)
			}
			if waited := time.Since(start); waited > budget+2*time.Second {
				t.Fatalf("other waited %v during the runaway step", waited)
			}
			var reply struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			raw := bad.recvText()
			if err := json.Unmarshal([]byte(raw), &reply); err != nil || reply.Error.Code != "runaway_handler" ||
				!strings.Contains(reply.Error.Message, tc.message) {
				t.Fatalf("bad client got %s, want runaway_handler: %s", raw, tc.message)
			}
			// The runtime is healthy: both clients are served afterwards.
			if got := bad.roundTrip(`{"command":"echo","after":1}`); !strings.Contains(got, "after") {
				t.Fatalf("bad client after: %q", got)
			}
			if got := other.roundTrip(`{"command":"echo","after":2}`); !strings.Contains(got, "after") {
				t.Fatalf("other after: %q", got)
			}
		})
	}
	srv.logs.waitFor(t, regexp.MustCompile(`level=ERROR msg="handler failed".*code=runaway_handler`), 5*time.Second)
	if got := srv.metric(`moebius_request_errors_total{code="runaway_handler"}`); got != 3 {
		t.Fatalf("runaway_handler counter %v, want 3", got)
	}
}

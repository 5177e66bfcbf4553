package jsrt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

const runaway = `
const { sleep } = require('moebius');
function spin() { while (true) {} }
function* spinLater(client) { client.send('before'); yield; for (;;) {} }
function* spinInFinally(client) { client.send('started'); try { yield sleep(5000); } finally { for (;;) {} } }
function recurse(n) { return recurse(n + 1) + 1; }
function deep() { recurse(0); }
function* ping(client) { yield sleep(1); client.send('pong'); }
function* nest(n) { yield nest(n + 1); }
function* tooDeep(client) { yield nest(0); }
module.exports = { rules: [
  { command: 'spin', handler: spin },
  { command: 'spinLater', handler: spinLater },
  { command: 'spinInFinally', handler: spinInFinally, strategy: 'replace' },
  { command: 'deep', handler: deep },
  { command: 'ping', handler: ping },
  { command: 'tooDeep', handler: tooDeep },
]};
`

func TestRunawayStepsAreInterruptedAndOthersKeepBeingServed(t *testing.T) {
	for _, tc := range []struct{ command, want string }{
		{"spin", "step exceeded its time budget"},
		{"spinLater", "step exceeded its time budget"},
		{"deep", "maximum call stack size exceeded"},
	} {
		t.Run(tc.command, func(t *testing.T) {
			e := start(t, jsrt.Config{StepBudget: 200 * time.Millisecond}, map[string]string{"handlers.js": runaway})
			e.connect("bad")
			e.connect("good")
			e.send("bad", `{"command":"`+tc.command+`"}`)
			e.send("good", `{"command":"ping"}`)
			if got := e.reply("good", 1); got != "pong" {
				t.Fatalf("good got %q", got)
			}
			got := e.replies("bad", 1)
			last := got[len(got)-1]
			if tc.command == "spinLater" {
				last = e.reply("bad", 2)
			}
			if !strings.Contains(last, `"runaway_handler"`) || !strings.Contains(last, tc.want) {
				t.Fatalf("bad got %s, want runaway_handler with %q", last, tc.want)
			}
			// The runtime is healthy afterwards: the same client is served.
			n := len(e.out.messages("bad"))
			e.send("bad", `{"command":"ping"}`)
			if got := e.reply("bad", n+1); got != "pong" {
				t.Fatalf("after the runaway, bad got %q", got)
			}
			e.send("good", `{"command":"ping"}`)
			if got := e.reply("good", 2); got != "pong" {
				t.Fatalf("after the runaway, good got %q", got)
			}
		})
	}
}

func TestRunawayFinallyBlockIsInterruptedToo(t *testing.T) {
	e := start(t, jsrt.Config{StepBudget: 200 * time.Millisecond}, map[string]string{"handlers.js": runaway})
	e.connect("c")
	e.send("c", `{"command":"spinInFinally"}`)
	e.reply("c", 1)
	e.send("c", `{"command":"spinInFinally"}`) // replace: return() runs the spinning finally
	e.waitLog("a finally block threw")
	if got := e.replies("c", 2); got[1] != "started" {
		t.Fatalf("the replacing request did not start: %q", got)
	}
	e.connect("d")
	e.send("d", `{"command":"ping"}`)
	if got := e.reply("d", 1); got != "pong" {
		t.Fatalf("after the interrupted finally, d got %q", got)
	}
}

func TestUnboundedGeneratorNestingThrowsRangeError(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": runaway})
	e.connect("c")
	e.send("c", `{"command":"tooDeep"}`)
	if got := e.reply("c", 1); !strings.Contains(got, `"handler_error"`) || !strings.Contains(got, "RangeError: too many nested generators") {
		t.Fatalf("got %s", got)
	}
}

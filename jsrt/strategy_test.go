package jsrt_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/moebius-js/moebius-js/jsrt"
)

const strategies = `
const { sleep, server } = require('moebius');
function* tagged(client, data) {
  try {
    for (let i = 0; i < 3; i++) yield sleep(20);
    client.send(data.tag);
  } finally {
    const w = server.client('watcher');
    if (w) w.send('finally ' + data.tag);
  }
}
function* forever(client, data) {
  try { client.send('started'); for (;;) yield sleep(1000); }
  finally { const w = server.client('watcher'); if (w) w.send('cleaned up ' + client.id); }
}
module.exports = { rules: [
  { command: 'queue', handler: tagged, strategy: 'queue' },
  { command: 'replace', handler: tagged, strategy: 'replace' },
  { command: 'ignore', handler: tagged, strategy: 'ignore' },
  { command: 'forever', handler: forever },
  { command: 'foreverReplace', handler: forever, strategy: 'replace' },
]};
`

func TestStrategiesDecideWhatABusyClientsNextRequestDoes(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		want     []string
	}{
		{"queue", []string{"t1", "t2", "t3"}},
		{"ignore", []string{"t1"}},
		{"replace", []string{"t3"}},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			e := start(t, jsrt.Config{}, map[string]string{"handlers.js": strategies})
			e.connect("watcher")
			e.connect("c")
			for _, tag := range []string{"t1", "t2", "t3"} {
				e.send("c", fmt.Sprintf(`{"command":%q,"tag":%q}`, tc.strategy, tag))
			}
			got := e.replies("c", len(tc.want))
			// The watcher hears every finally block that ran; after the last
			// tag's finally, nothing more can come to c.
			e.out.waitFor(t, 5e9, "the last finally", func() bool {
				for _, m := range e.out.sent["watcher"] {
					if string(m[0]) == "finally t3" || (tc.strategy == "ignore" && string(m[0]) == "finally t1") {
						return true
					}
				}
				return false
			})
			got = e.replies("c", len(tc.want))
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("replies %v, want %v", got, tc.want)
			}
		})
	}
}

// A source that cannot pause (one that holds no room on an inbound
// account, as in-process ones) past the queue limit gets queue_full.
func TestFullQueueIsRefusedWithErrorReplyWhenTheSourceCannotPause(t *testing.T) {
	e := start(t, jsrt.Config{QueueLimit: 2}, map[string]string{"handlers.js": strategies})
	e.connect("c")
	for i := 0; i < 4; i++ {
		e.sendUnheld("c", fmt.Sprintf(`{"command":"queue","tag":"t%d"}`, i))
	}
	got := e.replies("c", 4)
	if !strings.Contains(got[0], `"code":"queue_full"`) {
		t.Fatalf("first reply %s; want the refusal of the 4th request before any tag", got[0])
	}
	if strings.Join(got[1:], ",") != "t0,t1,t2" {
		t.Fatalf("tags %v, want t0,t1,t2", got[1:])
	}
}

func TestDisconnectCancelsTheClientsTask(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": strategies})
	e.connect("watcher")
	e.connect("c")
	e.send("c", `{"command":"forever"}`)
	e.reply("c", 1)
	e.disconnect("c")
	if got := e.reply("watcher", 1); got != "cleaned up c" {
		t.Fatalf("watcher got %q", got)
	}
}

func TestReplaceRunsFinallyOfTheCancelledGenerator(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": strategies})
	e.connect("watcher")
	e.connect("c")
	e.send("c", `{"command":"foreverReplace"}`)
	e.reply("c", 1)
	e.send("c", `{"command":"foreverReplace"}`)
	if got := e.reply("watcher", 1); got != "cleaned up c" {
		t.Fatalf("watcher got %q", got)
	}
	if got := e.replies("c", 2); got[1] != "started" {
		t.Fatalf("the replacing request did not start: %v", got)
	}
}

package jsrt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

const backgroundHandlers = `
const { sleep, server } = require('moebius');
let ticks = 0;
module.exports = {
  rules: [
    { command: 'subscribe', handler: (c) => { c.state.subscribed = true; c.send('ok'); } },
    { command: 'spawn', handler: (c) => {
        server.spawn(function* (id, n) {
          for (let i = 0; i < n; i++) { yield sleep(5); }
          server.client(id).send('spawned work done');
        }, c.id, 3);
    } },
    { command: 'spawnThrows', handler: (c) => {
        server.spawn(function* () { yield; throw new Error('background oops'); });
        c.send('spawned');
    } },
  ],
  *background(srv) {
    for (;;) {
      ticks++;
      srv.iterate((c) => { if (c.state.subscribed) c.send('tick ' + ticks); });
      yield sleep(20);
    }
  },
};
`

func TestBackgroundTicksReachSubscribersOnly(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": backgroundHandlers})
	e.connect("sub")
	e.connect("quiet")
	e.send("sub", `{"command":"subscribe"}`)
	got := e.replies("sub", 4)
	if got[0] != "ok" || !strings.HasPrefix(got[1], "tick ") || !strings.HasPrefix(got[3], "tick ") {
		t.Fatalf("subscriber got %v", got)
	}
	if n := len(e.out.messages("quiet")); n != 0 {
		t.Fatalf("the client that did not subscribe got %d ticks", n)
	}
}

func TestSpawnedWorkRunsAndItsErrorsAreLogged(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": backgroundHandlers})
	e.connect("c")
	e.send("c", `{"command":"spawn"}`)
	if got := e.reply("c", 1); got != "spawned work done" {
		t.Fatalf("got %q", got)
	}
	e.send("c", `{"command":"spawnThrows"}`)
	e.reply("c", 2)
	e.waitLog("spawned work failed")
	if !strings.Contains(e.logs.String(), "background oops") || !strings.Contains(e.logs.String(), "handlers.js:") {
		t.Fatalf("the log lacks the error and its stack:\n%s", e.logs.String())
	}
}

const throwingBackground = `
const { sleep } = require('moebius');
module.exports = {
  rules: [{ command: 'echo', handler: (c, d) => c.send(d) }],
  *background() { yield sleep(1); throw new Error('background broke'); },
};
`

func TestThrowingBackgroundIsLoggedAndServingGoesOn(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": throwingBackground})
	e.waitLog("background failed")
	e.connect("c")
	e.send("c", `{"command":"echo"}`)
	if got := e.reply("c", 1); got != `{"command":"echo"}` {
		t.Fatalf("got %q", got)
	}
}

func TestReloadRestartsTheBackgroundGenerator(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": backgroundHandlers})
	e.connect("sub")
	e.send("sub", `{"command":"subscribe"}`)
	e.replies("sub", 2)
	e.write("handlers.js", strings.Replace(backgroundHandlers, "'tick '", "'v2 tick '", 1))
	if err := e.host.Reload(); err != nil {
		t.Fatal(err)
	}
	// After the swap, only the new generator ticks (the old one was
	// cancelled): once a v2 tick arrives, no v1 tick follows it.
	deadline := time.Now().Add(5 * time.Second)
	for n := 3; ; n++ {
		if time.Now().After(deadline) {
			t.Fatal("no tick from the new background generator")
		}
		if strings.HasPrefix(e.reply("sub", n), "v2 tick") {
			for _, r := range e.replies("sub", n+3)[n:] {
				if !strings.HasPrefix(r, "v2 tick") {
					t.Fatalf("old background still ticking: %q after a v2 tick", r)
				}
			}
			return
		}
	}
}

package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
)

const versionOne = `
module.exports = { rules: [{ command: 'version', handler: (c) => c.send('one') }] };
`

const versionTwo = `
module.exports = { rules: [{ command: 'version', handler: (c) => c.send('two') }] };
`

// replaceFile saves src over path the way editors do: write a temporary
// file next to it, then rename it into place.
func replaceFile(t *testing.T, path, src string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".handlers.js.tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestEditsGoLiveWithoutARestartAndMistakesKeepTheOldCode(t *testing.T) {
	path := writeHandlers(t, versionOne)
	srv := startServer(t, path, "--watch=true")
	c := dial(t, srv.addr, "editor", false)
	if got := c.roundTrip(`{"command":"version"}`); got != "one" {
		t.Fatalf("got %q", got)
	}

	replaceFile(t, path, "module.exports = { rules: [ { command: 'version', handler: ( } ] };\n")
	m := srv.logs.waitFor(t, regexp.MustCompile(`reload failed.*error="?(\S+handlers\.js:\d+:\d+: SyntaxError)`), 10*time.Second)
	if !strings.Contains(m[1], "handlers.js:1:") {
		t.Fatalf("the reload error does not point at line 1: %q", m[1])
	}
	if got := c.roundTrip(`{"command":"version"}`); got != "one" {
		t.Fatalf("after a broken save: %q; the old code must keep serving", got)
	}

	replaceFile(t, path, versionTwo)
	srv.logs.waitFor(t, regexp.MustCompile(`handlers reloaded.*gen=2`), 10*time.Second)
	if got := c.roundTrip(`{"command":"version"}`); got != "two" {
		t.Fatalf("after the fix: %q", got)
	}
}

func TestSIGHUPReloads(t *testing.T) {
	path := writeHandlers(t, versionOne)
	srv := startServer(t, path) // --watch=false
	c := dial(t, srv.addr, "hup", false)
	if got := c.roundTrip(`{"command":"version"}`); got != "one" {
		t.Fatalf("got %q", got)
	}
	if err := os.WriteFile(path, []byte(versionTwo), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`handlers reloaded.*gen=2`), 10*time.Second)
	if got := c.roundTrip(`{"command":"version"}`); got != "two" {
		t.Fatalf("after SIGHUP: %q", got)
	}
}

const drainHandlers = `
const { sleep, server } = require('moebius');
module.exports = { rules: [
  { command: 'slow', handler: function* (c, d) { c.send('started'); yield sleep(d.ms); c.send('finished'); } },
  { command: 'echo', handler: (c, d) => c.send(d) },
]};
`

func TestSIGTERMLetsWorkInFlightFinishAndRefusesNewRequests(t *testing.T) {
	srv := startServer(t, writeHandlers(t, drainHandlers), "--shutdown-grace", "5s")
	busy := dial(t, srv.addr, "busy", false)
	late := dial(t, srv.addr, "late", false)
	busy.send(`{"command":"slow","ms":500}`)
	if got := busy.recvText(); got != "started" {
		t.Fatalf("got %q", got)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`msg="draining`), 5*time.Second)
	if got := late.roundTrip(`{"command":"echo"}`); !strings.Contains(got, `"shutting_down"`) {
		t.Fatalf("a request during the drain got %q", got)
	}
	if got := busy.recvText(); got != "finished" {
		t.Fatalf("the handler in flight ended with %q", got)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`msg=stopped`), 10*time.Second)
}

func TestSIGTERMCancelsWhatOutlivesTheGracePeriod(t *testing.T) {
	srv := startServer(t, writeHandlers(t, drainHandlers), "--shutdown-grace", "200ms")
	busy := dial(t, srv.addr, "busy", false)
	busy.send(`{"command":"slow","ms":60000}`)
	busy.recvText()
	start := time.Now()
	srv.stop() // SIGTERM; fails the test unless the exit is clean
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("shutdown took %v with a 200ms grace period", el)
	}
}

func TestCheckValidatesAHandlersFile(t *testing.T) {
	good := writeHandlers(t, versionOne)
	out, _, code := runCLI(t, "check", good)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check of a good file: exit %d, %q", code, out)
	}
	bad := writeHandlers(t, "module.exports = {\n  rules: [\n    { command: 'x', handler: (c) => c.send( },\n  ],\n};\n")
	_, errOut, code := runCLI(t, "check", bad)
	if code != 1 || !regexp.MustCompile(`handlers\.js:3:\d+: SyntaxError`).MatchString(errOut) {
		t.Fatalf("check of a broken file: exit %d, %q", code, errOut)
	}
}

func TestWorkersShareTheSocketAndBroadcastReachesEveryone(t *testing.T) {
	srv := startServer(t, "../handlers.js", "--workers", "3")
	var clients []*client
	for _, id := range []string{"w-a", "w-b", "w-c", "w-d", "w-e", "w-f"} {
		c := dial(t, srv.addr, id, false)
		if got := c.roundTrip(`{"command":"count"}`); got != `{"count":1}` {
			t.Fatalf("%s: %q", id, got)
		}
		clients = append(clients, c)
	}
	clients[0].send(`{"command":"say","text":"hello all"}`)
	for _, c := range clients {
		if got := c.recvText(); got != `{"from":"w-a","text":"hello all"}` {
			t.Fatalf("%s got %q", c.id, got)
		}
	}
}

func TestBadConfigurationStopsTheServerWithAClearMessage(t *testing.T) {
	_, errOut, code := runCLI(t, "serve", "--workers", "0", "--log-level", "loud", "../handlers.js")
	if code != 2 || !strings.Contains(errOut, "workers: must be greater than zero") || !strings.Contains(errOut, `log_level: "loud"`) {
		t.Fatalf("exit %d, %q", code, errOut)
	}
	_, errOut, code = runCLI(t, "serve", "--bind", "tcp://127.0.0.1:0", writeHandlers(t, "syntax error here"))
	if code != 1 || !strings.Contains(errOut, "SyntaxError") {
		t.Fatalf("a broken handlers file at start: exit %d, %q", code, errOut)
	}
}

func TestCloseAfterSendDeliversTheLastMessage(t *testing.T) {
	srv := startServer(t, writeHandlers(t, `
module.exports = { rules: [{ command: 'quit', handler: (c) => { c.send('bye'); c.close(); } }] };
`))
	c := zmtptest.Dial(t, srv.addr)
	c.Handshake("DEALER", zmtptest.Str("leaving"))
	c.SendText(`{"command":"quit"}`)
	if got := c.RecvText(); got != "bye" {
		t.Fatalf("got %q", got)
	}
	c.ExpectClosed(5 * time.Second)
}

func TestVersionPrintsTheVersion(t *testing.T) {
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "moebius-js ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

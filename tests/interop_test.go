package tests

// The libzmq interoperability suite: the real moebius-js binary served to
// real libzmq clients (Debian's pyzmq, run as /usr/bin/python3) that
// interop/client.py drives. The script prints what it observed as JSON
// lines; these tests judge it. See requireInterop for when they skip.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// interopPython is Debian's interpreter, which python3-zmq installs pyzmq
// for; the python3 on PATH may be another one (pyenv) without it.
const interopPython = "/usr/bin/python3"

// interopScript is the libzmq client the tests run.
const interopScript = "interop/client.py"

var pyzmqCheck = sync.OnceValue(func() error {
	out, err := exec.Command(interopPython, "-E", "-c", "import zmq").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import zmq: %s", interopPython, pythonFailure(err, out))
	}
	return nil
})

// pythonFailure is the gist of a failed python run: the last line it
// printed (the exception), else the exec error.
func pythonFailure(err error, out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return last
	}
	return err.Error()
}

// requireInterop skips the test when pyzmq is not available, or fails it
// if REQUIRE_INTEROP=1 (as in CI, where a skip would hide the suite).
func requireInterop(t *testing.T) {
	t.Helper()
	err := pyzmqCheck()
	if err == nil {
		return
	}
	if os.Getenv("REQUIRE_INTEROP") == "1" {
		t.Fatalf("libzmq interop test cannot run and REQUIRE_INTEROP=1: %v (install Debian's python3-zmq)", err)
	}
	t.Skipf("skipping libzmq interop test: %v (install Debian's python3-zmq; REQUIRE_INTEROP=1 turns this skip into a failure)", err)
}

// runPyClient runs interop/client.py with args and returns the JSON lines it
// printed. Any failure of the script fails the test with its stderr.
func runPyClient(t *testing.T, args ...string) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script, err := filepath.Abs(interopScript)
	if err != nil {
		t.Fatal(err)
	}
	// -E: PYTHONPATH and the like may be set for another interpreter.
	cmd := exec.CommandContext(ctx, interopPython, append([]string{"-E", script}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("client.py %s: %v (after %v)\nstderr:\n%s\nstdout:\n%s",
			strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), stderr.Bytes(), stdout.Bytes())
	}
	t.Logf("client.py %s ran for %v", args[0], time.Since(start).Round(time.Millisecond))
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n")) {
		if len(l) > 0 {
			lines = append(lines, l)
		}
	}
	return lines
}

// decodeJSONLines decodes each JSON line into a T, failing on a bad one.
func decodeJSONLines[T any](t *testing.T, lines [][]byte) []T {
	t.Helper()
	out := make([]T, len(lines))
	for i, l := range lines {
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatalf("client.py printed %s: %v", l, err)
		}
	}
	return out
}

// pyRoundTrip is one line of the roundtrips scenario.
type pyRoundTrip struct {
	Request string   `json:"request"`
	Reply   []string `json:"reply"`
}

// pyRoundTrips runs the roundtrips scenario and checks that every request got
// a one-frame reply.
func pyRoundTrips(t *testing.T, addr string, flags []string, requests ...string) []pyRoundTrip {
	t.Helper()
	args := append(append([]string{"roundtrips", addr}, flags...), requests...)
	got := decodeJSONLines[pyRoundTrip](t, runPyClient(t, args...))
	if len(got) != len(requests) {
		t.Fatalf("%d round trips reported, want %d: %+v", len(got), len(requests), got)
	}
	for i, rt := range got {
		if rt.Request != requests[i] || len(rt.Reply) != 1 {
			t.Fatalf("round trip %d: %+v, want one reply frame to %q", i, rt, requests[i])
		}
	}
	return got
}

// errorReplyCode returns the code of a JSON error reply, or "" if reply is not
// one (or lacks a message).
func errorReplyCode(reply string) string {
	var r struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal([]byte(reply), &r) != nil || r.Error.Message == "" {
		return ""
	}
	return r.Error.Code
}

// whoamiID returns the id of a whoami reply, failing if it is not one.
func whoamiID(t *testing.T, reply string) string {
	t.Helper()
	var r struct{ ID *string }
	if err := json.Unmarshal([]byte(reply), &r); err != nil || r.ID == nil {
		t.Fatalf("%q is not a whoami reply", reply)
	}
	return *r.ID
}

var (
	// interopRefused matches the server's log of a message it could not
	// route (a probe or a PING mistaken for a request would be one).
	interopRefused = regexp.MustCompile(`request refused|invalid_json`)
	// generatedID is how an identity the server made up, libzmq style (a
	// zero byte and four more), appears as client.id.
	generatedID = regexp.MustCompile(`^0x00[0-9a-f]{8}$`)
)

// interopRules serves the request/reply scenarios with the default router.
const interopRules = `
const { log } = require('moebius');
function whoami(client) {
  log.info('whoami', { id: client.id });
  client.send({ id: client.id });
}
function echo(client, data) { client.send(data); }
function reply(client) { client.send('Reply to ' + client.id); }
module.exports = {
  rules: [
    { command: 'whoami', handler: whoami },
    { command: 'echo', handler: echo },
    { command: 'reply', handler: reply },
  ],
};
`

func TestLibzmqDealerIdentityIsTheClientID(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startServer(t, writeHandlers(t, interopRules))
	got := pyRoundTrips(t, srv.addr, []string{"--identity", "py-dealer"},
		`{"command":"whoami"}`, `{"command":"echo","x":[1,"two"]}`)
	if id := whoamiID(t, got[0].Reply[0]); id != "py-dealer" {
		t.Errorf("the handler saw client.id %q, want py-dealer", id)
	}
	if got[1].Reply[0] != `{"command":"echo","x":[1,"two"]}` {
		t.Errorf("echo reply %q", got[1].Reply[0])
	}
}

func TestLibzmqAnonymousDealerGetsAGeneratedHexID(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startServer(t, writeHandlers(t, interopRules))
	var ids []string
	for conn := 0; conn < 2; conn++ { // two connections, one after the other
		got := pyRoundTrips(t, srv.addr, nil, `{"command":"whoami"}`, `{"command":"whoami"}`)
		a, b := whoamiID(t, got[0].Reply[0]), whoamiID(t, got[1].Reply[0])
		if !generatedID.MatchString(a) {
			t.Fatalf("anonymous client.id %q does not match %s", a, generatedID)
		}
		if a != b {
			t.Fatalf("one connection seen as two ids: %q then %q", a, b)
		}
		ids = append(ids, a)
	}
	if ids[0] == ids[1] {
		t.Errorf("two anonymous connections were both given id %s", ids[0])
	}
}

func TestLibzmqREQRoundTripsContinueAfterErrorReplies(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startServer(t, writeHandlers(t, interopRules))
	// A REQ socket is strict: it must get exactly one reply per request,
	// enveloped with the empty delimiter, or it drops the reply and times
	// out (and a second reply would be read as the next one's).
	steps := []struct {
		request string
		check   func(reply string) bool
		want    string
	}{
		{`{"command":"echo","n":1}`, replyIs(`{"command":"echo","n":1}`), `the echo`},
		{`{"command":"launch"}`, replyIsError("unknown_command"), `an unknown_command error`},
		{`{"command":"echo","n":2}`, replyIs(`{"command":"echo","n":2}`), `the echo`},
		{`not json`, replyIsError("invalid_json"), `an invalid_json error`},
		{`{"command":"whoami"}`, replyIsGeneratedID, `a generated id`},
		{`{"command":"echo","n":3}`, replyIs(`{"command":"echo","n":3}`), `the echo`},
	}
	var requests []string
	for _, s := range steps {
		requests = append(requests, s.request)
	}
	got := pyRoundTrips(t, srv.addr, []string{"--socket", "req"}, requests...)
	for i, s := range steps {
		if !s.check(got[i].Reply[0]) {
			t.Errorf("REQ %s got %s, want %s", s.request, got[i].Reply[0], s.want)
		}
	}
}

func replyIs(want string) func(string) bool { return func(s string) bool { return s == want } }

func replyIsError(code string) func(string) bool {
	return func(s string) bool { return errorReplyCode(s) == code }
}

func replyIsGeneratedID(s string) bool {
	var r struct{ ID string }
	return json.Unmarshal([]byte(s), &r) == nil && generatedID.MatchString(r.ID)
}

func TestLibzmqProbeRouterHelloIsNotARequest(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startServer(t, writeHandlers(t, interopRules))
	// ZMQ_PROBE_ROUTER makes libzmq send an empty message as soon as it
	// connects, before our request on the same connection: had the server
	// answered it (an invalid_json error, say), that answer would be the
	// first thing received.
	got := pyRoundTrips(t, srv.addr, []string{"--identity", "py-probe", "--probe"},
		`{"command":"whoami"}`, `{"command":"echo","after":"probe"}`)
	if code := errorReplyCode(got[0].Reply[0]); code != "" {
		t.Fatalf("the first reply is an error reply (%s): the probe was answered as a request: %s", code, got[0].Reply[0])
	}
	if id := whoamiID(t, got[0].Reply[0]); id != "py-probe" {
		t.Errorf("first reply is for %q, want py-probe", id)
	}
	if got[1].Reply[0] != `{"command":"echo","after":"probe"}` {
		t.Errorf("second reply %q", got[1].Reply[0])
	}
	// whoami logs after whatever the probe caused, so by now the log holds it.
	srv.logs.waitFor(t, regexp.MustCompile(`msg=whoami .*\bid=py-probe\b`), 5*time.Second)
	if m := interopRefused.FindString(srv.logs.String()); m != "" {
		t.Errorf("the probe was treated as a request (log says %q):\n%s", m, srv.logs.String())
	}
}

// interopMirror replies to any message with its frames in reverse order.
const interopMirror = `
function mirror(client, data, message) { client.send(...message.frames.slice().reverse()); }
module.exports = { route: () => ({ handler: mirror }) };
`

func TestLibzmqMultipartBinaryFramesComeBackReversedByteExact(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startServer(t, writeHandlers(t, interopMirror))
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	long := bytes.Repeat([]byte{0xAB, 0x00, 0xFF}, 400) // 1200 bytes: a long (8-byte size) frame
	for _, tc := range []struct {
		name, socket string
		frames       [][]byte
	}{
		// An empty frame followed by more would end an envelope: here the
		// only empty frame is the last, which is payload.
		{"dealer", "dealer", [][]byte{{0x00, 0xFF, 0x10}, every, []byte("text"), long, {}}},
		{"req-two-frames", "req", [][]byte{[]byte("first"), []byte("second")}},
		{"req-binary", "req", [][]byte{every, {}, long}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"multipart", srv.addr, "--socket", tc.socket}
			for _, f := range tc.frames {
				args = append(args, hex.EncodeToString(f))
			}
			var got [][]byte
			for _, h := range decodeJSONLines[struct{ Reply []string }](t, runPyClient(t, args...))[0].Reply {
				b, err := hex.DecodeString(h)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b)
			}
			if len(got) != len(tc.frames) {
				t.Fatalf("got %d frames back, want %d", len(got), len(tc.frames))
			}
			for i, f := range got {
				if want := tc.frames[len(tc.frames)-1-i]; !bytes.Equal(f, want) {
					t.Errorf("reply frame %d is %x (%d bytes), want %x (%d bytes)", i, f, len(f), want, len(want))
				}
			}
		})
	}
}

// heartbeatRun is what the heartbeat scenario printed.
type heartbeatRun struct {
	replies []string // first frame of each reply
	events  map[string]int
	order   []string
}

func runHeartbeat(t *testing.T, args ...string) heartbeatRun {
	t.Helper()
	var run heartbeatRun
	for _, l := range decodeJSONLines[struct {
		Reply  []string
		Events *[]string
	}](t, runPyClient(t, append([]string{"heartbeat"}, args...)...)) {
		switch {
		case l.Events != nil:
			run.order = *l.Events
		case len(l.Reply) > 0:
			run.replies = append(run.replies, l.Reply[0])
		}
	}
	run.events = map[string]int{}
	for _, e := range run.order {
		run.events[e]++
	}
	return run
}

// interopCounter counts, per client, the messages that reach its handler:
// its route takes every message, so a PING leaking through as a message
// would be counted too.
const interopCounter = `
const { log } = require('moebius');
function count(client, data, message) {
  client.state.n = (client.state.n || 0) + 1;
  log.info('counted', { client: client.id, n: client.state.n, text: message.text });
  client.send({ n: client.state.n, text: message.text });
}
module.exports = { route: () => ({ handler: count }) };
`

// TestLibzmqHeartbeatingDealerStaysConnectedAndPingsNeverReachHandlers: a
// DEALER with ZMQ_HEARTBEAT_IVL=100 ms and ZMQ_HEARTBEAT_TIMEOUT=300 ms
// idles 3 s between two round trips, watched by a socket monitor.
//
// libzmq starts a HEARTBEAT_TIMEOUT timer with each PING and stops it
// when anything arrives from the peer; while the client idles, only the
// server's PONGs arrive. Were they not sent, libzmq would close the
// connection 300 ms after its first PING and reconnect: the monitor would
// see DISCONNECTED and a second CONNECTED/HANDSHAKE_SUCCEEDED (and the
// server would log a second "peer connected"). The negative control below,
// TestLibzmqHeartbeatMonitorSeesTheReconnectsOfAPeerThatNeverPongs, runs
// the same client against a peer that never answers and checks that it
// does see them, so this test's checks have teeth.
func TestLibzmqHeartbeatingDealerStaysConnectedAndPingsNeverReachHandlers(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startServer(t, writeHandlers(t, interopCounter))
	run := runHeartbeat(t, srv.addr, "--identity", "py-heartbeat", "--idle", "3",
		"--ivl", "100", "--timeout", "300", "--ttl", "1000")
	t.Logf("monitor events: %v", run.order)

	want := []string{`{"n":1,"text":"first"}`, `{"n":2,"text":"second"}`}
	if strings.Join(run.replies, " ") != strings.Join(want, " ") {
		t.Errorf("replies %q, want %q (n counts the messages this client's handler saw: 1 again means the second request came over a new connection, more than 2 that heartbeats were delivered as messages)", run.replies, want)
	}
	if run.events["CONNECTED"] != 1 || run.events["HANDSHAKE_SUCCEEDED"] != 1 || run.events["DISCONNECTED"] != 0 {
		t.Errorf("monitor events %v, want exactly one CONNECTED and HANDSHAKE_SUCCEEDED and no DISCONNECTED", run.order)
	}
	for e := range run.events {
		if strings.HasPrefix(e, "HANDSHAKE_FAILED") || e == "CONNECT_RETRIED" || e == "CLOSED" {
			t.Errorf("monitor saw %s: %v", e, run.order)
		}
	}

	// The server's side of it: the log up to the second request (logged by
	// the handler, after any reconnect or delivered heartbeat).
	srv.logs.waitFor(t, regexp.MustCompile(`msg=counted .*\bclient=py-heartbeat .*\btext=second\b`), 5*time.Second)
	logs := srv.logs.String()
	// The transport logs the peer as peer="\"py-heartbeat\"" (quoted twice).
	connected := regexp.MustCompile(`(?m)msg="peer connected".*\bpeer=py-heartbeat(?:\s|$)`)
	if n := len(connected.FindAllString(logs, -1)); n != 1 {
		t.Errorf("server logged %d connections of py-heartbeat, want 1:\n%s", n, logs)
	}
	if m := interopRefused.FindString(logs); m != "" {
		t.Errorf("a heartbeat was treated as a request (log says %q):\n%s", m, logs)
	}
}

// TestLibzmqHeartbeatMonitorSeesTheReconnectsOfAPeerThatNeverPongs is the
// negative control of the heartbeat test: the same libzmq client, against
// a peer that completes the ZMTP handshake as a ROUTER and then ignores
// everything (PINGs included), is disconnected by its heartbeat timeout
// and reconnects, and the monitor reports it.
func TestLibzmqHeartbeatMonitorSeesTheReconnectsOfAPeerThatNeverPongs(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	addr := silentZMTPRouter(t)
	run := runHeartbeat(t, addr, "--identity", "py-control", "--idle", "1",
		"--ivl", "100", "--timeout", "300", "--no-requests")
	t.Logf("monitor events: %v", run.order)
	if run.events["DISCONNECTED"] < 1 || run.events["CONNECTED"] < 2 || run.events["HANDSHAKE_SUCCEEDED"] < 2 {
		t.Errorf("monitor events %v: want DISCONNECTED and repeated CONNECTED/HANDSHAKE_SUCCEEDED, or the heartbeat test proves nothing", run.order)
	}
}

// silentZMTPRouter listens on a free port for ZMTP 3.0 NULL peers, sends each
// the greeting and READY of a ROUTER, then reads and discards whatever it
// receives. It returns the tcp endpoint.
func silentZMTPRouter(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	greeting := make([]byte, 64) // signature, version 3.0, NULL, as-server 0, filler
	greeting[0], greeting[9], greeting[10] = 0xff, 0x7f, 3
	copy(greeting[12:], "NULL")
	ready := []byte("\x05READY\x0bSocket-Type\x00\x00\x00\x06ROUTER")
	hello := append(append(greeting, 0x04, byte(len(ready))), ready...)

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Write(hello); err == nil {
					_, _ = io.Copy(io.Discard, c)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + l.Addr().String()
}

func TestLibzmqFiftyConcurrentDealersEachGetTheirOwnReply(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	srv := startServer(t, writeHandlers(t, interopRules))
	const clients = 50
	got := decodeJSONLines[struct {
		Identity string
		Replies  [][]string // each message's frames
	}](t, runPyClient(t, "many", srv.addr, "--clients", fmt.Sprint(clients), "--prefix", "py-many-", "--request", `{"command":"reply"}`))
	if len(got) != clients {
		t.Fatalf("%d clients reported, want %d", len(got), clients)
	}
	seen := map[string]bool{}
	for _, c := range got {
		if seen[c.Identity] || !strings.HasPrefix(c.Identity, "py-many-") {
			t.Fatalf("unexpected or repeated client %q", c.Identity)
		}
		seen[c.Identity] = true
		if want := "Reply to " + c.Identity; len(c.Replies) != 1 || len(c.Replies[0]) != 1 || c.Replies[0][0] != want {
			t.Errorf("%s received %q, want exactly one reply, %q", c.Identity, c.Replies, want)
		}
	}
}

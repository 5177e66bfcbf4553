package tests

// Flow control end to end: clients that pipeline, handlers that send a
// lot, clients that do not read, and peers that stall or flood. A
// well-behaved client gets every reply; the server holds a bounded amount
// of memory; a bound that bites is logged and counted.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
)

// runPython runs a script of interop/ with Debian's pyzmq and returns what
// it printed on stdout; any failure fails the test with its stderr.
func runPython(t *testing.T, timeout time.Duration, script string, args ...string) []byte {
	t.Helper()
	requireInterop(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	path, err := filepath.Abs(filepath.Join("interop", script))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, interopPython, append([]string{"-E", path}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v (after %v)\nstderr:\n%s\nstdout:\n%s", script, strings.Join(args, " "), err,
			time.Since(start).Round(time.Millisecond), stderr.Bytes(), stdout.Bytes())
	}
	t.Logf("%s %s ran for %v", script, args[0], time.Since(start).Round(time.Millisecond))
	return stdout.Bytes()
}

func decodeJSON[T any](t *testing.T, out []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return v
}

func TestTheGuidesMajordomoClientGetsAllOfItsPipelinedRequestsThroughABrokerInJS(t *testing.T) {
	srv := startPlain(t, "../examples/majordomo.js", "--metrics", "127.0.0.1:0", "--log-level", "info")
	const n = 100_000
	got := decodeJSON[struct {
		Received     int        `json:"received"`
		InOrder      bool       `json:"in_order"`
		Bad          [][]string `json:"bad"`
		WorkerServed int        `json:"worker_served"`
	}](t, runPython(t, 3*time.Minute, "flow.py", "majordomo", srv.addr, "--requests", fmt.Sprint(n)))
	if got.Received != n || !got.InOrder || len(got.Bad) != 0 {
		t.Fatalf("mdclient2 received %d of %d replies, in order: %v; bad ones: %q", got.Received, n, got.InOrder, got.Bad)
	}
	if got.WorkerServed != n {
		t.Fatalf("the worker served %d requests, want %d", got.WorkerServed, n)
	}
	for _, m := range []string{"moebius_slow_peers_dropped_total", "moebius_write_timeouts_total", "moebius_peers_shed_total"} {
		if v := srv.metric(m); v != 0 {
			t.Errorf("%s = %v, want 0", m, v)
		}
	}
	if v := srv.metric("moebius_reads_paused_total"); v == 0 {
		t.Error("moebius_reads_paused_total = 0: the client was never held back, so the test did not load the server")
	}
}

const echoHandlers = `module.exports = { rules: [{ command: 'echo', handler: (c, d) => c.send(d) }] };`

func TestAPipeliningLibzmqDealerIsNeverDroppedAndLosesNoReply(t *testing.T) {
	srv := startPlain(t, writeHandlers(t, echoHandlers), "--metrics", "127.0.0.1:0", "--log-level", "info")
	const n, runs = 20_000, 10
	got := decodeJSON[struct {
		Runs []struct {
			Received int  `json:"received"`
			InOrder  bool `json:"in_order"`
			Errors   int  `json:"errors"`
		} `json:"runs"`
		Disconnects int `json:"disconnects"`
	}](t, runPython(t, 3*time.Minute, "flow.py", "pipeline", srv.addr, "--requests", fmt.Sprint(n), "--runs", fmt.Sprint(runs)))
	if len(got.Runs) != runs {
		t.Fatalf("%d runs reported, want %d", len(got.Runs), runs)
	}
	for i, r := range got.Runs {
		if r.Received != n || !r.InOrder || r.Errors != 0 {
			t.Errorf("run %d: %d of %d replies, in order %v, %d error replies", i, r.Received, n, r.InOrder, r.Errors)
		}
	}
	if got.Disconnects != 0 {
		t.Errorf("the DEALER was disconnected %d times", got.Disconnects)
	}
	if v := srv.metric("moebius_connections_accepted_total"); v != 1 {
		t.Errorf("%v connections accepted: the DEALER reconnected", v)
	}
	if v := srv.metric("moebius_slow_peers_dropped_total"); v != 0 {
		t.Errorf("moebius_slow_peers_dropped_total = %v", v)
	}
}

const burstHandlers = `
module.exports = { rules: [
  { command: 'burst', handler: (c, d) => { for (let i = 0; i < d.n; i++) c.send('m' + i); } },
  { command: 'stream', handler: function* (c, d) {
      const pad = 'p'.repeat(d.pad || 0);
      for (let i = 0; i < d.n; i++) { if (pad) c.send('m' + i, pad); else c.send('m' + i); yield; }
  } },
]};`

// readAll reads n messages "m0".."m<n-1>" from c in order, failing on
// anything else, and returns how long that took.
func readAll(t *testing.T, c *zmtptest.Client, n int) {
	t.Helper()
	c.Timeout = 30 * time.Second
	for i := 0; i < n; i++ {
		frames, isCmd, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
		if isCmd {
			i--
			continue // a heartbeat
		}
		if want := fmt.Sprint("m", i); string(frames[0]) != want {
			t.Fatalf("message %d is %q, want %q", i, frames, want)
		}
	}
}

func TestEveryMessageOfABurstReachesAClientThatReads(t *testing.T) {
	srv := startPlain(t, writeHandlers(t, burstHandlers), "--metrics", "127.0.0.1:0", "--log-level", "info")
	for _, tc := range []struct {
		name    string
		command string
		n       int
	}{
		{"5,000 sends in one step", "burst", 5_000},
		{"200,000 sends in one step", "burst", 200_000},
		{"a generator streaming 1,000,000 messages with yield", "stream", 1_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := zmtptest.Dial(t, srv.addr)
			c.Handshake("DEALER", zmtptest.Str(tc.command+fmt.Sprint(tc.n)))
			c.SendText(fmt.Sprintf(`{"command":%q,"n":%d}`, tc.command, tc.n))
			readAll(t, c, tc.n)
		})
	}
	if v := srv.metric("moebius_slow_peers_dropped_total") + srv.metric("moebius_write_timeouts_total"); v != 0 {
		t.Fatalf("%v clients dropped", v)
	}
	if v := srv.metric("moebius_backpressure_waits_total"); v == 0 {
		t.Error("the streaming generator never waited for its client: the test did not reach the high-water mark")
	}
}

func TestAGeneratorWaitsForAClientThatDoesNotReadInsteadOfDroppingIt(t *testing.T) {
	srv := startServer(t, writeHandlers(t, burstHandlers), "--metrics", "127.0.0.1:0", "--send-hwm", "100")
	c := zmtptest.Dial(t, srv.addr)
	c.Handshake("DEALER", zmtptest.Str("sleepy"))
	c.SendText(`{"command":"stream","n":20000,"pad":1000}`) // 20 MB, more than send_queue_bytes
	// Not reading: the generator fills the socket buffers, then the queue to
	// its high-water mark, and waits there: its steps stop.
	eventually(t, 20*time.Second, "the generator to wait", func() bool {
		return srv.metric("moebius_backpressure_waits_total") > 0
	})
	eventually(t, 20*time.Second, "the generator's steps to stop", func() bool {
		steps := srv.metric("moebius_steps_total")
		time.Sleep(300 * time.Millisecond) // a window in which it must not be stepped
		return srv.metric("moebius_steps_total") == steps
	})
	readAll(t, c, 20000) // reading lets it go on, to the end
	if v := srv.metric("moebius_slow_peers_dropped_total"); v != 0 {
		t.Fatalf("the client was dropped")
	}
}

func TestBroadcastsSkipABackloggedClientAndReachTheOthers(t *testing.T) {
	srv := startServer(t, writeHandlers(t, `
const { server } = require('moebius');
module.exports = { rules: [
  { command: 'big', handler: (c) => { for (let i = 0; i < 50; i++) c.send('x'.repeat(100000)); } },
  { command: 'shout', handler: (c, d) => { server.broadcast('news ' + d.n); c.send('shouted'); } },
]};`), "--metrics", "127.0.0.1:0", "--send-hwm-bytes", "1000000")
	stuck := zmtptest.Dial(t, srv.addr)
	stuck.Handshake("DEALER", zmtptest.Str("stuck"))
	stuck.SendText(`{"command":"big"}`) // 5 MB it never reads: far above 1 MB
	reader := dial(t, srv.addr, "reader", false)
	eventually(t, 10*time.Second, "the stuck client to be backlogged", func() bool {
		reader.send(`{"command":"shout","n":0}`)
		for {
			m := reader.recvText()
			if m == "shouted" {
				break
			}
		}
		return srv.metric("moebius_broadcast_skipped_total") > 0
	})
	reader.send(`{"command":"shout","n":1}`)
	for got := []string{}; len(got) < 2; {
		got = append(got, reader.recvText())
		if len(got) == 2 && !(slicesContain(got, "news 1") && slicesContain(got, "shouted")) {
			t.Fatalf("the reader got %q", got)
		}
	}
	if v := srv.metric("moebius_slow_peers_dropped_total"); v != 0 {
		t.Fatal("the backlogged client was dropped instead of skipped")
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestMemoryStaysBoundedWhileClientsFillTheirQueuesOrNeverRead runs both
// attacks of the issue at once, scaled to bounds of 32 MiB each: 40
// clients that park a handler and then queue requests of 1 MB, and 320
// clients that ask for 15 replies of 1 MiB each and never read. A
// well-behaved client is answered throughout, and the server's resident
// memory stays under the bounds plus a margin for the Go heap's garbage
// (it may hold about twice what is live) and the runtime.
func TestMemoryStaysBoundedWhileClientsFillTheirQueuesOrNeverRead(t *testing.T) {
	const mib = 1 << 20
	srv := startPlain(t, writeHandlers(t, `
const { sleep, bytes } = require('moebius');
const big = bytes('y'.repeat(1 << 20));
module.exports = { rules: [
  { command: 'park', handler: function* (c) { c.send('parked'); yield sleep(600000); } },
  { command: 'fill', handler: (c) => {} },
  { command: 'pull', handler: (c) => { for (let i = 0; i < 15; i++) c.send(big); } },
  { command: 'echo', handler: (c, d) => c.send(d) },
]};`), "--metrics", "127.0.0.1:0", "--log-level", "info",
		"--max-pending-bytes", fmt.Sprint(32*mib), "--max-send-bytes", fmt.Sprint(32*mib),
		"--max-message-size", fmt.Sprint(2*mib))
	base := srv.rssBytes()

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
				if r, err := rss(srv.cmd.Process.Pid); err == nil && r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	defer func() { // also when the test fails early
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
		}
		<-sampled
	}()

	stop := make(chan struct{})
	var attackers sync.WaitGroup
	body := []byte(`{"command":"fill","pad":"` + strings.Repeat("p", 1<<20) + `"}`)
	for i := 0; i < 40; i++ {
		attackers.Add(1)
		go func() { // parks, then queues 1 MB requests for as long as it may
			defer attackers.Done()
			c, err := zmtptest.DialErr(srv.addr)
			if err != nil {
				return
			}
			defer c.C.Close()
			if c.HandshakeErr("DEALER", zmtptest.Str(fmt.Sprint("filler-", i))) != nil ||
				c.WriteErr(zmtptest.Message([]byte(`{"command":"park"}`))) != nil {
				return
			}
			msg := zmtptest.Message(body)
			for j := 0; j < 100; j++ {
				select {
				case <-stop:
					return
				default:
				}
				c.Timeout = time.Second
				if err := c.WriteErr(msg); err != nil && !isTimeout(err) {
					return
				}
			}
		}()
	}
	for i := 0; i < 320; i++ {
		attackers.Add(1)
		go func() { // asks for 15 MiB and never reads
			defer attackers.Done()
			c, err := zmtptest.DialErr(srv.addr)
			if err != nil {
				return
			}
			defer c.C.Close()
			if c.HandshakeErr("DEALER", zmtptest.Str(fmt.Sprint("puller-", i))) != nil {
				return
			}
			_ = c.WriteErr(zmtptest.Message([]byte(`{"command":"pull"}`)))
			<-stop
		}()
	}

	good := dial(t, srv.addr, "good", false)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		start := time.Now()
		req := fmt.Sprintf(`{"command":"echo","i":%d}`, i)
		if got := good.roundTrip(req); got != req {
			t.Fatalf("the good client got %q", got)
		}
		if rt := time.Since(start); rt > 3*time.Second {
			t.Fatalf("a round trip of the good client took %v during the attack", rt)
		}
	}
	close(stop)
	attackers.Wait()
	close(stopSampling)
	<-sampled

	limit := base + 2*32*mib + 256*mib
	t.Logf("resident memory: %d MiB at start, peak %d MiB (limit %d MiB); pending pauses %v, peers shed %v",
		base>>20, peak.Load()>>20, limit>>20, srv.metric("moebius_pending_bound_pauses_total"), srv.metric("moebius_peers_shed_total"))
	if peak.Load() > limit {
		t.Fatalf("resident memory peaked at %d MiB, over %d MiB", peak.Load()>>20, limit>>20)
	}
	if srv.metric("moebius_pending_bound_pauses_total") == 0 {
		t.Error("the pending-bytes bound never bit: the attack did not reach it")
	}
	if srv.metric("moebius_peers_shed_total") == 0 {
		t.Error("no peer was shed: the send bound never bit")
	}
	// Each bound that bit said so in the log.
	srv.logs.waitFor(t, regexp.MustCompile(`level=WARN msg="reading paused: all clients together hold max_pending_bytes`), 5*time.Second)
	srv.logs.waitFor(t, regexp.MustCompile(`level=WARN msg="dropping a peer that does not keep up`), 5*time.Second)
}

func TestAPeerThatStallsInTheMiddleOfAMessageIsClosedAtTheReadTimeout(t *testing.T) {
	srv := startServer(t, writeHandlers(t, echoHandlers), "--metrics", "127.0.0.1:0", "--read-timeout", "1s")
	const n = 50
	var stalled []*zmtptest.Client
	for i := 0; i < n; i++ {
		c := zmtptest.Dial(t, srv.addr)
		c.Handshake("DEALER", zmtptest.Str(fmt.Sprint("stall-", i)))
		c.Write([]byte{0x02, 0, 0, 0}) // half of a long frame header
		stalled = append(stalled, c)
	}
	start := time.Now()
	echoWorks(t, srv, "while-stalled")
	for _, c := range stalled {
		c.ExpectClosed(10 * time.Second)
	}
	if el := time.Since(start); el < time.Second/2 {
		t.Fatalf("closed after %v, well before the read timeout", el)
	}
	if v := srv.metric("moebius_read_timeouts_total"); v != n {
		t.Fatalf("moebius_read_timeouts_total = %v, want %d", v, n)
	}
	// An idle peer between messages is not stalled: it stays.
	idle := servedAs(t, srv, "idle")
	time.Sleep(2 * time.Second) // twice the read timeout: no event to await
	idle.SendText(`{"command":"echo","after":"idle"}`)
	if got := idle.RecvText(); got != `{"command":"echo","after":"idle"}` {
		t.Fatalf("the idle peer got %q", got)
	}
}

func TestServerHeartbeatsCloseASilentPeerAndKeepOneThatAnswers(t *testing.T) {
	srv := startServer(t, writeHandlers(t, echoHandlers), "--metrics", "127.0.0.1:0",
		"--heartbeat-interval", "300ms", "--heartbeat-timeout", "300ms")
	silent := zmtptest.Dial(t, srv.addr)
	silent.Handshake("DEALER", zmtptest.Str("half-open"))
	frames, isCmd, err := silent.ReadMessage()
	if err != nil || !isCmd || !bytes.HasPrefix(frames[0], []byte("\x04PING")) {
		t.Fatalf("the silent peer got %q (command %v, err %v), want a PING", frames, isCmd, err)
	}
	start := time.Now()                                     // the timeout runs from the PING
	silent.ExpectClosed(5 * time.Second)                    // it never answers
	if el := time.Since(start); el < 250*time.Millisecond { // 300ms, less the PING's way here
		t.Fatalf("closed %v after the PING, before the heartbeat timeout", el)
	}
	if v := srv.metric("moebius_heartbeat_timeouts_total"); v != 1 {
		t.Fatalf("moebius_heartbeat_timeouts_total = %v, want 1", v)
	}

	// A raw peer that answers every PING stays, silent otherwise.
	alive := servedAs(t, srv, "answers")
	for pongs := 0; pongs < 5; pongs++ {
		frames, isCmd, err := alive.ReadMessage()
		if err != nil || !isCmd || !bytes.HasPrefix(frames[0], []byte("\x04PING")) {
			t.Fatalf("got %q (command %v, err %v), want a PING", frames, isCmd, err)
		}
		alive.Write(zmtptest.Command("PONG", nil))
	}
	alive.SendText(`{"command":"echo","still":"here"}`)
	for {
		frames, isCmd, err := alive.ReadMessage()
		if err != nil {
			t.Fatalf("the peer that answered its PINGs was closed: %v", err)
		}
		if !isCmd {
			if string(frames[0]) != `{"command":"echo","still":"here"}` {
				t.Fatalf("got %q", frames)
			}
			break
		}
	}
	if v := srv.metric("moebius_heartbeat_timeouts_total"); v != 1 {
		t.Fatalf("moebius_heartbeat_timeouts_total = %v, want still 1", v)
	}
}

// The libzmq client heartbeats every second (ZMQ_HEARTBEAT_IVL); the
// server PINGs whoever is silent for 200 ms, so during the client's idle
// 3 s it is PINGed again and again, answers with PONGs (libzmq always
// does), and stays: one connection, no disconnect, both requests served.
func TestALibzmqClientWithItsOwnHeartbeatsStaysConnectedUnderServerHeartbeats(t *testing.T) {
	requireInterop(t)
	srv := startServer(t, writeHandlers(t, interopCounter), "--metrics", "127.0.0.1:0",
		"--heartbeat-interval", "200ms", "--heartbeat-timeout", "400ms")
	run := runHeartbeat(t, srv.addr, "--identity", "py-both", "--idle", "3",
		"--ivl", "1000", "--timeout", "3000", "--ttl", "0")
	t.Logf("monitor events: %v", run.order)
	want := []string{`{"n":1,"text":"first"}`, `{"n":2,"text":"second"}`}
	if strings.Join(run.replies, " ") != strings.Join(want, " ") {
		t.Errorf("replies %q, want %q", run.replies, want)
	}
	if run.events["CONNECTED"] != 1 || run.events["DISCONNECTED"] != 0 {
		t.Errorf("monitor events %v, want one CONNECTED and no DISCONNECTED", run.order)
	}
	if v := srv.metric("moebius_heartbeats_sent_total"); v < 3 {
		t.Errorf("moebius_heartbeats_sent_total = %v: the server hardly PINGed the idle client", v)
	}
	if v := srv.metric("moebius_heartbeat_timeouts_total"); v != 0 {
		t.Errorf("moebius_heartbeat_timeouts_total = %v", v)
	}
}

// refusedAtAccept reports whether the server closed c without sending
// anything (not even its greeting): a connection refused at accept.
func refusedAtAccept(c *zmtptest.Client) bool {
	_ = c.C.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.C.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

func TestConnectionFloodsFromOneAddressAreRefusedAtAcceptAndLeaveRoomForOthers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flags     []string
		flood     int
		handshake bool // the flood completes its handshakes (else it stays silent)
		admitted  int
		bound     string
		othersIn  bool // another address still gets in
	}{
		{"per address", []string{"--max-connections-per-address", "100"}, 300, true, 100, "max_connections_per_address", true},
		{"handshakes in progress, half of them per address", []string{"--max-handshakes", "20", "--handshake-timeout", "30s"}, 30, false, 10, "max_handshakes", true},
		// Behind a balancer every client has its address: no half for it.
		{"handshakes in progress, without a bound per address", []string{"--max-handshakes", "20", "--handshake-timeout", "30s", "--max-connections-per-address", "0"}, 30, false, 20, "max_handshakes", false},
		{"in all", []string{"--max-connections", "40"}, 60, true, 39, "max_connections", false}, // 39: room for 127.0.0.1's client
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, writeHandlers(t, echoHandlers), append([]string{"--metrics", "127.0.0.1:0"}, tc.flags...)...)
			if tc.bound == "max_connections" {
				echoWorksOn(t, srv, dial(t, srv.addr, "first", false)) // connected before the flood
			}
			var refused int
			for i := 0; i < tc.flood; i++ {
				c := zmtptest.DialFrom(t, srv.addr, "127.0.0.2")
				if tc.handshake {
					if c.HandshakeErr("DEALER", nil) != nil {
						refused++
					}
					continue
				}
				if i >= tc.admitted && refusedAtAccept(c) {
					refused++
				}
			}
			if want := tc.flood - tc.admitted; refused != want {
				t.Fatalf("%d of %d connections from 127.0.0.2 refused, want %d", refused, tc.flood, want)
			}
			if tc.othersIn {
				echoWorks(t, srv, "from-127.0.0.1") // the other address still gets in
			}
			if v := srv.metricLabelled("moebius_connections_refused_total", `bound="`+tc.bound+`"`); v != float64(tc.flood-tc.admitted) {
				t.Fatalf("refused counter %v, want %d", v, tc.flood-tc.admitted)
			}
			srv.logs.waitFor(t, regexp.MustCompile(`connection refused at accept: `+tc.bound+` reached`), 5*time.Second)
		})
	}
}

// echoWorksOn checks that c is served.
func echoWorksOn(t *testing.T, srv *server, c *client) {
	t.Helper()
	if got := c.roundTrip(`{"command":"echo","n":1}`); got != `{"command":"echo","n":1}` {
		t.Fatalf("%s got %q", c.id, got)
	}
}

const spawnHandlers = `
const { server, sleep } = require('moebius');
function* long() { yield sleep(600000); }
function spawnMany(n) {
  let spawned = 0;
  try { for (let i = 0; i < n; i++) { server.spawn(long); spawned++; } }
  catch (e) { return { spawned, error: e.name + ': ' + e.message }; }
  return { spawned };
}
module.exports = { rules: [
  { command: 'spawn', handler: (c, d) => c.send(spawnMany(d.n)) },
  { command: 'runaway', handler: (c) => { spawnMany(50); for (;;) {} } },
]};`

func TestSpawnIsBoundedPerClientAndPerWorkerAndARunawayStepsSpawnsAreCancelled(t *testing.T) {
	srv := startServer(t, writeHandlers(t, spawnHandlers), "--metrics", "127.0.0.1:0",
		"--max-spawned-per-client", "100", "--max-spawned", "150", "--step-budget", "300ms")
	type result struct {
		Spawned int    `json:"spawned"`
		Error   string `json:"error"`
	}
	spawn := func(c *client, n int) result {
		var r result
		if err := json.Unmarshal([]byte(c.roundTrip(fmt.Sprintf(`{"command":"spawn","n":%d}`, n))), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := dial(t, srv.addr, "a", false)
	if r := spawn(a, 1000); r.Spawned != 100 || !strings.Contains(r.Error, "RangeError") || !strings.Contains(r.Error, "max_spawned_per_client") {
		t.Fatalf("client a: %+v, want 100 spawned and a RangeError naming max_spawned_per_client", r)
	}
	b := dial(t, srv.addr, "b", false)
	if r := spawn(b, 1000); r.Spawned != 50 || !strings.Contains(r.Error, "max_spawned)") {
		t.Fatalf("client b: %+v, want the 50 left of the worker's 150 and an error naming max_spawned", r)
	}
	if v := srv.metric("moebius_spawn_refused_total"); v != 2 {
		t.Fatalf("moebius_spawn_refused_total = %v, want 2", v)
	}
	// Spawned work ends with its client: a's 100 go when a leaves.
	tasks := srv.metric("moebius_tasks")
	a.sock.Close()
	eventually(t, 10*time.Second, "a's spawned tasks to end", func() bool { return srv.metric("moebius_tasks") == tasks-100 })

	// A step that spawns and then runs away: what it spawned goes with it.
	d := dial(t, srv.addr, "d", false)
	d.send(`{"command":"runaway"}`) // 50 spawned, then interrupted
	if code := errorReplyCode(d.recvText()); code != "runaway_handler" {
		t.Fatalf("reply code %q, want runaway_handler", code)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`cancelling the tasks an interrupted step spawned.*tasks=50`), 5*time.Second)
	if got := srv.metric("moebius_tasks"); got != tasks-100 {
		t.Fatalf("moebius_tasks = %v after the runaway step, want %v: what it spawned lives on", got, tasks-100)
	}
}

func TestRepeatedRefusalsFromOnePeerDoNotFloodTheLog(t *testing.T) {
	srv := startServer(t, writeHandlers(t, echoHandlers), "--metrics", "127.0.0.1:0", "--log-level", "info")
	out, _ := runBench(t, srv.addr, "--message", `{"command":"nosuch"}`, "--duration", "2s")
	if out.Errors < 1000 {
		t.Fatalf("the bench made only %d failing requests: too few to test the limit", out.Errors)
	}
	lines := strings.Count(srv.logs.String(), `msg="request refused"`)
	t.Logf("%d requests refused, %d log lines", out.Errors, lines)
	if lines > 100 {
		t.Fatalf("%d log lines for %d refused requests", lines, out.Errors)
	}
	if v := srv.metric("moebius_log_lines_suppressed_total"); v < float64(out.Errors)/2 {
		t.Fatalf("moebius_log_lines_suppressed_total = %v for %d refusals", v, out.Errors)
	}
	if v := srv.metricLabelled("moebius_request_errors_total", `code="unknown_command"`); v < float64(out.Errors) {
		t.Fatalf("unknown_command counted %v times, the bench saw %d: suppressed lines must still count", v, out.Errors)
	}
}

package tests

// Each test here reproduces, over real sockets against the real binary, one
// way a stock zmq4 ROUTER was found to break (docs/design.md §5), and checks
// that moebius-js holds.

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
)

// hostileHandlers serve the attacks below.
const hostileHandlers = `
const { sleep, server } = require('moebius');
let held = 0;
let saved = null;
module.exports = { rules: [
  { command: 'echo', handler: (c, d) => c.send(d) },
  { command: 'big', handler: (c, d) => c.send('x'.repeat(d.size)) },
  { command: 'hold', handler: function* (c) {
      held++;
      saved = c;
      c.send('holding');
      try { yield sleep(60000); }
      finally { const w = server.client('watcher'); if (w) w.send('finally ran for ' + c.id); }
  } },
  { command: 'held', handler: (c) => c.send({ held }) },
  { command: 'poke', handler: (c) => {
      try { saved.send('are you there?'); c.send('sent'); }
      catch (e) { c.send(e.constructor.name + ' ' + (e instanceof require('moebius').ClientGoneError)); }
  } },
]};
`

func startHostile(t *testing.T, flags ...string) *server {
	t.Helper()
	return startServer(t, writeHandlers(t, hostileHandlers), append([]string{"--metrics", "127.0.0.1:0"}, flags...)...)
}

// echoWorks checks that a fresh client is served.
func echoWorks(t *testing.T, srv *server, id string) {
	t.Helper()
	c := dial(t, srv.addr, id, false)
	if got := c.roundTrip(`{"command":"echo","from":"` + id + `"}`); !strings.Contains(got, id) {
		t.Fatalf("%s got %q", id, got)
	}
}

func TestFrameClaimingPetabytesClosesOnlyThatConnection(t *testing.T) {
	srv := startHostile(t)
	before := srv.rssBytes()
	for _, claim := range []uint64{1 << 50, 1<<63 + 5, 1<<20 + 1} {
		raw := zmtptest.Dial(t, srv.addr)
		raw.Handshake("DEALER", zmtptest.Str(fmt.Sprintf("huge-%d", claim)))
		hdr := []byte{zmtptest.FlagLong}
		hdr = binary.BigEndian.AppendUint64(hdr, claim)
		raw.Write(append(hdr, "a few bytes of the body"...))
		if got := raw.ExpectClosed(5 * time.Second); len(got) != 0 {
			t.Fatalf("claim %d: the server sent %q before closing", claim, got)
		}
	}
	srv.logs.waitFor(t, regexp.MustCompile(`closing connection: message too large`), 5*time.Second)
	if got := srv.metric("moebius_oversize_total"); got != 3 {
		t.Fatalf("moebius_oversize_total = %v, want 3", got)
	}
	if !srv.alive() {
		t.Fatal("the server died")
	}
	if grew := srv.rssBytes() - before; grew > 64<<20 {
		t.Fatalf("resident memory grew by %d MiB: the claimed size was allocated", grew>>20)
	}
	echoWorks(t, srv, "after-huge")
}

func TestMaxMessageSizeIsConfigurable(t *testing.T) {
	srv := startHostile(t, "--max-message-size", "2000")
	ok := zmtptest.Dial(t, srv.addr)
	ok.Handshake("DEALER", zmtptest.Str("small"))
	ok.SendText(`{"command":"echo","pad":"` + strings.Repeat("p", 1500) + `"}`)
	if got := ok.RecvText(); !strings.Contains(got, "ppp") {
		t.Fatalf("a 1.5 kB message was not served: %q", got)
	}
	// Two frames that are each allowed but together exceed the limit.
	tooBig := zmtptest.Dial(t, srv.addr)
	tooBig.Handshake("DEALER", zmtptest.Str("big"))
	tooBig.Send([]byte(strings.Repeat("a", 1200)), []byte(strings.Repeat("b", 1200)))
	tooBig.ExpectClosed(5 * time.Second)
	if got := srv.metric("moebius_oversize_total"); got != 1 {
		t.Fatalf("moebius_oversize_total = %v, want 1", got)
	}
}

func TestSilentConnectionDelaysNobodyAndIsClosedAtTheHandshakeDeadline(t *testing.T) {
	srv := startHostile(t, "--handshake-timeout", "2s")
	silent := zmtptest.Dial(t, srv.addr) // connects, never sends a byte
	opened := time.Now()
	echoWorks(t, srv, "while-silent")
	// The other client was served while the silent connection was still
	// pending: nothing waited for its handshake.
	if time.Since(opened) >= 2*time.Second {
		t.Fatal("the other client was served only after the silent one timed out")
	}
	silent.ExpectClosed(10 * time.Second)
	if waited := time.Since(opened); waited < 2*time.Second {
		t.Fatalf("the silent connection was closed after %v, before its 2s deadline", waited)
	}
	if got := srv.metric("moebius_handshakes_failed_total"); got != 1 {
		t.Fatalf("moebius_handshakes_failed_total = %v, want 1", got)
	}
}

func TestPeerThatFloodsAndNeverReadsIsDroppedAlone(t *testing.T) {
	srv := startHostile(t, "--send-queue-bytes", "1048576")
	flood := zmtptest.Dial(t, srv.addr)
	flood.Handshake("DEALER", zmtptest.Str("flooder"))
	victim := dial(t, srv.addr, "victim", false)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // requests for 64 kB replies, never reading one
		defer wg.Done()
		req := zmtptest.Message([]byte(`{"command":"big","size":65536}`))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if flood.WriteErr(req) != nil {
				return // dropped
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// The victim keeps its normal service while the flood goes on, until
	// the flooder is dropped.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; srv.metric("moebius_slow_peers_dropped_total") == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the flooding peer was never dropped")
		}
		start := time.Now()
		if got := victim.roundTrip(fmt.Sprintf(`{"command":"echo","i":%d}`, i)); !strings.Contains(got, fmt.Sprintf(`"i":%d`, i)) {
			t.Fatalf("victim got %q", got)
		}
		if rt := time.Since(start); rt > 2*time.Second {
			t.Fatalf("victim round trip took %v during the flood", rt)
		}
	}
	srv.logs.waitFor(t, regexp.MustCompile(`dropping slow peer.*flooder`), 5*time.Second)
	if got := srv.metric("moebius_slow_peers_dropped_total"); got != 1 {
		t.Fatalf("moebius_slow_peers_dropped_total = %v, want exactly the flooder", got)
	}
	if got := victim.roundTrip(`{"command":"echo","after":true}`); !strings.Contains(got, "after") {
		t.Fatalf("victim after the drop: %q", got)
	}
}

// baseline is what a quiet server holds: it must come back to it after
// every wave of connections.
type baseline struct {
	goroutines, conns, fds float64
}

func quiet(t *testing.T, srv *server) baseline {
	t.Helper()
	return baseline{srv.metric("go_goroutines"), srv.metric("moebius_connections"), float64(srv.openFDs())}
}

func waitForBaseline(t *testing.T, srv *server, b baseline) {
	t.Helper()
	eventually(t, 30*time.Second, "connections, peers, goroutines and fds back to baseline", func() bool {
		return srv.metric("moebius_connections") == b.conns && srv.metric("moebius_peers") == 0 &&
			srv.metric("go_goroutines") <= b.goroutines && float64(srv.openFDs()) <= b.fds
	})
}

// inParallel runs n jobs on workers goroutines and fails the test with the
// first error.
func inParallel(t *testing.T, n, workers int, job func(i int) error) {
	t.Helper()
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := job(i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("job %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

func TestHalfFrameChurnLeavesNoConnectionGoroutineOrPeer(t *testing.T) {
	srv := startHostile(t)
	b := quiet(t, srv)
	const peers = 5000
	inParallel(t, peers, 32, func(i int) error {
		c, err := zmtptest.DialErr(srv.addr)
		if err != nil {
			return err
		}
		defer c.C.Close()
		if err := c.HandshakeErr("DEALER", zmtptest.Str(fmt.Sprintf("half-%d", i))); err != nil {
			return err
		}
		// A header announcing 100 bytes, then 10 of them, then gone.
		return c.WriteErr(append([]byte{0, 100}, "0123456789"...))
	})
	waitForBaseline(t, srv, b)
	if got := srv.metric("moebius_connections_accepted_total"); got != peers {
		t.Fatalf("accepted %v connections, want %d", got, peers)
	}
	echoWorks(t, srv, "after-churn")
}

func TestConnectRequestCloseCyclesLeaveNothingBehind(t *testing.T) {
	srv := startHostile(t)
	cycle := func(i int) error {
		c, err := zmtptest.DialErr(srv.addr)
		if err != nil {
			return err
		}
		defer c.C.Close()
		if err := c.HandshakeErr("DEALER", nil); err != nil {
			return err
		}
		if err := c.WriteErr(zmtptest.Message([]byte(`{"command":"echo","i":1}`))); err != nil {
			return err
		}
		if i%2 == 0 {
			return nil // close before reading the reply
		}
		frames, _, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if !strings.Contains(string(frames[0]), `"i":1`) {
			return fmt.Errorf("reply %q", frames[0])
		}
		return nil
	}
	const warmup, cycles = 2000, 20000
	inParallel(t, warmup, 16, cycle)
	b := quiet(t, srv)
	waitForBaseline(t, srv, b)
	heapBefore := srv.metric("go_memstats_heap_inuse_bytes")
	inParallel(t, cycles, 16, cycle)
	waitForBaseline(t, srv, b)
	heapAfter := srv.metric("go_memstats_heap_inuse_bytes")
	t.Logf("heap in use: %.1f MiB after %d warm-up cycles, %.1f MiB after %d more", heapBefore/(1<<20), warmup, heapAfter/(1<<20), cycles)
	// Flat: 20,000 cycles may leave less than 8 MiB (about 400 bytes a
	// cycle) behind: the garbage collector's slack, far below what one
	// leaked connection per cycle (read buffer, goroutine stacks, a JS
	// client object) would take.
	if heapAfter > heapBefore+8<<20 {
		t.Fatalf("heap in use went from %.1f MiB to %.1f MiB over %d cycles", heapBefore/(1<<20), heapAfter/(1<<20), cycles)
	}
	echoWorks(t, srv, "after-cycles")
}

// servedAs connects a raw client with identity id and completes one round
// trip, so the server has certainly registered it.
func servedAs(t *testing.T, srv *server, id string) *zmtptest.Client {
	t.Helper()
	c := zmtptest.Dial(t, srv.addr)
	c.Handshake("DEALER", zmtptest.Str(id))
	c.SendText(`{"command":"echo","n":1}`)
	if got := c.RecvText(); got != `{"command":"echo","n":1}` {
		t.Fatalf("%s got %q", id, got)
	}
	return c
}

func TestDuplicateIdentityIsRefusedByDefault(t *testing.T) {
	srv := startHostile(t)
	first := servedAs(t, srv, "dup")

	second := zmtptest.Dial(t, srv.addr)
	second.Handshake("DEALER", zmtptest.Str("dup"))
	second.SendText(`{"command":"echo","from":"second"}`)
	if got := second.ExpectClosed(5 * time.Second); len(got) != 0 {
		t.Fatalf("the refused newcomer received %q", got)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`refused connection: identity already in use`), 5*time.Second)
	if got := srv.metric("moebius_duplicate_identities_refused_total"); got != 1 {
		t.Fatalf("refused counter %v", got)
	}
	// The first client still owns its identity and gets its own replies.
	first.SendText(`{"command":"echo","n":2}`)
	if got := first.RecvText(); got != `{"command":"echo","n":2}` {
		t.Fatalf("first got %q", got)
	}
}

func TestIdentityHandoverGivesTheIdentityToTheNewcomer(t *testing.T) {
	srv := startHostile(t, "--identity-handover")
	first := servedAs(t, srv, "dup")

	second := zmtptest.Dial(t, srv.addr)
	second.Handshake("DEALER", zmtptest.Str("dup"))
	first.ExpectClosed(5 * time.Second)
	second.SendText(`{"command":"echo","from":"second"}`)
	if got := second.RecvText(); got != `{"command":"echo","from":"second"}` {
		t.Fatalf("newcomer got %q", got)
	}
}

func TestDisconnectCancelsTaskFreesQueueAndSendsThrowClientGone(t *testing.T) {
	srv := startHostile(t)
	watcher := dial(t, srv.addr, "watcher", false)
	leaver := zmtptest.Dial(t, srv.addr)
	leaver.Handshake("DEALER", zmtptest.Str("leaver"))
	leaver.SendText(`{"command":"hold"}`)
	if got := leaver.RecvText(); got != "holding" {
		t.Fatalf("leaver got %q", got)
	}
	for i := 0; i < 3; i++ { // queued behind the running hold
		leaver.SendText(`{"command":"hold"}`)
	}
	_ = leaver.C.Close()

	if got := watcher.recvText(); got != "finally ran for leaver" {
		t.Fatalf("watcher got %q; want the cancelled generator's finally block", got)
	}
	if got := watcher.roundTrip(`{"command":"held"}`); got != `{"held":1}` {
		t.Fatalf("%s: the queued requests ran after the client left", got)
	}
	if got := watcher.roundTrip(`{"command":"poke"}`); got != "ClientGoneError true" {
		t.Fatalf("send to the gone client: %q", got)
	}
}

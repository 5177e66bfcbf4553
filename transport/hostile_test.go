package transport_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
	"github.com/moebius-js/moebius-js/transport"
)

// roundTrip checks that a fresh DEALER is still served.
func roundTrip(t *testing.T, srv *transport.Server, id string) {
	t.Helper()
	dealer := dialZMQ(t, zmq4.Dealer, tcpAddr(t, srv), id)
	sendZMQ(t, dealer, []byte("still there?"))
	if got := recvZMQ(t, dealer); len(got) != 2 || string(got[1]) != "still there?" {
		t.Fatalf("round trip for %s: received %q", id, got)
	}
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func TestOversizeIsRefusedWithoutAllocating(t *testing.T) {
	const maxMsg = 4096
	huge := make([]byte, 9)
	huge[0] = 0x02 // LONG
	binary.BigEndian.PutUint64(huge[1:], 1<<50)
	hugeCmd := bytes.Clone(huge)
	hugeCmd[0] |= 0x04 // COMMAND

	var manySmall []byte // 100 frames of 100 bytes > 4096
	for range 100 {
		manySmall = append(manySmall, zmtptest.Frame(0x01, bytes.Repeat([]byte("s"), 100))...)
	}

	cases := []struct {
		name          string
		afterHello    bool // send after a valid handshake (else: after the greeting only)
		data          []byte
		wantOversize  uint64
		wantHandshake uint64
	}{
		{"frame header claiming 2^50 bytes", true, huge, 1, 0},
		{"command header claiming 2^50 bytes", true, hugeCmd, 1, 0},
		{"size of 2^63 and more", true, append([]byte{0x02}, 0x80, 0, 0, 0, 0, 0, 0, 1), 1, 0},
		{"many small frames over the limit", true, manySmall, 1, 0},
		{"one byte over the limit", true, zmtptest.Frame(0, make([]byte, maxMsg-9+1)), 1, 0},
		{"READY claiming 2^50 bytes during the handshake", false, hugeCmd, 0, 1},
		{"READY over the 64 KiB handshake cap", false, append([]byte{0x06}, 0, 0, 0, 0, 0, 1, 0, 1), 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := startServer(t, transport.Config{Limits: transport.Limits{MaxMessageSize: maxMsg}})
			echo(srv, rec, "echo")
			before := totalAlloc()

			rc := zmtptest.Dial(t, tcpAddr(t, srv))
			if tc.afterHello {
				rc.Handshake("DEALER", zmtptest.Str("big"))
				rec.waitConnected(t, "big")
			} else {
				rc.Write(zmtptest.Greeting(3, "NULL"))
			}
			rc.Write(tc.data)
			rc.ExpectClosed(waitTimeout)
			eventually(t, "the connection to be reaped", func() bool { return srv.Stats().Conns == 0 })

			if grew := totalAlloc() - before; grew > 32<<20 {
				t.Errorf("allocated %d bytes while refusing", grew)
			}
			s := srv.Stats()
			if s.Oversize != tc.wantOversize || s.HandshakeFailed != tc.wantHandshake || s.MsgsIn != 0 {
				t.Errorf("stats %+v: want Oversize %d, HandshakeFailed %d, MsgsIn 0", s, tc.wantOversize, tc.wantHandshake)
			}
			if tc.afterHello {
				evs := rec.waitFor(t, "Disconnected", func(evs []event) bool { return count(evs, evDisconnected, "big") == 1 })
				if r := evs[len(evs)-1].reason; !errors.Is(r, transport.ErrMessageTooLarge) {
					t.Errorf("reason %v, want ErrMessageTooLarge", r)
				}
			}
			roundTrip(t, srv, "other")
		})
	}

	t.Run("a message of exactly the limit is delivered", func(t *testing.T) {
		srv, rec := startServer(t, transport.Config{Limits: transport.Limits{MaxMessageSize: maxMsg}})
		rc := zmtptest.Dial(t, tcpAddr(t, srv))
		rc.Handshake("DEALER", zmtptest.Str("exact"))
		body := bytes.Repeat([]byte("e"), maxMsg-9-2) // long header 9 + short frame 2 + body
		rc.Send(nil, body)                            // REQ-style: [empty][body]
		evs := rec.waitFor(t, "message", func(evs []event) bool { return count(evs, evMessage, "exact") == 1 })
		if got := messages(evs)[0]; len(got) != 1 || !bytes.Equal(got[0], body) {
			t.Fatalf("delivered %d frames", len(got))
		}
	})
}

func TestSilentPeerDelaysNobody(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv, rec := startServer(t, transport.Config{Limits: transport.Limits{HandshakeTimeout: timeout}})
	echo(srv, rec, "echo")

	var silent []*zmtptest.Client
	opened := time.Now()
	for range 10 {
		silent = append(silent, zmtptest.Dial(t, tcpAddr(t, srv)))
	}
	roundTrip(t, srv, "busy")
	served := time.Since(opened)

	// The silent peers are still open (their handshakes still pending).
	if s := srv.Stats(); s.Conns != 11 || s.HandshakeFailed != 0 {
		t.Fatalf("while silent peers wait: %+v (round trip took %v)", s, served)
	}
	for _, rc := range silent {
		// The signature and major version go out at once; the rest of our
		// greeting waits for the peer's.
		want := zmtptest.Greeting(3, "NULL")[:11]
		if got := rc.ExpectClosed(waitTimeout); !bytes.Equal(got, want) {
			t.Errorf("silent peer received % x, want just the signature and major version (% x)", got, want)
		}
	}
	if closed := time.Since(opened); closed < timeout {
		t.Errorf("silent peers closed after %v, before the %v handshake timeout", closed, timeout)
	}
	eventually(t, "handshake failures counted", func() bool {
		s := srv.Stats()
		return s.HandshakeFailed == 10 && s.Conns == 1
	})
}

func TestSlowReaderIsDroppedAlone(t *testing.T) {
	srv, rec := startServer(t, transport.Config{Limits: transport.Limits{SendQueueBytes: 2 << 20, WriteTimeout: time.Minute}})
	big := bytes.Repeat([]byte("B"), 256<<10) // shared by every reply
	rec.setOnMessage(func(p transport.Peer, env transport.Envelope, frames [][]byte) {
		if string(frames[0]) == "big" {
			_ = srv.Send(p.ID, big)
			return
		}
		_ = srv.Send(p.ID, []byte("echo"), frames[0])
	})

	// A fast client keeps doing round trips meanwhile.
	fast := dialZMQ(t, zmq4.Dealer, tcpAddr(t, srv), "fast")
	rec.waitConnected(t, "fast")
	var fastTrips atomic.Int64
	stop := make(chan struct{})
	fastDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				fastDone <- nil
				return
			default:
			}
			if err := fast.Send(zmq4.NewMsgString("q")); err != nil {
				fastDone <- err
				return
			}
			if _, err := fast.Recv(); err != nil {
				fastDone <- err
				return
			}
			fastTrips.Add(1)
		}
	}()

	slow := zmtptest.Dial(t, tcpAddr(t, srv))
	slow.Handshake("DEALER", zmtptest.Str("slow"))
	rec.waitConnected(t, "slow")
	// One request at a time, each awaited: the queue only grows once the
	// slow peer's socket buffers are full and its writer is stuck.
	request := zmtptest.Message([]byte("big"))
	sent := 0
	for ; count(rec.snapshot(), evDisconnected, "slow") == 0; sent++ {
		if sent > 5000 {
			t.Fatal("slow peer never dropped")
		}
		_ = slow.C.SetWriteDeadline(time.Now().Add(waitTimeout))
		if _, err := slow.C.Write(request); err != nil {
			break // the server closed it
		}
		rec.waitFor(t, "request delivered", func(evs []event) bool {
			return count(evs, evMessage, "slow") > sent || count(evs, evDisconnected, "slow") > 0
		})
	}
	t.Logf("slow peer dropped after %d requests of %d KiB replies", sent, len(big)>>10)
	evs := rec.waitFor(t, "slow Disconnected", func(evs []event) bool { return count(evs, evDisconnected, "slow") == 1 })
	for _, e := range evs {
		if e.kind == evDisconnected && e.peer.ID == "slow" && !errors.Is(e.reason, transport.ErrPeerDropped) {
			t.Errorf("slow reason %v, want ErrPeerDropped", e.reason)
		}
	}

	// The fast client was served throughout and still is.
	before := fastTrips.Load()
	eventually(t, "more fast round trips", func() bool { return fastTrips.Load() >= before+10 })
	close(stop)
	if err := <-fastDone; err != nil {
		t.Fatalf("fast client: %v", err)
	}
	if s := srv.Stats(); s.SlowDropped != 1 || s.Peers != 1 {
		t.Errorf("stats %+v: want SlowDropped 1, Peers 1", s)
	}
	if count(rec.snapshot(), evDisconnected, "fast") != 0 {
		t.Errorf("fast client was disconnected")
	}
}

func TestHalfFrameChurnLeavesNothingBehind(t *testing.T) {
	const peers = 2000
	srv, rec := startServer(t, transport.Config{Limits: transport.Limits{HandshakeTimeout: 5 * time.Second}})
	baseline := runtime.NumGoroutine()

	endings := [][]byte{
		{0x01},                                 // half a header
		{0x02, 0, 0, 0},                        // half a long header
		{0x00, 100, 'a', 'b'},                  // header and part of the body
		{0x01, 3, 'x', 'y', 'z'},               // a whole frame with MORE, then nothing
		zmtptest.Frame(0x04, []byte("\x04PI")), // a command whose name is cut short
	}
	addr := tcpAddr(t, srv)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				if err := churnOne(addr, i, endings[i%len(endings)]); err != nil {
					t.Errorf("peer %d: %v", i, err) // Errorf: safe off the test goroutine
				}
			}
		})
	}
	for i := range peers {
		work <- i
	}
	close(work)
	wg.Wait()

	eventually(t, "no peers or conns left", func() bool {
		s := srv.Stats()
		return s.Peers == 0 && s.Conns == 0 && s.Accepted == peers
	})
	waitGoroutines(t, baseline)
	evs := rec.snapshot()
	if c, d := count(evs, evConnected, ""), count(evs, evDisconnected, ""); c != d || c != peers*9/10 {
		t.Errorf("Connected %d, Disconnected %d, want %d each", c, d, peers*9/10)
	}
	if n := count(evs, evMessage, ""); n != 0 {
		t.Errorf("%d messages delivered from half frames", n)
	}
}

// churnOne is one churning peer: every tenth vanishes mid-greeting, the
// others complete the handshake, send ending (part of a frame) and close.
func churnOne(endpoint string, i int, ending []byte) error {
	c, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if i%10 == 9 {
		_, err := c.Write(zmtptest.Greeting(3, "NULL")[:40])
		return err
	}
	if _, err := c.Write(append(zmtptest.Greeting(3, "NULL"), zmtptest.Ready("DEALER", nil)...)); err != nil {
		return err
	}
	// The server's greeting and READY (Socket-Type=ROUTER): 64 + 30 bytes.
	if _, err := io.ReadFull(c, make([]byte, 64+30)); err != nil {
		return fmt.Errorf("server hello: %w", err)
	}
	_, err = c.Write(ending)
	return err
}

func TestPingIsAnsweredWithPong(t *testing.T) {
	cases := []struct {
		name string
		data []byte // after the name
		want string // PONG context
	}{
		{"context abc", []byte("\x00\x0aabc"), "abc"},
		{"no context", []byte("\x00\x0a"), ""},
		{"context truncated to 16 bytes", []byte("\x00\x0a0123456789abcdefXYZ"), "0123456789abcdef"},
	}
	srv, rec := startServer(t, transport.Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := zmtptest.Dial(t, tcpAddr(t, srv))
			rc.Handshake("DEALER", nil)
			rc.Write(zmtptest.Command("PING", tc.data))
			frames, isCmd, err := rc.ReadMessage()
			if err != nil || !isCmd || len(frames) != 1 || string(frames[0]) != "\x04PONG"+tc.want {
				t.Fatalf("got %q cmd=%v err=%v, want PONG %q", frames, isCmd, err, tc.want)
			}
		})
	}
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	rc.Handshake("DEALER", zmtptest.Str("commands"))
	rc.Write(zmtptest.Command("SUBSCRIBE", []byte("x"))) // ignored
	rc.Write(zmtptest.Command("PING", []byte("\x00\x01")))
	if _, isCmd, err := rc.ReadMessage(); err != nil || !isCmd {
		t.Fatalf("no PONG: %v", err)
	}
	if n := count(rec.snapshot(), evMessage, ""); n != 0 || srv.Stats().MsgsIn != 0 {
		t.Errorf("commands reached the handler: %d messages", n)
	}
}

func TestMalformedHandshakesOnlyCloseThatConnection(t *testing.T) {
	hello := zmtptest.Greeting(3, "NULL")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		data []byte
	}{
		{"bad signature", cat([]byte{0x00}, hello[1:])},
		{"bad signature footer", cat(hello[:9], []byte{0x00}, hello[10:])},
		{"ZMTP 2.0 version", zmtptest.Greeting(2, "NULL")},
		{"wrong mechanism", zmtptest.Greeting(3, "PLAIN")},
		{"truncated metadata value", cat(hello, zmtptest.Command("READY", []byte("\x0bSocket-Type\x00\x00\x00\x64DEA")))},
		{"truncated metadata name", cat(hello, zmtptest.Command("READY", []byte("\x20Sock")))},
		{"truncated value length", cat(hello, zmtptest.Command("READY", []byte("\x0bSocket-Type\x00\x00")))},
		{"empty property name", cat(hello, zmtptest.Command("READY", []byte("\x00\x00\x00\x00\x00")))},
		{"incompatible socket type PUB", cat(hello, zmtptest.Ready("PUB", nil))},
		{"missing socket type", cat(hello, zmtptest.Command("READY", nil))},
		{"identity over 255 bytes", cat(hello, zmtptest.Ready("DEALER", zmtptest.Str(strings.Repeat("i", 256))))},
		{"ERROR instead of READY", cat(hello, zmtptest.Command("ERROR", []byte("\x04nope")))},
		{"HELLO instead of READY", cat(hello, zmtptest.Command("HELLO", nil))},
		{"message frame instead of READY", cat(hello, zmtptest.Frame(0, []byte("data")))},
		{"READY with MORE flag", cat(hello, []byte{0x05}, zmtptest.Ready("DEALER", nil)[1:])},
		{"empty command frame", cat(hello, []byte{0x04, 0})},
		{"command name longer than frame", cat(hello, []byte{0x04, 2, 0x09, 'R'})},
		{"reserved flag bits", cat(hello, []byte{0x84, 0})},
	}
	srv, rec := startServer(t, transport.Config{Limits: transport.Limits{HandshakeTimeout: time.Minute}})
	echo(srv, rec, "echo")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := zmtptest.Dial(t, tcpAddr(t, srv))
			rc.Write(tc.data)
			// Well before the handshake timeout: the error path closed it.
			rc.ExpectClosed(waitTimeout)
			eventually(t, "failure counted", func() bool { return srv.Stats().HandshakeFailed == uint64(i+1) })
		})
	}
	if n := count(rec.snapshot(), evConnected, ""); n != 0 {
		t.Errorf("%d malformed peers connected", n)
	}
	roundTrip(t, srv, "survivor")
}

func TestProtocolErrorsAfterHandshakeCloseTheConnection(t *testing.T) {
	cases := []struct {
		name string
		data []byte
	}{
		{"reserved flag bits", []byte{0x10, 0}},
		{"command with MORE", []byte{0x05, 5, 4, 'P', 'I', 'N', 'G'}},
		{"command inside a multipart message", append(zmtptest.Frame(0x01, []byte("a")), zmtptest.Command("PING", nil)...)},
		{"empty command", []byte{0x04, 0}},
	}
	srv, rec := startServer(t, transport.Config{})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := zmtptest.Dial(t, tcpAddr(t, srv))
			rc.Handshake("DEALER", nil)
			rc.Write(tc.data)
			rc.ExpectClosed(waitTimeout)
			eventually(t, "error counted", func() bool { return srv.Stats().ProtocolErrors == uint64(i+1) })
		})
	}
	evs := rec.waitFor(t, "all disconnected", func(evs []event) bool { return count(evs, evDisconnected, "") == len(cases) })
	for _, e := range evs {
		if e.kind == evDisconnected && !errors.Is(e.reason, transport.ErrProtocol) {
			t.Errorf("reason %v, want ErrProtocol", e.reason)
		}
	}
}

func TestTooManyFramesCloseTheConnection(t *testing.T) {
	frames := func(first []byte, n int) [][]byte { // first, then n-1 frames "f"
		out := [][]byte{first}
		for range n - 1 {
			out = append(out, []byte("f"))
		}
		return out
	}
	cases := []struct {
		name       string
		maxFrames  int
		send       [][]byte
		wantFrames int // frames delivered; 0: the connection is closed instead
	}{
		{"the default limit delivers 256 frames", 0, frames([]byte("a"), transport.DefaultMaxFrames), transport.DefaultMaxFrames},
		{"the default limit refuses 257 frames", 0, frames([]byte("a"), transport.DefaultMaxFrames+1), 0},
		{"1000 empty frames in a small message are refused", 0, make([][]byte, 1000), 0},
		{"MaxFrames 4 delivers 4 frames", 4, frames([]byte("a"), 4), 4},
		{"MaxFrames 4 refuses 5 frames", 4, frames([]byte("a"), 5), 0},
		{"the REQ delimiter counts against MaxFrames", 4, frames(nil, 5), 0},
		{"a REQ delimiter and 3 frames fit in MaxFrames 4", 4, frames(nil, 4), 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := startServer(t, transport.Config{Limits: transport.Limits{MaxFrames: tc.maxFrames}})
			echo(srv, rec, "echo")
			rc := zmtptest.Dial(t, tcpAddr(t, srv))
			rc.Handshake("DEALER", zmtptest.Str("many"))
			rec.waitConnected(t, "many")
			rc.Send(tc.send...)

			if tc.wantFrames > 0 {
				evs := rec.waitFor(t, "the message", func(evs []event) bool { return count(evs, evMessage, "many") == 1 })
				if got := messages(evs)[0]; len(got) != tc.wantFrames {
					t.Fatalf("delivered %d frames, want %d", len(got), tc.wantFrames)
				}
				if s := srv.Stats(); s.Oversize != 0 {
					t.Errorf("Oversize = %d, want 0", s.Oversize)
				}
				return
			}
			rc.ExpectClosed(waitTimeout)
			evs := rec.waitFor(t, "Disconnected", func(evs []event) bool { return count(evs, evDisconnected, "many") == 1 })
			if r := evs[len(evs)-1].reason; !errors.Is(r, transport.ErrMessageTooLarge) || !strings.Contains(r.Error(), "frames") {
				t.Errorf("reason %v, want ErrMessageTooLarge naming the frame limit", r)
			}
			if s := srv.Stats(); s.Oversize != 1 || s.MsgsIn != 0 {
				t.Errorf("stats %+v: want Oversize 1, MsgsIn 0", s)
			}
			roundTrip(t, srv, "other")
		})
	}
}

func TestPeerThatNeverReadsIsDroppedByQueuedBytes(t *testing.T) {
	// The message count bound (default 1000) is far away: only the byte
	// bound can drop this peer before 64 MiB have been sent to it.
	const queueBytes = 1 << 20
	srv, rec := startServer(t, transport.Config{Limits: transport.Limits{SendQueueBytes: queueBytes, WriteTimeout: time.Minute}})
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	if tcp, ok := rc.C.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(64 << 10) // no receive-buffer autotuning: the socket fills sooner
	}
	rc.Handshake("DEALER", zmtptest.Str("never-reads"))
	rec.waitConnected(t, "never-reads")

	reply := make([]byte, 256<<10) // shared by every Send
	const budget = 64 << 20
	var sent int
	var err error
	for sent = 0; sent < budget; sent += len(reply) {
		if err = srv.Send("never-reads", reply); err != nil {
			break
		}
	}
	if !errors.Is(err, transport.ErrPeerDropped) {
		t.Fatalf("after %d MiB sent to a peer that never reads: Send error %v, want ErrPeerDropped", sent>>20, err)
	}
	t.Logf("dropped after %d KiB were accepted", sent>>10)
	evs := rec.waitFor(t, "Disconnected", func(evs []event) bool { return count(evs, evDisconnected, "never-reads") == 1 })
	if r := evs[len(evs)-1].reason; !errors.Is(r, transport.ErrPeerDropped) {
		t.Errorf("reason %v, want ErrPeerDropped", r)
	}
	if s := srv.Stats(); s.SlowDropped != 1 {
		t.Errorf("SlowDropped = %d, want 1", s.SlowDropped)
	}
}

func TestAPeerThatClosesDuringItsHandshakeIsAbandonedNotFailed(t *testing.T) {
	srv, _ := startServer(t, transport.Config{})
	for _, probe := range [][]byte{nil, zmtptest.Greeting(3, "NULL")[:11]} { // a TCP check; a ZMTP greeting probe
		rc := zmtptest.Dial(t, tcpAddr(t, srv))
		if probe != nil {
			rc.Write(probe)
		}
		_ = rc.C.Close()
	}
	eventually(t, "both counted", func() bool { return srv.Stats().HandshakeAbandoned == 2 })
	if s := srv.Stats(); s.HandshakeFailed != 0 {
		t.Fatalf("a probe counted as a failed handshake: %+v", s)
	}
}

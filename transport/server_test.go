package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
	"github.com/moebius-js/moebius-js/transport"
)

func TestDealerRoundTripUsesItsIdentity(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "reply")

	dealer := dialZMQ(t, zmq4.Dealer, tcpAddr(t, srv), "client-1")
	peer := rec.waitConnected(t, "client-1")
	if peer.Serial == 0 {
		t.Errorf("Peer.Serial = 0, want a serial")
	}

	sendZMQ(t, dealer, []byte("hello"))
	got := recvZMQ(t, dealer)
	if want := [][]byte{[]byte("reply"), []byte("hello")}; !eqFrames(got, want) {
		t.Fatalf("dealer received %q, want %q", got, want)
	}
	evs := rec.snapshot()
	if msgs := messages(evs); len(msgs) != 1 || !eqFrames(msgs[0], [][]byte{[]byte("hello")}) {
		t.Fatalf("handler messages %q, want [[hello]]", msgs)
	}
	// MsgsOut counts after the write returns, which can lag the client's read.
	eventually(t, "MsgsOut 1", func() bool { return srv.Stats().MsgsOut == 1 })
	if s := srv.Stats(); s.MsgsIn != 1 || s.Peers != 1 || s.Conns != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestAnonymousPeersGetGeneratedIdentities(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "reply")

	for _, identity := range []*string{nil, zmtptest.Str("")} { // no property, and an empty one
		rc := zmtptest.Dial(t, tcpAddr(t, srv))
		rc.Handshake("DEALER", identity)
		rc.Send([]byte("hi"))
		if got := rc.Recv(); !eqFrames(got, [][]byte{[]byte("reply"), []byte("hi")}) {
			t.Fatalf("anonymous peer received %q", got)
		}
	}
	evs := rec.snapshot()
	var ids []string
	for _, e := range evs {
		if e.kind == evConnected {
			ids = append(ids, e.peer.ID)
		}
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("generated ids %q: want two distinct", ids)
	}
	for _, id := range ids {
		if len(id) != 5 || id[0] != 0 {
			t.Errorf("generated id % x: want 5 bytes starting with 0x00", id)
		}
	}
}

func TestReqRoundTripStripsAndRestoresTheDelimiter(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	rec.setOnMessage(func(p transport.Peer, env transport.Envelope, frames [][]byte) {
		_, _ = srv.ReplyConn(p.ID, p.Serial, env, append([]byte("re:"), frames[0]...))
	})

	t.Run("zmq4 REQ", func(t *testing.T) {
		req := dialZMQ(t, zmq4.Req, tcpAddr(t, srv), "req-1")
		rec.waitConnected(t, "req-1")
		sendZMQ(t, req, []byte("ping"))
		if got := recvZMQ(t, req); !eqFrames(got, [][]byte{[]byte("re:ping")}) {
			t.Fatalf("REQ received %q", got)
		}
		evs := rec.waitFor(t, "message from req-1", func(evs []event) bool { return count(evs, evMessage, "req-1") == 1 })
		for _, e := range evs {
			if e.kind == evMessage && e.peer.ID == "req-1" && !eqFrames(e.frames, [][]byte{[]byte("ping")}) {
				t.Fatalf("handler got %q, want the payload without delimiter", e.frames)
			}
		}
	})

	t.Run("raw REQ sees the delimiter on the wire", func(t *testing.T) {
		rc := zmtptest.Dial(t, tcpAddr(t, srv))
		rc.Handshake("REQ", zmtptest.Str("req-2"))
		rc.Send(nil, []byte("a"))
		if got := rc.Recv(); !eqFrames(got, [][]byte{{}, []byte("re:a")}) {
			t.Fatalf("raw REQ received %q, want [\"\" re:a]", got)
		}
		// A later unenveloped message switches replies back to no delimiter.
		rc.Send([]byte("b"))
		if got := rc.Recv(); !eqFrames(got, [][]byte{[]byte("re:b")}) {
			t.Fatalf("after an unenveloped message received %q, want [re:b]", got)
		}
	})
}

func TestProbeMessageIsNotDelivered(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	rc.Handshake("REQ", zmtptest.Str("prober"))

	rc.Send(nil, []byte("req")) // enveloped
	rc.Send(nil)                // probe: a single empty frame
	rc.Send([]byte("after"))
	evs := rec.waitFor(t, "two messages", func(evs []event) bool { return count(evs, evMessage, "prober") >= 2 })
	want := [][][]byte{{[]byte("req")}, {[]byte("after")}}
	if got := messages(evs); len(got) != 2 || !eqFrames(got[0], want[0]) || !eqFrames(got[1], want[1]) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if s := srv.Stats(); s.MsgsIn != 2 {
		t.Errorf("MsgsIn = %d, want 2", s.MsgsIn)
	}
}

func TestMultipartBinaryFramesAreByteExact(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	long := make([]byte, 300) // > 255: long frame header
	for i := range long {
		long[i] = byte(i)
	}
	frames := [][]byte{{0, 0, 0}, {}, long, {0xff}, []byte("\x00tail\x00")}

	t.Run("incoming", func(t *testing.T) {
		rc := zmtptest.Dial(t, tcpAddr(t, srv))
		rc.Handshake("DEALER", zmtptest.Str("bin"))
		rc.Send(frames...)
		evs := rec.waitFor(t, "the message", func(evs []event) bool { return count(evs, evMessage, "bin") == 1 })
		// The frames up to the first empty one are the envelope.
		if e := evs[len(evs)-1]; !eqFrames(e.env, frames[:2]) || !eqFrames(e.frames, frames[2:]) {
			t.Fatalf("delivered envelope %q and payload %q\nwant %q and %q", e.env, e.frames, frames[:2], frames[2:])
		}
		if err := srv.Send("bin", frames...); err != nil {
			t.Fatal(err)
		}
		if got := rc.Recv(); !eqFrames(got, frames) {
			t.Fatalf("raw client received %q\nwant %q", got, frames)
		}
	})

	t.Run("outgoing to zmq4 DEALER", func(t *testing.T) {
		dealer := dialZMQ(t, zmq4.Dealer, tcpAddr(t, srv), "bin-dealer")
		rec.waitConnected(t, "bin-dealer")
		if err := srv.Send("bin-dealer", frames...); err != nil {
			t.Fatal(err)
		}
		if got := recvZMQ(t, dealer); !eqFrames(got, frames) {
			t.Fatalf("dealer received %q\nwant %q", got, frames)
		}
	})
}

func TestIPCEndpoint(t *testing.T) {
	dir, err := os.MkdirTemp("", "mjs") // short: unix socket paths are limited to ~108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")

	// A stale socket file, as left by a crashed server, is removed first.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()

	rec := newRecorder()
	srv, err := transport.Listen(transport.Config{Endpoints: []string{"ipc://" + path}, Logger: testLogger()}, rec)
	if err != nil {
		t.Fatalf("Listen over a stale socket file: %v", err)
	}
	if got := srv.Addrs(); len(got) != 1 || got[0] != "ipc://"+path {
		t.Errorf("Addrs = %q", got)
	}
	echo(srv, rec, "ipc")

	dealer := dialZMQ(t, zmq4.Dealer, "ipc://"+path, "ipc-client")
	sendZMQ(t, dealer, []byte("x"))
	if got := recvZMQ(t, dealer); !eqFrames(got, [][]byte{[]byte("ipc"), []byte("x")}) {
		t.Fatalf("received %q", got)
	}

	// A live server's socket is not stolen.
	if _, err := transport.Listen(transport.Config{Endpoints: []string{"ipc://" + path}, Logger: testLogger()}, newRecorder()); err == nil {
		t.Errorf("second Listen on a live ipc endpoint succeeded")
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file still there after Close: %v", err)
	}
}

func TestListenFailsWithoutLeavingEndpointsBound(t *testing.T) {
	rec := newRecorder()
	_, err := transport.Listen(transport.Config{Endpoints: []string{"tcp://127.0.0.1:0", "bogus://x"}, Logger: testLogger()}, rec)
	if err == nil {
		t.Fatal("Listen with a bad endpoint succeeded")
	}
	for _, ep := range []string{"tcp://127.0.0.1", "udp://127.0.0.1:1", "ipc://"} {
		if _, err := transport.Listen(transport.Config{Endpoints: []string{ep}, Logger: testLogger()}, rec); err == nil {
			t.Errorf("Listen(%q) succeeded", ep)
		}
	}
}

func TestDuplicateIdentity(t *testing.T) {
	t.Run("refused by default", func(t *testing.T) {
		srv, rec := startServer(t, transport.Config{})
		first := zmtptest.Dial(t, tcpAddr(t, srv))
		first.Handshake("DEALER", zmtptest.Str("dup"))
		rec.waitConnected(t, "dup")

		second := zmtptest.Dial(t, tcpAddr(t, srv))
		second.Handshake("DEALER", zmtptest.Str("dup"))
		if rest := second.ExpectClosed(waitTimeout); len(rest) != 0 {
			t.Fatalf("refused newcomer received %q", rest)
		}
		if s := srv.Stats(); s.DuplicateRefused != 1 || s.Peers != 1 {
			t.Fatalf("stats %+v: want DuplicateRefused 1, Peers 1", s)
		}
		if err := srv.Send("dup", []byte("for-first")); err != nil {
			t.Fatal(err)
		}
		if got := first.Recv(); !eqFrames(got, [][]byte{[]byte("for-first")}) {
			t.Fatalf("first client received %q", got)
		}
		if n := count(rec.snapshot(), evConnected, "dup"); n != 1 {
			t.Errorf("%d Connected events for dup, want 1", n)
		}
	})

	t.Run("handover closes the old connection", func(t *testing.T) {
		srv, rec := startServer(t, transport.Config{Handover: true})
		old := zmtptest.Dial(t, tcpAddr(t, srv))
		old.Handshake("DEALER", zmtptest.Str("dup"))
		oldPeer := rec.waitConnected(t, "dup")

		newcomer := zmtptest.Dial(t, tcpAddr(t, srv))
		newcomer.Handshake("DEALER", zmtptest.Str("dup"))
		old.ExpectClosed(waitTimeout)

		evs := rec.waitFor(t, "second Connected", func(evs []event) bool { return count(evs, evConnected, "dup") == 2 })
		var disconnectedAt, connectedAt = -1, -1
		for i, e := range evs {
			switch {
			case e.kind == evDisconnected && e.peer == oldPeer:
				disconnectedAt = i
				if !errors.Is(e.reason, transport.ErrReplaced) {
					t.Errorf("old peer's reason %v, want ErrReplaced", e.reason)
				}
			case e.kind == evConnected && e.peer.ID == "dup" && e.peer != oldPeer:
				connectedAt = i
			}
		}
		if disconnectedAt < 0 || disconnectedAt > connectedAt {
			t.Fatalf("want Disconnected(old) before Connected(new); events %v", evs)
		}
		if err := srv.Send("dup", []byte("for-newcomer")); err != nil {
			t.Fatal(err)
		}
		if got := newcomer.Recv(); !eqFrames(got, [][]byte{[]byte("for-newcomer")}) {
			t.Fatalf("newcomer received %q", got)
		}
	})
}

func TestSendErrors(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	if err := srv.Send("nobody", []byte("x")); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Errorf("Send to unknown id: %v, want ErrUnknownPeer", err)
	}
	if !errors.Is(transport.ErrPeerDropped, transport.ErrUnknownPeer) {
		t.Errorf("ErrPeerDropped does not match ErrUnknownPeer")
	}

	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	rc.Handshake("DEALER", zmtptest.Str("someone"))
	rec.waitConnected(t, "someone")
	if err := srv.Send("someone"); !errors.Is(err, transport.ErrNoFrames) {
		t.Errorf("Send without frames: %v, want ErrNoFrames", err)
	}

	if srv.Disconnect("nobody") {
		t.Errorf("Disconnect(unknown) = true")
	}
	if !srv.Disconnect("someone") {
		t.Fatalf("Disconnect(someone) = false")
	}
	evs := rec.waitFor(t, "Disconnected", func(evs []event) bool { return count(evs, evDisconnected, "someone") == 1 })
	if r := evs[len(evs)-1].reason; !errors.Is(r, transport.ErrDisconnected) {
		t.Errorf("reason %v, want ErrDisconnected", r)
	}
	rc.ExpectClosed(waitTimeout)
	if err := srv.Send("someone", []byte("x")); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Errorf("Send after Disconnected: %v, want ErrUnknownPeer", err)
	}
}

func TestCloseWaitsForEverything(t *testing.T) {
	baseline := runtime.NumGoroutine()
	rec := newRecorder()
	srv, err := transport.Listen(transport.Config{Endpoints: []string{"tcp://127.0.0.1:0", "tcp://127.0.0.1:0"}, Logger: testLogger()}, rec)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	var clients []*zmtptest.Client
	for i := range n {
		rc := zmtptest.Dial(t, srv.Addrs()[i%2])
		rc.Handshake("DEALER", nil)
		clients = append(clients, rc)
	}
	silent := zmtptest.Dial(t, srv.Addrs()[0]) // still handshaking
	rec.waitFor(t, "all connected", func(evs []event) bool { return count(evs, evConnected, "") == n })
	eventually(t, "the silent conn to be accepted", func() bool { return srv.Stats().Conns == n+1 })

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// No waiting: Close has delivered every Disconnected and reaped every peer.
	evs := rec.snapshot()
	if got := count(evs, evDisconnected, ""); got != n {
		t.Fatalf("%d Disconnected after Close, want %d", got, n)
	}
	for _, e := range evs {
		if e.kind == evDisconnected && !errors.Is(e.reason, transport.ErrServerClosed) {
			t.Errorf("reason %v, want ErrServerClosed", e.reason)
		}
	}
	if s := srv.Stats(); s.Peers != 0 || s.Conns != 0 {
		t.Errorf("after Close: %+v", s)
	}
	for _, rc := range append(clients, silent) {
		rc.ExpectClosed(waitTimeout)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := srv.Send(evs[0].peer.ID, []byte("x")); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Errorf("Send after Close: %v", err)
	}
	waitGoroutines(t, baseline) // only the exits of just-finished goroutines can lag
}

func TestShutdownFlushesQueuedMessages(t *testing.T) {
	rec := newRecorder()
	srv, err := transport.Listen(transport.Config{Endpoints: []string{"tcp://127.0.0.1:0"}, Logger: testLogger()}, rec)
	if err != nil {
		t.Fatal(err)
	}
	rc := zmtptest.Dial(t, srv.Addrs()[0])
	rc.Handshake("DEALER", zmtptest.Str("last-words"))
	rec.waitConnected(t, "last-words")
	payload := bytes.Repeat([]byte("z"), 64<<10)
	const n = 50
	for range n {
		if err := srv.Send("last-words", payload); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	for i := range n {
		if got := rc.Recv(); len(got) != 1 || !bytes.Equal(got[0], payload) {
			t.Fatalf("message %d: %d frames", i, len(got))
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return")
	}
	rc.ExpectClosed(waitTimeout)
}

func TestSendConnAndDisconnectConnMissALaterConnectionWithTheSameIdentity(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	first := zmtptest.Dial(t, tcpAddr(t, srv))
	first.Handshake("DEALER", zmtptest.Str("again"))
	old := rec.waitConnected(t, "again")
	_ = first.C.Close()
	rec.waitFor(t, "the first connection's end", func(evs []event) bool { return count(evs, evDisconnected, "again") == 1 })

	second := zmtptest.Dial(t, tcpAddr(t, srv))
	second.Handshake("DEALER", zmtptest.Str("again"))
	rec.waitFor(t, "the second connection", func(evs []event) bool { return count(evs, evConnected, "again") == 2 })
	if _, err := srv.SendConn(old.ID, old.Serial, []byte("for the first")); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("SendConn to the old connection: %v, want ErrUnknownPeer", err)
	}
	if srv.DisconnectConn(old.ID, old.Serial) {
		t.Fatal("DisconnectConn of the old connection closed the new one")
	}
	if err := srv.Send("again", []byte("for the second")); err != nil {
		t.Fatal(err)
	}
	if got := second.Recv(); string(got[0]) != "for the second" {
		t.Fatalf("the second connection got %q", got)
	}
}

func TestDisconnectWritesWhatWasSentFirst(t *testing.T) {
	// Enough to still be queued or being written when Disconnect comes:
	// 16 messages of 256 KiB (4 MiB, under the 16 MiB byte bound).
	const n = 16
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 256<<10) }
	srv, rec := startServer(t, transport.Config{})
	afterSend := make(chan error, 1)
	rec.setOnMessage(func(p transport.Peer, env transport.Envelope, frames [][]byte) {
		for i := range n {
			if _, err := srv.SendConn(p.ID, p.Serial, payload(i)); err != nil {
				afterSend <- fmt.Errorf("send %d before disconnecting: %w", i, err)
				return
			}
		}
		if !srv.DisconnectConn(p.ID, p.Serial) {
			afterSend <- errors.New("DisconnectConn found no connection")
			return
		}
		_, err := srv.SendConn(p.ID, p.Serial, []byte("too late"))
		afterSend <- err
	})

	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	rc.Handshake("DEALER", zmtptest.Str("leaving"))
	rec.waitConnected(t, "leaving")
	rc.SendText("bye?")

	for i := range n {
		if got := rc.Recv(); len(got) != 1 || !bytes.Equal(got[0], payload(i)) {
			t.Fatalf("message %d of %d: %d frames of %d bytes, want payload %d", i, n, len(got), len(got[0]), i)
		}
	}
	if rest := rc.ExpectClosed(waitTimeout); len(rest) != 0 {
		t.Fatalf("after the last message: %d more bytes before EOF (%q...)", len(rest), rest[:min(len(rest), 16)])
	}
	if err := <-afterSend; !errors.Is(err, transport.ErrUnknownPeer) || errors.Is(err, transport.ErrPeerDropped) {
		t.Errorf("Send after DisconnectConn: %v, want ErrUnknownPeer", err)
	}
	evs := rec.waitFor(t, "Disconnected", func(evs []event) bool { return count(evs, evDisconnected, "leaving") == 1 })
	if r := evs[len(evs)-1].reason; !errors.Is(r, transport.ErrDisconnected) {
		t.Errorf("reason %v, want ErrDisconnected", r)
	}
	eventually(t, "MsgsOut to count every message", func() bool { return srv.Stats().MsgsOut == n })
	if s := srv.Stats(); s.SlowDropped != 0 || s.Peers != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestDisconnectOfAPeerThatNeverReadsEndsAtTheWriteTimeout(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	srv, rec := startServer(t, transport.Config{Limits: transport.Limits{WriteTimeout: writeTimeout}})
	big := make([]byte, 16<<20) // far more than the socket buffers hold
	rec.setOnMessage(func(p transport.Peer, env transport.Envelope, frames [][]byte) {
		if string(frames[0]) == "flood" {
			_ = srv.Send(p.ID, big) // alone in the queue: accepted despite SendQueueBytes
			srv.Disconnect(p.ID)
		}
	})
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	if tcp, ok := rc.C.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(64 << 10) // no receive-buffer autotuning
	}
	rc.Handshake("DEALER", zmtptest.Str("stuck"))
	rec.waitConnected(t, "stuck")
	// "late" arrives while the server flushes: read, but not delivered.
	rc.Write(append(zmtptest.Message([]byte("flood")), zmtptest.Message([]byte("late"))...))

	evs := rec.waitFor(t, "Disconnected", func(evs []event) bool { return count(evs, evDisconnected, "stuck") == 1 })
	r := evs[len(evs)-1].reason
	if !errors.Is(r, transport.ErrDisconnected) || !errors.Is(r, os.ErrDeadlineExceeded) {
		t.Errorf("reason %v, want ErrDisconnected and the write timeout", r)
	}
	if got := messages(evs); len(got) != 1 {
		t.Errorf("delivered %q, want only the first message", got)
	}
	if got := len(rc.ExpectClosed(waitTimeout)); got >= len(big) {
		t.Errorf("received all %d bytes of a message that could not be written in time", got)
	}
}

func TestPeersListsRegisteredPeersWithTheirAddresses(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	a := dialZMQ(t, zmq4.Dealer, tcpAddr(t, srv), "a")
	defer a.Close()
	rec.waitConnected(t, "a")
	peers := srv.Peers()
	if len(peers) != 1 {
		t.Fatalf("%d peers, want 1", len(peers))
	}
	p := peers[0]
	if p.ID != "a" || p.Serial == 0 || !strings.HasPrefix(p.Remote, "127.0.0.1:") || p.Endpoint != tcpAddr(t, srv) || p.ClientKey != nil {
		t.Fatalf("got %+v", p)
	}
}

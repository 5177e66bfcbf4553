package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/transport"
)

// waitTimeout bounds every wait for an event in these tests.
const waitTimeout = 10 * time.Second

// ---- a Handler that records events ----

type eventKind int

const (
	evConnected eventKind = iota
	evMessage
	evDisconnected
)

func (k eventKind) String() string {
	return [...]string{"Connected", "Message", "Disconnected"}[k]
}

type event struct {
	kind   eventKind
	peer   transport.Peer
	env    transport.Envelope
	frames [][]byte
	reason error
}

func (e event) String() string {
	return fmt.Sprintf("%v(%q/%d %q %v)", e.kind, e.peer.ID, e.peer.Serial, e.frames, e.reason)
}

// recorder is a transport.Handler that records every event and lets tests
// wait for a condition on them. onMessage, if set, runs on the reader
// goroutine after the event is recorded (e.g. to reply).
type recorder struct {
	mu        sync.Mutex
	events    []event
	changed   chan struct{} // closed and replaced on every event
	onMessage func(p transport.Peer, env transport.Envelope, frames [][]byte)
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(e event) func(transport.Peer, transport.Envelope, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	return r.onMessage
}

func (r *recorder) Connected(p transport.Peer) { r.add(event{kind: evConnected, peer: p}) }
func (r *recorder) Disconnected(p transport.Peer, reason error) {
	r.add(event{kind: evDisconnected, peer: p, reason: reason})
}
func (r *recorder) Message(p transport.Peer, env transport.Envelope, frames [][]byte, hold flow.Hold) {
	hold.Release()
	if f := r.add(event{kind: evMessage, peer: p, env: env, frames: frames}); f != nil {
		f(p, env, frames)
	}
}

// setOnMessage installs a reply function. Call it before clients connect.
func (r *recorder) setOnMessage(f func(p transport.Peer, env transport.Envelope, frames [][]byte)) {
	r.mu.Lock()
	r.onMessage = f
	r.mu.Unlock()
}

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// waitFor waits until cond holds on the events so far and returns them.
func (r *recorder) waitFor(t testing.TB, what string, cond func([]event) bool) []event {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		evs := append([]event(nil), r.events...)
		ch := r.changed
		r.mu.Unlock()
		if cond(evs) {
			return evs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; events: %v", what, tail(evs, 20))
		}
	}
}

func tail(evs []event, n int) []event {
	if len(evs) > n {
		return evs[len(evs)-n:]
	}
	return evs
}

func count(evs []event, kind eventKind, id string) int {
	n := 0
	for _, e := range evs {
		if e.kind == kind && (id == "" || e.peer.ID == id) {
			n++
		}
	}
	return n
}

// waitConnected waits for the Connected of the peer with identity id.
func (r *recorder) waitConnected(t testing.TB, id string) transport.Peer {
	t.Helper()
	evs := r.waitFor(t, "Connected "+id, func(evs []event) bool { return count(evs, evConnected, id) > 0 })
	for _, e := range evs {
		if e.kind == evConnected && e.peer.ID == id {
			return e.peer
		}
	}
	panic("unreachable")
}

// messages returns the frames of every Message event, in order.
func messages(evs []event) [][][]byte {
	var out [][][]byte
	for _, e := range evs {
		if e.kind == evMessage {
			out = append(out, e.frames)
		}
	}
	return out
}

// ---- servers ----

func testLogger() *slog.Logger {
	if os.Getenv("TRANSPORT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startServer listens on a free loopback port (unless cfg names endpoints)
// and closes the server when the test ends.
func startServer(t testing.TB, cfg transport.Config) (*transport.Server, *recorder) {
	t.Helper()
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{"tcp://127.0.0.1:0"}
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	rec := newRecorder()
	srv, err := transport.Listen(cfg, rec)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv, rec
}

// echo makes rec reply to every message with prefix + the same frames.
func echo(srv *transport.Server, rec *recorder, prefix string) {
	rec.setOnMessage(func(p transport.Peer, env transport.Envelope, frames [][]byte) {
		out := append([][]byte{[]byte(prefix)}, frames...)
		_, _ = srv.ReplyConn(p.ID, p.Serial, env, out...)
	})
}

func tcpAddr(t testing.TB, srv *transport.Server) string {
	t.Helper()
	a := srv.Addrs()[0]
	if !strings.HasPrefix(a, "tcp://") {
		t.Fatalf("first endpoint %q is not tcp", a)
	}
	return a
}

// eventually polls cond until it holds or the deadline passes. For states
// that no event announces (goroutine counts, gauges).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGoroutines waits until no more than baseline goroutines run.
func waitGoroutines(t testing.TB, baseline int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- zmq4 clients (libzmq-compatible) ----

func dialZMQ(t testing.TB, kind zmq4.SocketType, endpoint, id string) zmq4.Socket {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := []zmq4.Option{zmq4.WithLogger(log.New(io.Discard, "", 0))}
	if id != "" {
		opts = append(opts, zmq4.WithID(zmq4.SocketIdentity(id)))
	}
	var sck zmq4.Socket
	switch kind {
	case zmq4.Dealer:
		sck = zmq4.NewDealer(ctx, opts...)
	case zmq4.Req:
		sck = zmq4.NewReq(ctx, opts...)
	default:
		t.Fatalf("dialZMQ: unsupported kind %s", kind)
	}
	if err := sck.Dial(endpoint); err != nil {
		cancel()
		t.Fatalf("%s dial %s: %v", kind, endpoint, err)
	}
	t.Cleanup(func() {
		_ = sck.Close()
		cancel()
	})
	return sck
}

// recvZMQ receives one message with a timeout (zmq4's Recv has none).
func recvZMQ(t testing.TB, sck zmq4.Socket) [][]byte {
	t.Helper()
	type result struct {
		msg zmq4.Msg
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := sck.Recv()
		ch <- result{m, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("recv: %v", r.err)
		}
		return r.msg.Frames
	case <-time.After(waitTimeout):
		t.Fatalf("recv: timed out")
		return nil
	}
}

func sendZMQ(t testing.TB, sck zmq4.Socket, frames ...[]byte) {
	t.Helper()
	if err := sck.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// eqFrames reports whether two messages are byte-identical.
func eqFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

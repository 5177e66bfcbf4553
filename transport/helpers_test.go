package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

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
	frames [][]byte
	reason error
}

func (e event) String() string {
	return fmt.Sprintf("%v(%q/%d %q %v)", e.kind, e.peer.ID, e.peer.Conn, e.frames, e.reason)
}

// recorder is a transport.Handler that records every event and lets tests
// wait for a condition on them. onMessage, if set, runs on the reader
// goroutine after the event is recorded (e.g. to reply).
type recorder struct {
	mu        sync.Mutex
	events    []event
	changed   chan struct{} // closed and replaced on every event
	onMessage func(p transport.Peer, frames [][]byte)
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(e event) func(transport.Peer, [][]byte) {
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
func (r *recorder) Message(p transport.Peer, frames [][]byte) {
	if f := r.add(event{kind: evMessage, peer: p, frames: frames}); f != nil {
		f(p, frames)
	}
}

// setOnMessage installs a reply function. Call it before clients connect.
func (r *recorder) setOnMessage(f func(p transport.Peer, frames [][]byte)) {
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
	rec.setOnMessage(func(p transport.Peer, frames [][]byte) {
		out := append([][]byte{[]byte(prefix)}, frames...)
		_ = srv.Send(p.ID, out...)
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

// ---- raw ZMTP by hand, for hostile peers ----

// greeting returns a ZMTP greeting: signature, version, mechanism,
// as-server 0, filler.
func greeting(major byte, mechanism string) []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xff, 0x7f, major, 0
	copy(g[12:32], mechanism)
	return g
}

// property encodes one metadata property.
func property(name, value string) []byte {
	b := []byte{byte(len(name))}
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// command encodes a command frame: name-length, name, data.
func command(name string, data []byte) []byte {
	body := append([]byte{byte(len(name))}, name...)
	return frame(0x04, append(body, data...))
}

// ready encodes a READY command for a socket type and optional identity.
func ready(socketType string, identity *string) []byte {
	md := property("Socket-Type", socketType)
	if identity != nil {
		md = append(md, property("Identity", *identity)...)
	}
	return command("READY", md)
}

// frame encodes one frame with the given flags (LONG added when needed).
func frame(flags byte, body []byte) []byte {
	if len(body) > 255 {
		h := []byte{flags | 0x02}
		h = binary.BigEndian.AppendUint64(h, uint64(len(body)))
		return append(h, body...)
	}
	return append([]byte{flags, byte(len(body))}, body...)
}

// message encodes a multipart message.
func message(frames ...[]byte) []byte {
	var b []byte
	for i, f := range frames {
		var flags byte
		if i < len(frames)-1 {
			flags = 0x01
		}
		b = append(b, frame(flags, f)...)
	}
	return b
}

func strp(s string) *string { return &s }

type rawClient struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, endpoint string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, c: c, r: bufio.NewReader(c)}
}

// handshake completes a valid handshake as socketType with identity (nil:
// none sent), reading the server's greeting and READY.
func (rc *rawClient) handshake(socketType string, identity *string) {
	rc.t.Helper()
	rc.write(append(greeting(3, "NULL"), ready(socketType, identity)...))
	rc.readServerHello()
}

// readServerHello reads the server's greeting and READY command.
func (rc *rawClient) readServerHello() {
	rc.t.Helper()
	g := make([]byte, 64)
	rc.deadline()
	if _, err := io.ReadFull(rc.r, g); err != nil {
		rc.t.Fatalf("read server greeting: %v", err)
	}
	if g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || string(bytes.TrimRight(g[12:32], "\x00")) != "NULL" {
		rc.t.Fatalf("bad server greeting % x", g)
	}
	frames, isCmd, err := rc.readMessage()
	if err != nil || !isCmd || !bytes.HasPrefix(frames[0], []byte("\x05READY")) {
		rc.t.Fatalf("server READY: %q cmd=%v err=%v", frames, isCmd, err)
	}
	if !bytes.Contains(frames[0], property("Socket-Type", "ROUTER")) {
		rc.t.Fatalf("server READY lacks Socket-Type=ROUTER: %q", frames[0])
	}
}

func (rc *rawClient) deadline() { _ = rc.c.SetDeadline(time.Now().Add(waitTimeout)) }

func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	rc.deadline()
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

func (rc *rawClient) send(frames ...[]byte) { rc.t.Helper(); rc.write(message(frames...)) }

// readMessage reads one message (or command) from the server.
func (rc *rawClient) readMessage() (frames [][]byte, isCmd bool, err error) {
	rc.deadline()
	for {
		flags, err := rc.r.ReadByte()
		if err != nil {
			return nil, false, err
		}
		var size uint64
		if flags&0x02 != 0 {
			var b [8]byte
			if _, err := io.ReadFull(rc.r, b[:]); err != nil {
				return nil, false, err
			}
			size = binary.BigEndian.Uint64(b[:])
		} else {
			b, err := rc.r.ReadByte()
			if err != nil {
				return nil, false, err
			}
			size = uint64(b)
		}
		if size > 64<<20 {
			return nil, false, fmt.Errorf("server sent a %d-byte frame", size)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(rc.r, body); err != nil {
			return nil, false, err
		}
		frames = append(frames, body)
		isCmd = isCmd || flags&0x04 != 0
		if flags&0x01 == 0 {
			return frames, isCmd, nil
		}
	}
}

func (rc *rawClient) recv() [][]byte {
	rc.t.Helper()
	frames, isCmd, err := rc.readMessage()
	if err != nil || isCmd {
		rc.t.Fatalf("recv: %q cmd=%v err=%v", frames, isCmd, err)
	}
	return frames
}

// expectClosed reads until the server closes the connection, failing if
// that takes longer than within, and returns every byte received first.
func (rc *rawClient) expectClosed(within time.Duration) []byte {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(within))
	data, err := io.ReadAll(rc.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		rc.t.Fatalf("connection still open after %v (received %d bytes)", within, len(data))
	}
	return data // EOF (nil) or a reset: closed either way
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

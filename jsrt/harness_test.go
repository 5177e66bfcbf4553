package jsrt_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/waitfor"
	"github.com/moebius-js/moebius-js/jsrt"
)

// fakeSender stands in for the transport: it records every message sent to
// each peer and lets tests wait for them.
type fakeSender struct {
	mu      sync.Mutex
	cond    *sync.Cond
	peers   map[string]bool
	sent    map[string][][][]byte
	closed  []string
	backlog map[string]bool
	notify  map[string][]func()
}

func newFakeSender() *fakeSender {
	s := &fakeSender{peers: map[string]bool{}, sent: map[string][][][]byte{}, backlog: map[string]bool{}, notify: map[string][]func(){}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *fakeSender) SendConn(id string, conn uint64, frames ...[]byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.peers[id] {
		return false, errors.New("unknown peer")
	}
	s.sent[id] = append(s.sent[id], frames)
	s.cond.Broadcast()
	return s.backlog[id], nil
}

// ReplyConn records the message with its envelope in front, as the
// transport writes it.
func (s *fakeSender) ReplyConn(id string, conn uint64, env [][]byte, frames ...[]byte) (bool, error) {
	return s.SendConn(id, conn, append(append([][]byte{}, env...), frames...)...)
}

func (s *fakeSender) Broadcast(frame []byte, to []jsrt.Target) int {
	n := 0
	for _, t := range to {
		s.mu.Lock()
		skip := s.backlog[t.ID]
		s.mu.Unlock()
		if skip {
			continue
		}
		if _, err := s.SendConn(t.ID, t.Serial, frame); err == nil {
			n++
		}
	}
	return n
}

func (s *fakeSender) WhenWritable(id string, conn uint64, fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.backlog[id] {
		return false
	}
	s.notify[id] = append(s.notify[id], fn)
	return true
}

// setBacklogged makes id's queue backlogged (SendConn reports it and
// broadcasts skip it) or, with false, writable again, calling whoever
// waits for that.
func (s *fakeSender) setBacklogged(id string, backlogged bool) {
	s.mu.Lock()
	s.backlog[id] = backlogged
	var fire []func()
	if !backlogged {
		fire = s.notify[id]
		delete(s.notify, id)
	}
	s.mu.Unlock()
	for _, fn := range fire {
		fn()
	}
}

func (s *fakeSender) DisconnectConn(id string, conn uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = append(s.closed, id)
	s.cond.Broadcast()
	return s.peers[id]
}

// waitFor blocks until cond (checked under the lock) holds, or fails the
// test after the timeout.
func (s *fakeSender) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !waitfor.Cond(&s.mu, s.cond, timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s; sent so far: %s", timeout, what, s.dumpLocked())
	}
}

func (s *fakeSender) dumpLocked() string {
	var b strings.Builder
	for id, msgs := range s.sent {
		fmt.Fprintf(&b, "\n  %q:", id)
		for _, m := range msgs {
			fmt.Fprintf(&b, " %q", m)
		}
	}
	return b.String()
}

// messages returns a copy of what id has received.
func (s *fakeSender) messages(id string) [][][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][][]byte(nil), s.sent[id]...)
}

// env is a Host on a handlers file written by the test, with a fake sender
// and the log captured. Its clients' messages reserve room on an inbound
// account as the transport's do (queueLimit messages each), so that tests
// see when the Host releases them.
type env struct {
	t          *testing.T
	dir        string
	file       string
	host       *jsrt.Host
	out        *fakeSender
	logs       *syncBuffer
	conn       map[string]uint64
	budget     *flow.Budget
	queueLimit int
	accts      map[string]*flow.Account
}

// syncBuffer is a log destination tests can wait on.
type syncBuffer struct {
	mu   sync.Mutex
	cond *sync.Cond
	b    bytes.Buffer
}

func newSyncBuffer() *syncBuffer {
	s := &syncBuffer{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cond.Broadcast()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// files maps a file name to its source; "handlers.js" (or, without one,
// "handlers.ts") is the main one.
func start(t *testing.T, cfg jsrt.Config, files map[string]string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), out: newFakeSender(), logs: newSyncBuffer(), conn: map[string]uint64{},
		budget: flow.NewBudget(0, nil), queueLimit: cfg.QueueLimit, accts: map[string]*flow.Account{}}
	for name, src := range files {
		e.write(name, src)
	}
	e.file = filepath.Join(e.dir, "handlers.js")
	if _, js := files["handlers.js"]; !js && files["handlers.ts"] != "" {
		e.file = filepath.Join(e.dir, "handlers.ts")
	}
	cfg.Handlers = e.file
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := jsrt.New(cfg)
	if err != nil {
		t.Fatalf("load handlers: %v", err)
	}
	e.host = h
	h.Start(e.out)
	t.Cleanup(func() { h.Shutdown(0) })
	return e
}

func (e *env) write(name, src string) {
	e.t.Helper()
	path := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

var connSerial uint64

// connect makes a client with identity id known to the host and sender.
func (e *env) connect(id string) { e.connectWithKey(id, "") }

// connectWithKey connects a client that proved CURVE public key key ("":
// a NULL connection).
func (e *env) connectWithKey(id, key string) {
	e.out.mu.Lock()
	e.out.peers[id] = true
	e.out.mu.Unlock()
	connSerial++
	e.conn[id] = connSerial
	e.accts[id] = e.budget.Open(e.queueLimit)
	e.host.Connected(id, connSerial, key)
}

func (e *env) disconnect(id string) {
	e.out.mu.Lock()
	delete(e.out.peers, id)
	e.out.mu.Unlock()
	e.host.Disconnected(id, e.conn[id])
}

// send delivers a one-frame (or multi-frame) message from id, waiting (as
// the transport's reader would) while id's account is out of room.
func (e *env) send(id string, frames ...string) {
	raw, n := rawFrames(frames)
	if err := e.accts[id].Reserve(n, true); err != nil {
		e.t.Fatal(err)
	}
	e.host.Message(id, e.conn[id], nil, raw, flow.NewHold(e.accts[id], n))
}

// sendUnheld delivers a message that holds no room (a source that cannot
// pause).
func (e *env) sendUnheld(id string, frames ...string) {
	raw, _ := rawFrames(frames)
	e.host.Message(id, e.conn[id], nil, raw, flow.Hold{})
}

// trySend is send that reports false, delivering nothing, when id's
// account is out of room.
func (e *env) trySend(id string, frames ...string) bool {
	raw, n := rawFrames(frames)
	if !e.accts[id].TryReserve(n, true) {
		return false
	}
	e.host.Message(id, e.conn[id], nil, raw, flow.NewHold(e.accts[id], n))
	return true
}

// held returns how many messages of id the Host has not yet released.
func (e *env) held(id string) int {
	_, n := e.accts[id].Held()
	return n
}

func rawFrames(frames []string) (raw [][]byte, size int64) {
	raw = make([][]byte, len(frames))
	for i, f := range frames {
		raw[i] = []byte(f)
		size += int64(len(f))
	}
	return raw, size
}

// replies waits until id has received n messages and returns their first
// frames as text.
func (e *env) replies(id string, n int) []string {
	e.t.Helper()
	e.out.waitFor(e.t, 5*time.Second, fmt.Sprintf("%d replies to %q", n, id), func() bool {
		return len(e.out.sent[id]) >= n
	})
	var out []string
	for _, m := range e.out.messages(id) {
		out = append(out, string(m[0]))
	}
	return out
}

// reply waits for id's n-th message (1-based) and returns its first frame.
func (e *env) reply(id string, n int) string {
	e.t.Helper()
	return e.replies(id, n)[n-1]
}

// waitLog waits until the log contains s.
func (e *env) waitLog(s string) {
	e.t.Helper()
	l := e.logs
	l.mu.Lock()
	defer l.mu.Unlock()
	if !waitfor.Cond(&l.mu, l.cond, 5*time.Second, func() bool { return strings.Contains(l.b.String(), s) }) {
		e.t.Fatalf("log never contained %q; log:\n%s", s, l.b.String())
	}
}

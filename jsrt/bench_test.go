package jsrt_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/jsrt"
)

// countingSender counts replies and signals each on a channel.
type countingSender struct {
	n       atomic.Int64
	replies chan struct{}
}

func (s *countingSender) SendConn(string, uint64, ...[]byte) (bool, error) {
	s.n.Add(1)
	s.replies <- struct{}{}
	return false, nil
}
func (s *countingSender) ReplyConn(id string, conn uint64, _ [][]byte, frames ...[]byte) (bool, error) {
	return s.SendConn(id, conn, frames...)
}
func (s *countingSender) Broadcast([]byte, []jsrt.Target) int      { return 0 }
func (s *countingSender) WhenWritable(string, uint64, func()) bool { return false }
func (s *countingSender) DisconnectConn(string, uint64) bool       { return true }

const benchHandlers = `
module.exports = { rules: [
  { command: 'reply', handler: (c) => c.send('Reply to ' + c.id) },
  { command: 'gen', handler: function* (c, d) { yield; c.send({ n: d.n }); } },
  { command: 'yield-once', handler: function* (c) { yield; c.send('Reply to ' + c.id); } },
  { command: 'object', handler: (c) => c.send({ reply: 'Reply to ' + c.id }) },
  { command: 'string', handler: (c) => c.send(JSON.stringify({ reply: 'Reply to ' + c.id })) },
]};
`

func startBench(b testing.TB) (*jsrt.Host, *countingSender) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "handlers.js")
	if err := os.WriteFile(path, []byte(benchHandlers), 0o644); err != nil {
		b.Fatal(err)
	}
	h, err := jsrt.New(jsrt.Config{Handlers: path, QueueLimit: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	out := &countingSender{replies: make(chan struct{}, 1<<16)}
	h.Start(out)
	b.Cleanup(func() { h.Shutdown(0) })
	h.Connected("client", 1, "")
	return h, out
}

// BenchmarkRequestRoundTrip is one request at a time through the worker:
// post, route (JSON), run the handler, send; the time includes waking the
// scheduler goroutine for each request.
func BenchmarkRequestRoundTrip(b *testing.B) {
	for _, tc := range []struct{ name, payload string }{
		{"plain", `{"command":"reply"}`},
		{"generator", `{"command":"gen","n":1}`},
		{"generator-yield-once", `{"command":"yield-once"}`},
		{"send-object", `{"command":"object"}`},
		{"send-built-string", `{"command":"string"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h, out := startBench(b)
			payload := []byte(tc.payload)
			b.ReportAllocs()
			for b.Loop() {
				h.Message("client", 1, nil, [][]byte{payload}, flow.Hold{})
				<-out.replies
			}
		})
	}
}

// BenchmarkRequestPipelined posts requests as fast as they come, so the
// scheduler handles them in batches: the cost per request without wake-ups.
func BenchmarkRequestPipelined(b *testing.B) {
	h, out := startBench(b)
	payload := []byte(`{"command":"reply"}`)
	b.ReportAllocs()
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			<-out.replies
		}
		close(done)
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Message("client", 1, nil, [][]byte{payload}, flow.Hold{})
	}
	<-done
}

// TestAllocationsPerRequestStayAtTheirLevel holds the allocations of one
// request through a worker (post, route, handler, send) at what they are
// now: counts are exact where timings are not. A plain handler that takes
// only the client never has its JSON built into objects.
func TestAllocationsPerRequestStayAtTheirLevel(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		most          float64
	}{
		{"plain handler of the client alone", `{"command":"reply"}`, 11},
		{"generator that yields once and sends an object", `{"command":"gen","n":1}`, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, out := startBench(t)
			payload := [][]byte{[]byte(tc.payload)}
			got := testing.AllocsPerRun(2000, func() {
				h.Message("client", 1, nil, payload, flow.Hold{})
				<-out.replies
			})
			t.Logf("%.1f allocations per request", got)
			if got > tc.most {
				t.Fatalf("%.1f allocations per request, want at most %v", got, tc.most)
			}
		})
	}
}

// BenchmarkSleepingHandlerMemory parks b.N generator handlers in a sleep,
// one per client, and reports the heap each holds (its client's
// JavaScript object included): what a server with many clients waiting
// in a handler pays beyond their connections.
func BenchmarkSleepingHandlerMemory(b *testing.B) {
	path := filepath.Join(b.TempDir(), "handlers.js")
	src := `const { sleep } = require('moebius');
module.exports = { rules: [{ command: 'sleep', handler: function* (c) { yield sleep(3600000); c.send('x'); } }] };`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	h, err := jsrt.New(jsrt.Config{Handlers: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	h.Start(&countingSender{replies: make(chan struct{}, 1)})
	defer h.Shutdown(0)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("client-%d", i)
		h.Connected(ids[i], uint64(i+1), "")
	}
	started := func() uint64 { return h.Stats()[0].Started.Load() }
	payload := []byte(`{"command":"sleep"}`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i, id := range ids {
		h.Message(id, uint64(i+1), nil, [][]byte{payload}, flow.Hold{})
	}
	for started() < uint64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "B/sleeper")
}

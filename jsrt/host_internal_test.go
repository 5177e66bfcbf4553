package jsrt

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A worker that was retired and whose stuck call then returned has both
// its retired and its done channels closed: a reload waiting on it must
// load on its successor, never report that the server is shutting down
// (a select over both picked either, and failed about half the reloads).
func TestAReloadWaitingOnARetiredWorkerWhoseGoroutineEndedGoesToItsSuccessor(t *testing.T) {
	w := &worker{retired: make(chan struct{}), done: make(chan struct{})}
	close(w.retired)
	close(w.done)
	for i := 0; i < 200; i++ {
		if _, retired, stopped := awaitLoad(make(chan loadResult), w); !retired || stopped {
			t.Fatalf("try %d: retired %v, stopped %v; want the load sent to the successor", i, retired, stopped)
		}
	}
	stopped := &worker{retired: make(chan struct{}), done: make(chan struct{})}
	close(stopped.done)
	if _, retired, isStopped := awaitLoad(make(chan loadResult), stopped); retired || !isStopped {
		t.Fatalf("a worker stopped for shutdown: retired %v, stopped %v", retired, isStopped)
	}
}

// A stuck call that returns while the successor is loading leaves its
// worker recovered: the retirement must decline (before, it went ahead and
// answered that worker's parked requests with runaway_handler, and left
// whatever the worker ran next unwatched).
func TestARetirementDeclinesWhenTheStuckCallHasReturned(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "handlers.js")
	if err := os.WriteFile(file, []byte(`module.exports = { rules: [{ command: 'ping', handler: (c) => c.send('pong') }] };`), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Handlers: file, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.Start(nopSender{})
	defer h.Shutdown(0)
	w := h.slots[0].current()
	if h.retire(w, "someone", time.Second, 1) { // call 1 is not running: the worker is idle
		t.Fatal("retired a worker whose call had returned")
	}
	if h.slots[0].current() != w || h.retired.Load() != 0 {
		t.Fatal("the slot changed hands")
	}
}

type nopSender struct{}

func (nopSender) SendConn(string, uint64, ...[]byte) (bool, error)            { return false, nil }
func (nopSender) ReplyConn(string, uint64, [][]byte, ...[]byte) (bool, error) { return false, nil }
func (nopSender) Broadcast([]byte, []Target) int                              { return 0 }
func (nopSender) WhenWritable(string, uint64, func()) bool                    { return false }
func (nopSender) DisconnectConn(string, uint64) bool                          { return false }

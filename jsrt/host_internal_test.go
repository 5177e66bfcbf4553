package jsrt

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/flow"
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
	h := newPingHost(t)
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

// recordingSender keeps the replies it is given.
type recordingSender struct {
	nopSender
	mu      sync.Mutex
	replies []string
}

func (s *recordingSender) ReplyConn(id string, _ uint64, _ [][]byte, frames ...[]byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies = append(s.replies, id+": "+string(frames[0]))
	return false, nil
}

// A message posted while its worker's scheduler stops (after the last turn
// took its inbox, before Stop dropped what was left) never runs; Shutdown
// still gives its room back and tells its client the server is shutting
// down.
func TestAMessageThatArrivesAsTheWorkerStopsIsAnsweredAndReleased(t *testing.T) {
	h := newPingHost(t)
	out := &recordingSender{}
	h.Start(out)
	h.Connected("late", 1, "")
	acct := flow.NewBudget(0, nil).Open(10)
	payload := []byte(`{"command":"ping"}`)
	if err := acct.Reserve(int64(len(payload)), true); err != nil {
		t.Fatal(err)
	}
	w := h.slots[0].current()
	stopped := make(chan struct{})
	w.sched.Post(func() { // within a turn: the message lands in the next inbox, which Stop drops
		h.Message("late", 1, nil, [][]byte{payload}, flow.NewHold(acct, int64(len(payload))))
		w.sched.Stop()
		close(stopped)
	})
	<-stopped
	<-w.done
	h.Shutdown(0)
	if _, n := acct.Held(); n != 0 {
		t.Fatalf("the late message still holds its room (%d messages)", n)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.replies) != 1 || !strings.Contains(out.replies[0], `"shutting_down"`) {
		t.Fatalf("replies %q, want one shutting_down", out.replies)
	}
}

// newPingHost is a Host with one worker serving a ping rule, not started.
func newPingHost(t *testing.T) *Host {
	t.Helper()
	file := filepath.Join(t.TempDir(), "handlers.js")
	if err := os.WriteFile(file, []byte(`module.exports = { rules: [{ command: 'ping', handler: (c) => c.send('pong') }] };`), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Handlers: file, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// countingCluster counts open subscriptions and what went across.
type countingCluster struct {
	subs, sent int
}

func (c *countingCluster) Broadcast([]byte) error       { c.sent++; return nil }
func (c *countingCluster) Send(string, [][]byte) error  { c.sent++; return nil }
func (c *countingCluster) Publish(string, []byte) error { c.sent++; return nil }
func (c *countingCluster) Subscribe(string, func(string, []byte)) (func(), error) {
	c.subs++
	return func() { c.subs-- }, nil
}

func TestARetiredWorkersClusterReachesNoOneAndItsSubscriptionsEnd(t *testing.T) {
	c := &countingCluster{}
	g := &gate{}
	gc := newGatedCluster(c, g)
	unsubscribe, _ := gc.Subscribe("a", nil)
	_, _ = gc.Subscribe("b", nil)
	unsubscribe()
	unsubscribe() // twice: once
	if err := gc.Publish("a", nil); err != nil || c.subs != 1 || c.sent != 1 {
		t.Fatalf("before retirement: %v, %d subscriptions, %d sent", err, c.subs, c.sent)
	}
	g.close()
	gc.closeAll()
	if c.subs != 0 {
		t.Fatalf("%d subscriptions left open after retirement", c.subs)
	}
	for name, err := range map[string]error{
		"broadcast": gc.Broadcast(nil), "send": gc.Send("x", nil), "publish": gc.Publish("a", nil),
	} {
		if !errors.Is(err, errRetired) {
			t.Errorf("%s after retirement: %v, want errRetired", name, err)
		}
	}
	if _, err := gc.Subscribe("c", nil); !errors.Is(err, errRetired) || c.subs != 0 || c.sent != 1 {
		t.Fatalf("after retirement: subscribe %v, %d subscriptions, %d sent", err, c.subs, c.sent)
	}
}

package jsrt

import "testing"

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

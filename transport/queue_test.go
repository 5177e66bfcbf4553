package transport

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
)

// queueStep is one step of TestSendQueue: a push of a message with frames
// of the given body sizes, or (take) the writer taking the queue and
// writing all of it.
type queueStep struct {
	frames     []int
	take       bool
	want       queueResult // for a push
	backlogged bool        // after the step
}

func push(want queueResult, sizes ...int) queueStep { return queueStep{frames: sizes, want: want} }

// then sets what isBacklogged reports after the step.
func (st queueStep) then(backlogged bool) queueStep { st.backlogged = backlogged; return st }

var take = queueStep{take: true}

// cost returns what a message of those frame sizes weighs.
func cost(sizes ...int) int64 {
	n := int64(msgOverhead)
	for _, s := range sizes {
		n += int64(s) + frameOverhead
	}
	return n
}

// TestSendQueue drives a sendQueue without a writer, so that it holds
// exactly what the steps put there and only take empties it.
func TestSendQueue(t *testing.T) {
	const mib = 1 << 20
	// A message of m body bytes costs 116: round numbers below.
	m := 116 - msgOverhead - frameOverhead
	cases := []struct {
		name  string
		lim   Limits
		steps []queueStep
	}{
		{"a push past the byte bound is refused", Limits{SendQueueBytes: 300}, []queueStep{
			push(queued, m), push(queued, m), push(queueFull, m),
		}},
		{"exactly the byte bound is accepted", Limits{SendQueueBytes: 232}, []queueStep{
			push(queued, m), push(queued, m), push(queueFull, 0),
		}},
		{"every frame of a message counts", Limits{SendQueueBytes: int64(cost(10, 10) + cost(10))}, []queueStep{
			push(queued, 10, 10), push(queued, 10), push(queueFull, 0),
		}},
		{"a message over the byte bound is accepted on an empty queue", Limits{SendQueueBytes: 100}, []queueStep{
			push(queued, 1000).then(false), push(queueFull, 1),
		}},
		{"bytes the writer wrote no longer count", Limits{SendQueueBytes: 232}, []queueStep{
			push(queued, m), push(queued, m), take, push(queued, m), push(queued, m), push(queueFull, m),
		}},
		{"the message count alone never refuses", Limits{SendHWM: 10_000, SendQueueBytes: mib}, repeatStep(push(queued, 0), 5000)},
		{"past the message high-water mark it is backlogged", Limits{SendHWM: 2, SendQueueBytes: mib}, []queueStep{
			push(queued, 1), push(queued, 1).then(false), push(queuedFull, 1).then(true), push(queuedFull, 1).then(true),
		}},
		{"past the byte high-water mark it is backlogged", Limits{SendHWMBytes: 200, SendQueueBytes: mib}, []queueStep{
			push(queued, m).then(false), push(queuedFull, m).then(true),
		}},
		{"written down to the low-water mark it is writable again", Limits{SendHWM: 2, SendQueueBytes: mib}, []queueStep{
			push(queued, 1), push(queued, 1), push(queuedFull, 1), take.then(false), push(queued, 1).then(false),
		}},
		{"the default byte bound is 16 MiB", Limits{}, []queueStep{
			push(queuedFull, 8*mib-100), push(queuedFull, 8*mib-100), push(queueFull, 10).then(true),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim.withDefaults()
			var total atomic.Int64
			q := newSendQueue(&lim, &total, nil)
			for i, st := range tc.steps {
				if st.take {
					batch, _ := q.take()
					q.done(batch)
					q.finish(batch)
				} else {
					frames := make([][]byte, len(st.frames))
					for j, n := range st.frames {
						frames[j] = make([]byte, n)
					}
					if got := q.push(outMsg{frames: frames}); got != st.want {
						t.Fatalf("step %d: push of %v bytes = %v, want %v", i, st.frames, got, st.want)
					}
				}
				if got := q.isBacklogged(); got != st.backlogged && (st.take || st.backlogged || i == len(tc.steps)-1) {
					t.Fatalf("step %d: backlogged = %v, want %v", i, got, st.backlogged)
				}
				if total.Load() != q.heldBytes() {
					t.Fatalf("step %d: server-wide bytes %d, the queue holds %d", i, total.Load(), q.heldBytes())
				}
			}
		})
	}
}

func TestWhenWritableFiresOnceAtTheLowWaterMarkOrAtClose(t *testing.T) {
	lim := Limits{SendHWM: 2}.withDefaults()
	q := newSendQueue(&lim, nil, nil)
	if q.whenWritable(func() {}) {
		t.Fatal("a queue below its high-water mark arranged a notification")
	}
	for i := 0; i < 3; i++ {
		q.push(outMsg{frames: [][]byte{{1}}})
	}
	fired := 0
	if !q.whenWritable(func() { fired++ }) {
		t.Fatal("a backlogged queue did not arrange a notification")
	}
	batch, _ := q.take()
	q.done(batch[:1]) // 2 held: above the low-water mark of 1
	if fired != 0 {
		t.Fatal("fired above the low-water mark")
	}
	q.done(batch[1:])
	q.finish(batch)
	if fired != 1 {
		t.Fatalf("fired %d times at the low-water mark, want 1", fired)
	}
	for i := 0; i < 3; i++ {
		q.push(outMsg{frames: [][]byte{{1}}})
	}
	q.whenWritable(func() { fired++ })
	q.close()
	if fired != 2 {
		t.Fatal("close did not fire the notification")
	}
}

func TestABroadcastFrameCountsOnceServerWide(t *testing.T) {
	lim := Limits{}.withDefaults()
	var total atomic.Int64
	frame := make([]byte, 1000)
	sh := newSharedFrame(frame, &total)
	queues := []*sendQueue{newSendQueue(&lim, &total, nil), newSendQueue(&lim, &total, nil), newSendQueue(&lim, &total, nil)}
	for _, q := range queues {
		sh.refs.Add(1)
		q.push(outMsg{frames: [][]byte{frame}, shared: sh})
	}
	sh.release()
	if got, want := total.Load(), cost(1000); got != want {
		t.Fatalf("server-wide bytes %d for one frame in three queues, want %d", got, want)
	}
	for i, q := range queues {
		if i == 2 {
			q.close() // discarded, not written: given back all the same
			continue
		}
		batch, _ := q.take()
		q.done(batch)
	}
	if total.Load() != 0 {
		t.Fatalf("server-wide bytes %d after every copy left", total.Load())
	}
}

// TestPushPastTheByteBoundDropsThePeer checks the Server's side of a
// refused push: the peer is shut down with ErrPeerDropped and counted.
func TestPushPastTheByteBoundDropsThePeer(t *testing.T) {
	s, p, remote := queueOnlyPeer(t, Config{Limits: Limits{SendQueueBytes: 250}})
	for i, want := range []error{nil, nil, ErrPeerDropped, ErrUnknownPeer} {
		if err := s.Send(p.id, make([]byte, 36)); !sendErrorIs(err, want) {
			t.Fatalf("send %d: %v, want %v", i, err, want)
		}
	}
	if _, err := remote.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the dropped peer's connection is still open (read: %v)", err)
	}
	if !errors.Is(p.closeReason(), ErrPeerDropped) {
		t.Errorf("close reason %v, want ErrPeerDropped", p.closeReason())
	}
	if got := s.Stats().SlowDropped; got != 1 {
		t.Errorf("SlowDropped = %d, want 1", got)
	}
}

// sendErrorIs matches a Send error exactly: nil, ErrPeerDropped, or
// ErrUnknownPeer that is not ErrPeerDropped.
func sendErrorIs(err, want error) bool {
	switch want {
	case nil:
		return err == nil
	case ErrUnknownPeer:
		return errors.Is(err, ErrUnknownPeer) && !errors.Is(err, ErrPeerDropped)
	default:
		return errors.Is(err, want)
	}
}

func repeatStep(st queueStep, n int) []queueStep {
	steps := make([]queueStep, n)
	for i := range steps {
		steps[i] = st
	}
	return steps
}

// queueOnlyPeer returns a server with one registered peer ("q") on a
// net.Pipe whose writer and reader are not started, and the pipe's other
// end.
func queueOnlyPeer(t *testing.T, cfg Config) (*Server, *peer, net.Conn) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	s := newServer(cfg, &fuzzHandler{})
	local, remote := net.Pipe()
	t.Cleanup(func() {
		_ = local.Close()
		_ = remote.Close()
	})
	p := newPeer(s, local, 1, "pipe", nil)
	s.mu.Lock()
	p.id = "q"
	s.peers[p.id] = p
	s.conns[p] = struct{}{}
	s.mu.Unlock()
	return s, p, remote
}

// addPipePeer registers a peer on one end of an in-memory pipe, as if it
// had finished its handshake, without its reader or writer goroutines.
func addPipePeer(t *testing.T, s *Server, id string, serial uint64) *peer {
	local, remote := net.Pipe()
	t.Cleanup(func() { _ = local.Close(); _ = remote.Close() })
	p := newPeer(s, local, serial, "pipe", nil)
	s.mu.Lock()
	p.id = id
	s.peers[id] = p
	s.conns[p] = struct{}{}
	s.mu.Unlock()
	return p
}

// A broadcast copy that went into a queue whose peer the server-wide bound
// then dropped was given up by that queue's close: the broadcast must not
// give it up a second time, or the server's count of queued bytes ends
// below zero and the bound loosens for good.
func TestABroadcastCopyQueuedToAPeerThatIsThenShedIsReleasedOnce(t *testing.T) {
	cfg := Config{MaxSendBytes: 1000, Limits: Limits{SendQueueBytes: 1 << 20, SendHWM: 1 << 20, SendHWMBytes: 1 << 20}}
	cfg.Logger = slog.New(slog.DiscardHandler)
	s := newServer(cfg, &fuzzHandler{})
	a := addPipePeer(t, s, "a", 1)
	b := addPipePeer(t, s, "b", 2)
	if err := s.Send("a", make([]byte, 900)); err != nil { // a holds about 964 bytes, under the bound
		t.Fatal(err)
	}
	s.Broadcast(make([]byte, 200), []Peer{{ID: "a", Serial: 1}, {ID: "b", Serial: 2}})
	if !a.closing.Load() {
		t.Fatal("a was not shed: the scenario did not happen")
	}
	batch, _ := b.q.take() // b's writer writes its copy
	b.q.done(batch)
	if got := s.sendBytes.Load(); got != 0 {
		t.Fatalf("queued bytes %d once every queue is empty, want 0", got)
	}
}

// A writer may add frames after push (a Dealer adds a REP peer's
// delimiter): what leaves the queue gives back what push charged, so
// the held bytes return to zero instead of drifting below it.
func TestAMessageGivesBackWhatPushChargedWhateverTheWriterAdds(t *testing.T) {
	lim := Limits{SendQueueBytes: 1 << 20, SendHWM: 1000, SendHWMBytes: 1 << 20}
	var total, holders atomic.Int64
	q := newSendQueue(&lim, &total, &holders)
	for i := 0; i < 10; i++ {
		q.push(outMsg{frames: [][]byte{[]byte("question")}})
		batch, _ := q.take()
		for j := range batch {
			batch[j].envelope = Envelope{{}} // the delimiter the Dealer's writer adds
		}
		q.done(batch)
		q.finish(batch)
	}
	if held, sum := q.heldBytes(), total.Load(); held != 0 || sum != 0 {
		t.Fatalf("held %d bytes, total %d, after every message left; want 0 and 0", held, sum)
	}
}

package transport

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
)

// queueStep is one step of TestSendQueueBounds: a Send of frames of the
// given sizes, or (take) what the writer does when it takes the queue.
type queueStep struct {
	frames []int
	take   bool
	want   error // for a Send; nil: accepted
}

func send(want error, sizes ...int) queueStep { return queueStep{frames: sizes, want: want} }

var take = queueStep{take: true}

// TestSendQueueBounds drives Server.Send against a registered peer whose
// writer is not running, so that the queue holds exactly what the steps
// put there and only take empties it: the bounds are checked without
// racing a writer. The drop itself (shutdown, Disconnected) is shared with
// the message-count overflow and covered end to end by
// TestSlowReaderIsDroppedAlone.
func TestSendQueueBounds(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name  string
		cfg   Config
		steps []queueStep
	}{
		{"the message count bound drops the peer", Config{Limits: Limits{SendQueue: 3, SendQueueBytes: mib}}, []queueStep{
			send(nil, 10), send(nil, 10), send(nil, 10), send(ErrPeerDropped, 10),
		}},
		{"the message that would exceed the byte bound drops the peer", Config{Limits: Limits{SendQueueBytes: 100}}, []queueStep{
			send(nil, 40), send(nil, 40), send(ErrPeerDropped, 21),
		}},
		{"exactly the byte bound is accepted", Config{Limits: Limits{SendQueueBytes: 100}}, []queueStep{
			send(nil, 40), send(nil, 60), send(ErrPeerDropped, 1),
		}},
		{"every frame of a message counts", Config{Limits: Limits{SendQueueBytes: 100}}, []queueStep{
			send(nil, 30, 30), send(nil, 20, 0, 20), send(ErrPeerDropped, 0, 1),
		}},
		{"a message over the byte bound is accepted on an empty queue", Config{Limits: Limits{SendQueueBytes: 100}}, []queueStep{
			send(nil, 1000), send(ErrPeerDropped, 1),
		}},
		{"bytes the writer took no longer count", Config{Limits: Limits{SendQueueBytes: 100}}, []queueStep{
			send(nil, 60), take, send(nil, 60), take, send(nil, 100), take, send(nil, 100), send(ErrPeerDropped, 1),
		}},
		{"the byte bound defaults to 16 MiB", Config{}, []queueStep{
			send(nil, 8*mib), send(nil, 8*mib), send(ErrPeerDropped, 1),
		}},
		{"the count bound defaults to 1000", Config{}, append(
			repeatStep(send(nil, 1), DefaultSendQueue), send(ErrPeerDropped, 1)),
		},
		{"after a drop the peer is unknown", Config{Limits: Limits{SendQueue: 1}}, []queueStep{
			send(nil, 1), send(ErrPeerDropped, 1), send(ErrUnknownPeer, 1), take, send(ErrUnknownPeer, 1),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, p, remote := queueOnlyPeer(t, tc.cfg)
			dropped := false
			for i, st := range tc.steps {
				if st.take {
					if batch, ok := p.takeBatch(); ok {
						p.returnBatch(batch)
					}
					continue
				}
				frames := make([][]byte, len(st.frames))
				for j, n := range st.frames {
					frames[j] = make([]byte, n)
				}
				err := s.Send(p.id, frames...)
				if !sendErrorIs(err, st.want) {
					t.Fatalf("step %d: Send of %v bytes: %v, want %v", i, st.frames, err, st.want)
				}
				dropped = dropped || errors.Is(err, ErrPeerDropped)
			}
			want := uint64(0)
			if dropped {
				want = 1
				// Dropped like a count overflow: shut down with ErrPeerDropped.
				if _, err := remote.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
					t.Errorf("the dropped peer's connection is still open (read: %v)", err)
				}
				if !errors.Is(p.closeReason(), ErrPeerDropped) {
					t.Errorf("close reason %v, want ErrPeerDropped", p.closeReason())
				}
			}
			if got := s.Stats().SlowDropped; got != want {
				t.Errorf("SlowDropped = %d, want %d", got, want)
			}
		})
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
	p := newPeer(s, local, 1, "pipe")
	s.mu.Lock()
	p.id = "q"
	s.peers[p.id] = p
	s.conns[p] = struct{}{}
	s.mu.Unlock()
	return s, p, remote
}

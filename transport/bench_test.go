package transport_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/go-zeromq/zmq4"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/transport"
)

// echoHandler replies to every message with the same frames; it records
// nothing, so benchmarks measure transport (and the zmq4 client) only.
type echoHandler struct {
	srv       atomic.Pointer[transport.Server]
	connected chan struct{}
}

func (h *echoHandler) Connected(transport.Peer)           { h.connected <- struct{}{} }
func (h *echoHandler) Disconnected(transport.Peer, error) {}
func (h *echoHandler) Message(p transport.Peer, _ transport.Envelope, frames [][]byte, hold flow.Hold) {
	hold.Release()
	_ = h.srv.Load().Send(p.ID, frames...)
}

func startEcho(b *testing.B, cfg transport.Config) (*transport.Server, zmq4.Socket) {
	b.Helper()
	cfg.Endpoints = []string{"tcp://127.0.0.1:0"}
	cfg.Logger = testLogger()
	h := &echoHandler{connected: make(chan struct{}, 1)}
	srv, err := transport.Listen(cfg, h)
	if err != nil {
		b.Fatal(err)
	}
	h.srv.Store(srv)
	b.Cleanup(func() { _ = srv.Close() })
	dealer := dialZMQ(b, zmq4.Dealer, srv.Addrs()[0], "bench")
	<-h.connected
	return srv, dealer
}

// BenchmarkSendRoundTrip measures one synchronous request/reply between a
// zmq4 DEALER and the server echoing with Send, over loopback TCP.
// allocs/op counts both sides; the server's share is 2 per message (the
// frames slice and the body it hands to the Handler), the rest is zmq4's
// client.
func BenchmarkSendRoundTrip(b *testing.B) {
	for _, size := range []int{16, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			_, dealer := startEcho(b, transport.Config{})
			msg := zmq4.NewMsg(make([]byte, size))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := dealer.Send(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := dealer.Recv(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSendPipelined measures server throughput when replies are
// queued faster than one write per message: the writer drains each batch
// with one writev.
func BenchmarkSendPipelined(b *testing.B) {
	srv, dealer := startEcho(b, transport.Config{Limits: transport.Limits{SendQueueBytes: 1 << 30}})
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	sendErr := make(chan error, 1)
	go func() {
		for range b.N {
			if err := srv.Send("bench", payload); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for range b.N {
		if _, err := dealer.Recv(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-sendErr; err != nil {
		b.Fatal(err)
	}
}

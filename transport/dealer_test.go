package transport_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
	"github.com/moebius-js/moebius-js/transport"
)

// inbox collects what a Dealer receives.
type inbox struct {
	mu   sync.Mutex
	msgs [][][]byte
	more chan struct{} // closed and replaced on every message
}

func newInbox() *inbox { return &inbox{more: make(chan struct{})} }

func (in *inbox) add(frames [][]byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, frames)
	close(in.more)
	in.more = make(chan struct{})
}

// wait returns the n-th message (1-based), waiting for it.
func (in *inbox) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		in.mu.Lock()
		if len(in.msgs) >= n {
			m := in.msgs[n-1]
			in.mu.Unlock()
			return m
		}
		more := in.more
		in.mu.Unlock()
		select {
		case <-more:
		case <-timeout:
			t.Fatalf("no message %d within %v", n, waitTimeout)
		}
	}
}

func dialDealer(t *testing.T, endpoint string, cfg transport.DialConfig) (*transport.Dealer, *inbox) {
	t.Helper()
	in := newInbox()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	d, err := transport.Dial(endpoint, cfg, in.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, in
}

func TestDealerRoundTripWithServer(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "re:")
	d, in := dialDealer(t, tcpAddr(t, srv), transport.DialConfig{Identity: "upstream-client"})
	if err := d.Send([]byte("a"), []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, 1)
	if !eqFrames(got, [][]byte{[]byte("re:"), []byte("a"), {0, 1, 2}}) {
		t.Fatalf("got %q", got)
	}
	if p := rec.waitConnected(t, "upstream-client"); p.ID != "upstream-client" {
		t.Fatalf("server saw identity %q", p.ID)
	}
}

// freeEndpoint returns a tcp endpoint nobody listens on (yet).
func freeEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "tcp://" + addr
}

func TestDealerQueuesUntilTheServerComesAndReconnectsAfterARestart(t *testing.T) {
	endpoint := freeEndpoint(t)
	d, in := dialDealer(t, endpoint, transport.DialConfig{ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	if err := d.Send([]byte("sent while down")); err != nil {
		t.Fatal(err)
	}
	srv, rec := startServer(t, transport.Config{Endpoints: []string{endpoint}})
	echo(srv, rec, "re:") // (the dealer may connect before this: the check below reads what arrived)
	rec.waitFor(t, "the message queued while the server was down", func(evs []event) bool {
		m := messages(evs)
		return len(m) == 1 && string(m[0][0]) == "sent while down"
	})

	srv.Close() // the server restarts on the same endpoint
	srv2, rec2 := startServer(t, transport.Config{Endpoints: []string{endpoint}})
	echo(srv2, rec2, "re:")
	// Until the dealer notices the old connection is gone, what it writes
	// there is lost (as with libzmq): keep sending until a reply comes.
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				_ = d.Send([]byte("after restart"))
			}
		}
	}()
	// The echo of a message sent after the restart comes back.
	for n := 1; string(in.wait(t, n)[1]) != "after restart"; n++ {
	}
	close(stop)
	<-sent
}

func TestDealerSpeaksREQStyleToAREPServer(t *testing.T) {
	rep := zmq4.NewRep(context.Background())
	t.Cleanup(func() { rep.Close() })
	if err := rep.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	endpoint := "tcp://" + rep.Addr().String()
	d, in := dialDealer(t, endpoint, transport.DialConfig{})
	if err := d.Send([]byte("question")); err != nil {
		t.Fatal(err)
	}
	got := make(chan zmq4.Msg, 1)
	go func() {
		m, err := rep.Recv()
		if err == nil {
			got <- m
			_ = rep.Send(zmq4.NewMsgString("answer"))
		}
	}()
	select {
	case m := <-got:
		if len(m.Frames) != 1 || string(m.Frames[0]) != "question" {
			t.Fatalf("REP received %q", m.Frames)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the REP server got nothing")
	}
	if reply := in.wait(t, 1); len(reply) != 1 || string(reply[0]) != "answer" {
		t.Fatalf("dealer got %q; want the reply without its delimiter", reply)
	}
}

func TestDealerSendQueueIsBoundedWhileDown(t *testing.T) {
	cases := []struct {
		name  string
		cfg   transport.DialConfig
		sizes []int // message sizes sent in order; the last one must fail
	}{
		{"by bytes, with an overhead per message", transport.DialConfig{Limits: transport.Limits{SendQueueBytes: 250}}, []int{36, 36, 36}},
		{"many empty messages fill it too", transport.DialConfig{Limits: transport.Limits{SendQueueBytes: 1000}}, append(make([]int, 15), 0)},
		{"a message over the byte bound is accepted on an empty queue", transport.DialConfig{Limits: transport.Limits{SendQueueBytes: 100}}, []int{1000, 1}},
		{"the byte bound defaults to 16 MiB", transport.DialConfig{}, []int{8<<20 - 100, 8<<20 - 100, 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := dialDealer(t, freeEndpoint(t), tc.cfg)
			last := len(tc.sizes) - 1
			for i, n := range tc.sizes[:last] {
				if err := d.Send(make([]byte, n)); err != nil {
					t.Fatalf("send %d (%d bytes): %v", i, n, err)
				}
			}
			if err := d.Send(make([]byte, tc.sizes[last])); !errors.Is(err, transport.ErrQueueFull) {
				t.Fatalf("send %d (%d bytes): %v, want ErrQueueFull", last, tc.sizes[last], err)
			}
			d.Close()
			if err := d.Send([]byte("x")); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("send after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestDealerClosesTheConnectionOnAMessageWithTooManyFrames(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	_, in := dialDealer(t, tcpAddr(t, srv), transport.DialConfig{Identity: "frugal", Limits: transport.Limits{MaxFrames: 3}})
	first := rec.waitConnected(t, "frugal")

	if err := srv.Send("frugal", []byte("1"), []byte("2"), []byte("3"), []byte("4")); err != nil {
		t.Fatal(err)
	}
	// The dealer refuses it by closing the connection, then reconnects.
	rec.waitFor(t, "the connection to end", func(evs []event) bool { return count(evs, evDisconnected, "frugal") == 1 })
	evs := rec.waitFor(t, "the reconnection", func(evs []event) bool { return count(evs, evConnected, "frugal") == 2 })
	if again := evs[len(evs)-1].peer; again.Serial == first.Serial {
		t.Fatalf("reconnected on the same connection %d", again.Serial)
	}
	if err := srv.Send("frugal", []byte("1"), []byte("2"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if got := in.wait(t, 1); len(got) != 3 {
		t.Fatalf("first message delivered has %d frames, want the 3-frame one", len(got))
	}
}

func TestDealerCloseStopsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "")
	up, in := dialDealer(t, tcpAddr(t, srv), transport.DialConfig{})
	_ = up.Send([]byte("hi"))
	in.wait(t, 1)
	down, _ := dialDealer(t, freeEndpoint(t), transport.DialConfig{ReconnectMin: time.Millisecond})
	up.Close()
	down.Close()
	srv.Close()
	waitGoroutines(t, base)
}

func TestDialRejectsMalformedEndpoints(t *testing.T) {
	for _, ep := range []string{"", "tcp://", "tcp://nohost", "udp://1.2.3.4:5", "127.0.0.1:5555"} {
		if _, err := transport.Dial(ep, transport.DialConfig{}, func([][]byte) {}); err == nil {
			t.Errorf("Dial(%q) accepted a malformed endpoint", ep)
		}
	}
}

func TestDealerBacksOffWhenTheServerClosesRightAfterTheHandshake(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "")
	holder, in := dialDealer(t, tcpAddr(t, srv), transport.DialConfig{Identity: "taken"})
	_ = holder.Send([]byte("hi"))
	in.wait(t, 1)
	start := time.Now()
	dialDealer(t, tcpAddr(t, srv), transport.DialConfig{Identity: "taken", ReconnectMin: 20 * time.Millisecond, ReconnectMax: 80 * time.Millisecond})
	// The server refuses the duplicate at once, every time; waits of 20,
	// 40 and 80 ms come between the first four attempts, none with a spin.
	eventually(t, "four refusals", func() bool { return srv.Stats().DuplicateRefused >= 4 })
	if el := time.Since(start); el < 140*time.Millisecond {
		t.Fatalf("four refused connections within %v: the dealer reconnects without backing off", el)
	}
}

func TestDealerSaysWhatBecomesOfItsConnections(t *testing.T) {
	events := make(chan transport.ConnState, 16)
	onState := func(st transport.ConnState) { events <- st }
	next := func() transport.ConnState {
		t.Helper()
		select {
		case st := <-events:
			return st
		case <-time.After(waitTimeout):
			t.Fatal("no connection event")
			return transport.ConnState{}
		}
	}

	// Nobody listens: failed.
	dialDealer(t, freeEndpoint(t), transport.DialConfig{ReconnectMin: time.Hour, OnState: onState})
	if st := next(); st.Event != transport.ConnFailed || st.Err == nil {
		t.Fatalf("got %+v, want ConnFailed", st)
	}

	// A server: up, then lost when it closes.
	srv, _ := startServer(t, transport.Config{})
	dialDealer(t, tcpAddr(t, srv), transport.DialConfig{ReconnectMin: time.Hour, OnState: onState})
	if st := next(); st.Event != transport.ConnUp {
		t.Fatalf("got %+v, want ConnUp", st)
	}
	srv.Close()
	if st := next(); st.Event != transport.ConnLost {
		t.Fatalf("got %+v, want ConnLost", st)
	}

	// A CURVE client at a NULL endpoint: refused.
	srv2, _ := startServer(t, transport.Config{})
	dialDealer(t, tcpAddr(t, srv2), transport.DialConfig{ReconnectMin: time.Hour, OnState: onState,
		Curve: &transport.CurveClient{ServerKey: zmtptest.NewKeyPair(t).Public, Keys: zmtptest.NewKeyPair(t)}})
	if st := next(); st.Event != transport.ConnRefused || !errors.Is(st.Err, transport.ErrProtocol) {
		t.Fatalf("got %+v, want ConnRefused", st)
	}
}

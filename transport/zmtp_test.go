package transport_test

// ZMTP as libzmq speaks it: the 3.1 greeting, refusals that come at once
// and say why, identities libzmq reserves, and a handshake that is not
// repeated.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
	"github.com/moebius-js/moebius-js/transport"
)

// logLines is a slog.Handler target that keeps every line, for tests that
// check what was logged.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startLogged(t *testing.T, cfg transport.Config) (*transport.Server, *recorder, *logLines) {
	t.Helper()
	logs := &logLines{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, rec := startServer(t, cfg)
	return srv, rec, logs
}

func TestTheServerGreetsAsZMTP31(t *testing.T) {
	srv, _ := startServer(t, transport.Config{})
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	rc.Write(zmtptest.Greeting(3, "NULL"))
	g := make([]byte, 64)
	_ = rc.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(rc.C, g); err != nil {
		t.Fatal(err)
	}
	if g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || g[11] != 1 {
		t.Fatalf("greeting % x, want signature and version 3.1", g[:12])
	}
	if mech := string(bytes.TrimRight(g[12:32], "\x00")); mech != "NULL" {
		t.Fatalf("mechanism %q, want NULL", mech)
	}
}

// Each peer here would otherwise wait for a greeting or a READY that never
// comes, until the handshake timeout (a minute in these tests): it must be
// closed at once, with an INFO line saying why, and counted.
func TestPeersTheServerCannotSpeakWithAreRefusedAtOnceAndSaidWhy(t *testing.T) {
	signature := []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f}
	cases := []struct {
		name    string
		hello   []byte
		logged  string
		counter func(transport.Stats) uint64
	}{
		{"ZMTP 1.0, short identity frame", []byte{0x01, 0x00}, "ZMTP 1.0",
			func(s transport.Stats) uint64 { return s.VersionRefused }},
		{"ZMTP 1.0, long identity frame", []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 2, 0x00, 'i'}, "ZMTP 1.0",
			func(s transport.Stats) uint64 { return s.VersionRefused }},
		{"ZMTP 2.0 (revision 01)", append(append([]byte{}, signature...), 0x01, 0x05), "ZMTP 2.0",
			func(s transport.Stats) uint64 { return s.VersionRefused }},
		{"ZMTP revision 02", append(append([]byte{}, signature...), 0x02, 0x05), "revision 2",
			func(s transport.Stats) uint64 { return s.VersionRefused }},
		{"CURVE", zmtptest.Greeting(3, "CURVE"), "CURVE",
			func(s transport.Stats) uint64 { return s.MechanismRefused }},
		{"PLAIN", zmtptest.Greeting(3, "PLAIN"), "PLAIN",
			func(s transport.Stats) uint64 { return s.MechanismRefused }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, logs := startLogged(t, transport.Config{Limits: transport.Limits{HandshakeTimeout: time.Minute}})
			rc := zmtptest.Dial(t, tcpAddr(t, srv))
			rc.Write(tc.hello)
			rc.ExpectClosed(2 * time.Second)
			waitStat(t, srv, "refusal counted", func(s transport.Stats) bool { return tc.counter(s) == 1 && s.HandshakeFailed == 1 })
			waitLog(t, logs, tc.logged)
		})
	}
}

func TestAnIdentityStartingWithAZeroByteIsRefusedAsLibzmqDoes(t *testing.T) {
	srv, rec, logs := startLogged(t, transport.Config{})
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	if err := rc.HandshakeErr("DEALER", zmtptest.Str("\x00mine")); err == nil {
		// The server may finish its side before it reads ours: then the
		// close comes next.
		rc.ExpectClosed(2 * time.Second)
	}
	waitStat(t, srv, "refusal counted", func(s transport.Stats) bool { return s.HandshakeFailed == 1 })
	waitLog(t, logs, "identity starting with a zero byte")
	if n := count(rec.snapshot(), evConnected, "\x00mine"); n != 0 {
		t.Fatalf("a peer with a reserved identity was connected")
	}
}

func TestASecondReadyAfterTheHandshakeIsAProtocolError(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	rc.Handshake("DEALER", zmtptest.Str("twice"))
	rec.waitConnected(t, "twice")
	rc.Write(zmtptest.Ready("DEALER", zmtptest.Str("twice")))
	rc.ExpectClosed(2 * time.Second)
	waitStat(t, srv, "protocol error counted", func(s transport.Stats) bool { return s.ProtocolErrors == 1 })
}

// A client that closes and reconnects at once with the same identity must
// never be refused as a duplicate of its own closed connection.
func TestAClientThatReconnectsAtOnceWithItsIdentityIsNeverRefused(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "re:")
	addr := tcpAddr(t, srv)
	for i := 0; i < 300; i++ {
		rc := zmtptest.Dial(t, addr)
		rc.Handshake("DEALER", zmtptest.Str("again"))
		rc.SendText("hi")
		if got := rc.Recv(); len(got) != 2 || string(got[0]) != "re:" {
			t.Fatalf("try %d: reply %q", i, got)
		}
		_ = rc.C.Close()
	}
	if s := srv.Stats(); s.DuplicateRefused != 0 {
		t.Fatalf("%d reconnects refused as duplicates", s.DuplicateRefused)
	}
}

// waitStat waits until the server's counters satisfy cond.
func waitStat(t *testing.T, srv *transport.Server, what string, cond func(transport.Stats) bool) {
	t.Helper()
	eventually(t, what, func() bool { return cond(srv.Stats()) })
}

// waitLog waits until the log has a line containing want.
func waitLog(t *testing.T, logs *logLines, want string) {
	t.Helper()
	eventually(t, "a log line containing "+want, func() bool { return strings.Contains(logs.String(), want) })
}

// A send that answers no particular request (SendConn: a broadcast, a send
// from another client's handler or from background work) carries the
// envelope of the connection's latest message, and none once its latest
// message had none.
func TestASendThatAnswersNoRequestCarriesTheEnvelopeOfTheLatestMessage(t *testing.T) {
	srv, rec := startServer(t, transport.Config{})
	rc := zmtptest.Dial(t, tcpAddr(t, srv))
	rc.Handshake("DEALER", zmtptest.Str("hopper"))
	p := rec.waitConnected(t, "hopper")
	messagesFrom := func(n int) {
		rec.waitFor(t, fmt.Sprintf("%d messages", n), func(evs []event) bool { return count(evs, evMessage, "hopper") >= n })
	}

	rc.Send([]byte("hop"), []byte{}, []byte(`{"command":"sub"}`))
	messagesFrom(1)
	if _, err := srv.SendConn("hopper", p.Serial, []byte("news")); err != nil {
		t.Fatal(err)
	}
	if got := rc.Recv(); len(got) != 3 || string(got[0]) != "hop" || len(got[1]) != 0 || string(got[2]) != "news" {
		t.Fatalf("after an enveloped request, a send arrived as %q; want [hop, \"\", news]", got)
	}
	if n := srv.Broadcast([]byte("all"), []transport.Peer{p}); n != 1 {
		t.Fatalf("broadcast queued %d copies", n)
	}
	if got := rc.Recv(); len(got) != 3 || string(got[0]) != "hop" || string(got[2]) != "all" {
		t.Fatalf("a broadcast arrived as %q; want [hop, \"\", all]", got)
	}

	rc.Send([]byte(`{"command":"plain"}`))
	messagesFrom(2)
	if _, err := srv.SendConn("hopper", p.Serial, []byte("news")); err != nil {
		t.Fatal(err)
	}
	if got := rc.Recv(); len(got) != 1 || string(got[0]) != "news" {
		t.Fatalf("after a plain request, a send arrived as %q; want [news]", got)
	}
}

// A peer whose writer makes no progress for WriteTimeout (it reads
// nothing while more is queued than the socket holds) is dropped and
// counted; one that reads slowly but steadily over the same time is kept,
// however long its replies take to get out.
func TestAPeerIsDroppedForNoWriteProgressNotForSlowProgress(t *testing.T) {
	const timeout = 1600 * time.Millisecond
	srv, rec := startServer(t, transport.Config{Limits: transport.Limits{
		WriteTimeout: timeout, SendQueueBytes: 64 << 20, SendHWM: 1 << 20, SendHWMBytes: 64 << 20}})
	addr := tcpAddr(t, srv)
	chunk := make([]byte, 256<<10)
	fill := func(id string, serial uint64) {
		for i := 0; i < 64; i++ { // 16 MiB: far more than loopback socket buffers hold
			if _, err := srv.SendConn(id, serial, chunk); err != nil {
				t.Fatalf("queueing for %s: %v", id, err)
			}
		}
	}

	stalled := zmtptest.Dial(t, addr)
	stalled.Handshake("DEALER", zmtptest.Str("stalled"))
	p := rec.waitConnected(t, "stalled")
	fill("stalled", p.Serial)
	// It reads nothing until the server has given up on it.
	waitStat(t, srv, "write timeout counted", func(s transport.Stats) bool { return s.WriteTimeouts == 1 })
	stalled.ExpectClosed(10 * timeout) // what the socket held, then the end

	steady := zmtptest.Dial(t, addr)
	steady.Handshake("DEALER", zmtptest.Str("steady"))
	q := rec.waitConnected(t, "steady")
	fill("steady", q.Serial)
	steady.Timeout = 10 * timeout
	for got := 0; got < 64; got++ { // a reply every 100ms: slow, never stopped
		frames, _, err := steady.ReadMessage()
		if err != nil {
			t.Fatalf("reply %d: %v; stats %+v", got, err, srv.Stats())
		}
		if len(frames) != 1 || len(frames[0]) != len(chunk) {
			t.Fatalf("reply %d: %d frames", got, len(frames))
		}
		if got < 12 {
			time.Sleep(100 * time.Millisecond) // the peer's own pace, not synchronisation
		}
	}
	if s := srv.Stats(); s.WriteTimeouts != 1 {
		t.Fatalf("%d write timeouts; the steady reader was dropped too", s.WriteTimeouts)
	}
}

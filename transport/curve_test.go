package transport_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/zmtptest"
	"github.com/moebius-js/moebius-js/transport"
)

// startCurveServer starts a server with one CURVE endpoint that echoes,
// letting in the keys allow accepts (every key when allow is nil).
func startCurveServer(t *testing.T, allow func(curve.Key) bool) (*transport.Server, *recorder, curve.KeyPair) {
	t.Helper()
	keys := zmtptest.NewKeyPair(t)
	cs := &transport.CurveServer{Keys: keys}
	if allow != nil {
		cs.Authorize = func(_ context.Context, k curve.Key, remote string) error {
			if !allow(k) {
				return errors.New("not on the allow-list")
			}
			return nil
		}
	}
	srv, rec := startServer(t, transport.Config{CurveEndpoints: []string{"tcp://127.0.0.1:0"}, Curve: cs})
	echo(srv, rec, "re:")
	return srv, rec, keys
}

// curveAddr is the server's CURVE endpoint (startServer binds a NULL one
// first).
func curveAddr(srv *transport.Server) string {
	addrs := srv.Addrs()
	return addrs[len(addrs)-1]
}

func TestACurveDealerAndServerExchangeFramesOfEverySize(t *testing.T) {
	srv, rec, serverKeys := startCurveServer(t, nil)
	client := zmtptest.NewKeyPair(t)
	d, in := dialDealer(t, curveAddr(srv), transport.DialConfig{
		Identity: "curvy",
		Curve:    &transport.CurveClient{ServerKey: serverKeys.Public, Keys: client},
	})
	big := bytes.Repeat([]byte("x"), 300_000) // a long frame, and a batch over one write chunk
	cases := [][][]byte{
		{[]byte("a")},
		{[]byte("before an empty frame"), {}},
		{bytes.Repeat([]byte("y"), 256), []byte("two")},
		{big},
	}
	for _, frames := range cases {
		if err := d.Send(frames...); err != nil {
			t.Fatal(err)
		}
	}
	for i, frames := range cases {
		got := in.wait(t, i+1)
		want := append([][]byte{[]byte("re:")}, frames...)
		if !eqFrames(got, want) {
			t.Fatalf("reply %d: got %d frames (first %.20q), want %d", i, len(got), got[0], len(want))
		}
	}
	p := rec.waitConnected(t, "curvy")
	if p.ClientKey == nil || *p.ClientKey != client.Public {
		t.Fatalf("server saw client key %v, want %v", p.ClientKey, client.Public)
	}
}

func TestACurveEndpointRefusesWhatItMust(t *testing.T) {
	allowed := zmtptest.NewKeyPair(t)
	srv, _, serverKeys := startCurveServer(t, func(k curve.Key) bool { return k == allowed.Public })
	addr := curveAddr(srv)

	cases := []struct {
		name   string
		curve  *transport.CurveClient
		reason string
	}{
		{"wrong server key", &transport.CurveClient{ServerKey: zmtptest.NewKeyPair(t).Public, Keys: allowed}, transport.CurveServerKey},
		{"client key not allowed", &transport.CurveClient{ServerKey: serverKeys.Public, Keys: zmtptest.NewKeyPair(t)}, transport.CurveClientKey},
		{"NULL client", nil, transport.CurveNullClient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().CurveRefused[tc.reason]
			d, _ := dialDealer(t, addr, transport.DialConfig{Curve: tc.curve})
			eventually(t, "the refusal counted", func() bool { return srv.Stats().CurveRefused[tc.reason] > before })
			d.Close()
			if n := srv.Stats().Peers; n != 0 {
				t.Fatalf("%d peers registered after refusals", n)
			}
		})
	}

	// The allowed client is served all the same.
	d, in := dialDealer(t, addr, transport.DialConfig{Curve: &transport.CurveClient{ServerKey: serverKeys.Public, Keys: allowed}})
	if err := d.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if got := in.wait(t, 1); string(got[1]) != "hi" {
		t.Fatalf("got %q", got)
	}
}

func TestRevokeKeysDisconnectsOnlyTheKeysNoLongerAllowed(t *testing.T) {
	srv, rec, serverKeys := startCurveServer(t, nil)
	stay, leave := zmtptest.NewKeyPair(t), zmtptest.NewKeyPair(t)
	dial := func(id string, kp curve.KeyPair) *inbox {
		_, in := dialDealer(t, curveAddr(srv), transport.DialConfig{
			Identity: id, ReconnectMin: time.Hour, // a revoked dealer must not come back during the test
			Curve: &transport.CurveClient{ServerKey: serverKeys.Public, Keys: kp},
		})
		rec.waitConnected(t, id)
		return in
	}
	dial("stay", stay)
	dial("leave", leave)

	if n := srv.RevokeKeys(func(k curve.Key) bool { return k == stay.Public }); n != 1 {
		t.Fatalf("RevokeKeys disconnected %d, want 1", n)
	}
	rec.waitFor(t, "leave disconnected", func(evs []event) bool { return count(evs, evDisconnected, "leave") == 1 })
	if got := srv.Stats().CurveRevoked; got != 1 {
		t.Fatalf("CurveRevoked = %d, want 1", got)
	}
	for _, e := range rec.snapshot() {
		if e.kind == evDisconnected && e.peer.ID == "stay" {
			t.Fatal("the client whose key stays allowed was disconnected")
		}
	}
	if err := srv.Send("stay", []byte("still here")); err != nil {
		t.Fatalf("send to the kept client: %v", err)
	}
}

func TestAKeyRevokedWhileAuthorizeRunsIsNeverConnected(t *testing.T) {
	keys := zmtptest.NewKeyPair(t)
	asked, release := make(chan struct{}), make(chan struct{})
	cs := &transport.CurveServer{Keys: keys, Authorize: func(ctx context.Context, k curve.Key, remote string) error {
		close(asked)
		<-release // the allow-list changes meanwhile
		return nil
	}}
	srv, rec := startServer(t, transport.Config{CurveEndpoints: []string{"tcp://127.0.0.1:0"}, Curve: cs})
	dialDealer(t, curveAddr(srv), transport.DialConfig{Identity: "late", ReconnectMin: time.Hour,
		Curve: &transport.CurveClient{ServerKey: keys.Public, Keys: zmtptest.NewKeyPair(t)}})
	<-asked
	if n := srv.RevokeKeys(func(curve.Key) bool { return false }); n != 1 {
		t.Fatalf("RevokeKeys disconnected %d connections in their handshake, want 1", n)
	}
	close(release)
	eventually(t, "the handshake to end", func() bool { return srv.Stats().Conns == 0 })
	for _, e := range rec.snapshot() {
		if e.kind == evConnected {
			t.Fatalf("the revoked client was connected: %v", e)
		}
	}
	if got := srv.Stats().CurveRevoked; got != 1 {
		t.Fatalf("CurveRevoked = %d, want 1", got)
	}
}

func TestAuthorizeGetsTheHandshakesDeadline(t *testing.T) {
	keys := zmtptest.NewKeyPair(t)
	left := make(chan time.Duration, 1)
	cs := &transport.CurveServer{Keys: keys, Authorize: func(ctx context.Context, k curve.Key, remote string) error {
		d, ok := ctx.Deadline()
		if !ok {
			d = time.Now().Add(time.Hour)
		}
		left <- time.Until(d)
		return nil
	}}
	srv, _ := startServer(t, transport.Config{CurveEndpoints: []string{"tcp://127.0.0.1:0"}, Curve: cs,
		Limits: transport.Limits{HandshakeTimeout: 3 * time.Second}})
	dialDealer(t, curveAddr(srv), transport.DialConfig{Curve: &transport.CurveClient{ServerKey: keys.Public, Keys: zmtptest.NewKeyPair(t)}})
	if d := <-left; d <= 0 || d > 3*time.Second {
		t.Fatalf("Authorize had %v left, want the rest of the 3s handshake", d)
	}
}

// holder is a Handler that keeps every message's hold, so that a
// connection runs out of room as a client's queue_limit fills up.
type holder struct {
	*recorder
	holds chan flow.Hold
}

func (h holder) Message(p transport.Peer, env transport.Envelope, frames [][]byte, hold flow.Hold) {
	h.holds <- hold
	h.add(event{kind: evMessage, peer: p, env: env, frames: frames})
}

func TestACurvePingIsAnsweredWhileTheConnectionIsOutOfRoom(t *testing.T) {
	keys := zmtptest.NewKeyPair(t)
	h := holder{newRecorder(), make(chan flow.Hold, 10)}
	srv, err := transport.Listen(transport.Config{CurveEndpoints: []string{"tcp://127.0.0.1:0"}, QueueLimit: 1,
		Curve: &transport.CurveServer{Keys: keys}, Logger: testLogger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := zmtptest.DialCurve(t, srv.Addrs()[0], keys.Public, zmtptest.NewKeyPair(t))
	c.Handshake("DEALER", nil)
	c.SendText("held") // takes the connection's only slot, and keeps it
	hold := <-h.holds
	defer hold.Release()

	c.Write(c.Seal(curve.FlagCommand, []byte("\x04PING\x00\x00ctx")))
	_, body, err := c.ReadFrameErr()
	if err != nil {
		t.Fatalf("no answer to the PING: %v", err)
	}
	flags, data, err := c.Session.Opener.Open(body)
	if err != nil || flags&curve.FlagCommand == 0 || string(data) != "\x04PONGctx" {
		t.Fatalf("got flags %#x %q (%v), want the PONG", flags, data, err)
	}
}

func TestACurveClientCannotTakeOverAnotherKeysIdentity(t *testing.T) {
	keys := zmtptest.NewKeyPair(t)
	srv, rec := startServer(t, transport.Config{CurveEndpoints: []string{"tcp://127.0.0.1:0"}, Handover: true,
		Curve: &transport.CurveServer{Keys: keys}})
	dial := func(kp curve.KeyPair) {
		dialDealer(t, curveAddr(srv), transport.DialConfig{Identity: "alice", ReconnectMin: time.Hour,
			Curve: &transport.CurveClient{ServerKey: keys.Public, Keys: kp}})
	}
	alice, mallory := zmtptest.NewKeyPair(t), zmtptest.NewKeyPair(t)
	dial(alice)
	rec.waitConnected(t, "alice")
	dial(mallory)
	eventually(t, "mallory refused", func() bool { return srv.Stats().DuplicateRefused == 1 })
	dial(alice) // the same key may take its identity over, as Handover says
	rec.waitFor(t, "alice's first connection handed over, and her second connected", func(evs []event) bool {
		return count(evs, evDisconnected, "alice") == 1 && count(evs, evConnected, "alice") == 2
	})
	// Who holds the identity now: the newcomer with alice's key (a
	// second connection of mallory's would have shown here instead).
	peers := srv.Peers()
	if len(peers) != 1 || peers[0].ID != "alice" || peers[0].ClientKey == nil || *peers[0].ClientKey != alice.Public {
		t.Fatalf("the registered peers are %+v, want alice's second connection with her key", peers)
	}
	if got := srv.Stats().DuplicateRefused; got != 1 {
		t.Fatalf("DuplicateRefused = %d, want mallory's one refusal", got)
	}
}

package transport_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/transport"
)

func mustKeyPair(t testing.TB) curve.KeyPair {
	t.Helper()
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// startCurveServer starts a server with one CURVE endpoint that echoes,
// letting in the keys allow accepts (every key when allow is nil).
func startCurveServer(t *testing.T, allow func(curve.Key) bool) (*transport.Server, *recorder, curve.KeyPair) {
	t.Helper()
	keys := mustKeyPair(t)
	cs := &transport.CurveServer{Keys: keys}
	if allow != nil {
		cs.Authorize = func(k curve.Key, remote string) error {
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
	client := mustKeyPair(t)
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
	allowed := mustKeyPair(t)
	srv, _, serverKeys := startCurveServer(t, func(k curve.Key) bool { return k == allowed.Public })
	addr := curveAddr(srv)

	cases := []struct {
		name   string
		curve  *transport.CurveClient
		reason string
	}{
		{"wrong server key", &transport.CurveClient{ServerKey: mustKeyPair(t).Public, Keys: allowed}, transport.CurveServerKey},
		{"client key not allowed", &transport.CurveClient{ServerKey: serverKeys.Public, Keys: mustKeyPair(t)}, transport.CurveClientKey},
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
	stay, leave := mustKeyPair(t), mustKeyPair(t)
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

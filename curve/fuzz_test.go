package curve

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// Both fuzzers start from the session libzmq 4.3.4 had with this
// package's server (testdata/libzmq-client.txt): with the randomness it
// was recorded with, libzmq's HELLO and INITIATE are valid handshake
// commands and its MESSAGEs genuine boxes, so the seed corpus
// (testdata/fuzz/<name>: those commands whole, truncated, renamed,
// replayed, reordered) reaches past the size checks into the boxes.

// refusals are the errors a refusal must wrap.
var refusals = []error{ErrMalformed, ErrServerKey, ErrBadBox, ErrNonce}

func checkRefusal(t *testing.T, step string, err error) {
	t.Helper()
	for _, r := range refusals {
		if errors.Is(err, r) {
			return
		}
	}
	t.Fatalf("%s refused with %v, which wraps none of the package's Err values", step, err)
}

// recordedServer is a ServerHandshake that draws the randomness it had
// when testdata/libzmq-client.txt was recorded.
func recordedServer() *ServerHandshake {
	sh := NewServerHandshake(libzmqServer)
	sh.rand = rand.NewChaCha8(seed("server random"))
	return sh
}

// FuzzServerHandshake feeds a HELLO and an INITIATE body to a server:
// whatever they hold, it must not panic, must refuse with one of the
// package's errors, and may only accept what a client holding the keys
// made.
func FuzzServerHandshake(f *testing.F) {
	s := readSession(f, "testdata/libzmq-client.txt")
	rec := struct{ hello, initiate []byte }{s["HELLO"][0].body, s["INITIATE"][0].body}
	f.Fuzz(func(t *testing.T, hello, initiate []byte) {
		sh := recordedServer()
		welcome, err := sh.Hello(hello)
		if err != nil {
			checkRefusal(t, "HELLO", err)
			if _, _, err := sh.Initiate(initiate); err == nil {
				t.Fatal("INITIATE accepted after a refused HELLO")
			}
			return
		}
		if len(welcome) != welcomeLen || !bytes.HasPrefix(welcome, []byte(cmdWelcome)) {
			t.Fatalf("WELCOME of %d bytes: %q", len(welcome), welcome[:min(len(welcome), 8)])
		}
		// Only a client holding C''s secret seals a HELLO box for this
		// server; of the HELLO, only the padding is not authenticated.
		if !bytes.Equal(hello[:8], rec.hello[:8]) || !bytes.Equal(hello[80:], rec.hello[80:]) {
			t.Fatalf("a HELLO that is not libzmq's was accepted: %x", hello)
		}
		_, metadata, err := sh.Initiate(initiate)
		if err != nil {
			checkRefusal(t, "INITIATE", err)
			if _, _, err := sh.Ready(nil); err == nil {
				t.Fatal("READY made after a refused INITIATE")
			}
			return
		}
		// Every byte of an INITIATE is in the cookie or under a box.
		if !bytes.Equal(initiate, rec.initiate) {
			t.Fatalf("an INITIATE that is not libzmq's was accepted: %x", initiate)
		}
		ready, session, err := sh.Ready(metadata)
		if err != nil || session == nil || !bytes.HasPrefix(ready, []byte(cmdReady)) {
			t.Fatalf("READY: %v", err)
		}
		if _, _, err := sh.Initiate(initiate); err == nil {
			t.Fatal("a second INITIATE accepted")
		}
	})
}

// recordedSession replays libzmq's handshake into a server and returns
// its session, whose Opener takes libzmq's recorded MESSAGEs.
func recordedSession(tb testing.TB, s map[string][]recorded) *Session {
	tb.Helper()
	sh := recordedServer()
	if _, err := sh.Hello(s["HELLO"][0].body); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := sh.Initiate(s["INITIATE"][0].body); err != nil {
		tb.Fatal(err)
	}
	_, session, err := sh.Ready(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return session
}

// FuzzOpen feeds two MESSAGE bodies, one after the other, to the Opener
// of a real session: whatever they hold, it must not panic, must refuse
// with one of the package's errors without moving its nonce, and may only
// open a genuine box: one the peer's Sealer makes from the same flags,
// data and nonce, byte for byte.
func FuzzOpen(f *testing.F) {
	s := readSession(f, "testdata/libzmq-client.txt")
	session := recordedSession(f, s)
	// The client's Sealer: the same key, the client's nonce prefix.
	peer := Sealer{key: session.Opener.key, prefix: session.Opener.prefix}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		o := session.Opener // a fresh copy for each input
		for i, body := range [][]byte{first, second} {
			last := o.last
			flags, data, err := o.Open(body)
			if err != nil {
				checkRefusal(t, "MESSAGE", err)
				if o.last != last {
					t.Fatalf("a refused MESSAGE moved the nonce from %d to %d", last, o.last)
				}
				continue
			}
			n := binary.BigEndian.Uint64(body[8:16])
			if n <= last || o.last != n {
				t.Fatalf("MESSAGE %d opened with nonce %d after %d; last is now %d", i, n, last, o.last)
			}
			p := peer
			p.nonce = n - 1
			if genuine := p.AppendMessage(nil, flags, data); !bytes.Equal(genuine, body) {
				t.Fatalf("MESSAGE %d opened but is not what the peer seals for flags %x, %q:\n got %x\nwant %x", i, flags, data, body, genuine)
			}
		}
	})
}

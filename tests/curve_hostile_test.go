package tests

// Hostile CURVE peers (issue #10): each test plays, with a raw client
// written here (internal/zmtptest), a peer that breaks the CURVE handshake
// or the boxes after it on purpose, against the real binary, and checks
// that the server closes that connection at once, logs why, counts it, and
// goes on serving well-behaved CURVE clients, one connected before the
// attack and one after.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/internal/zmtptest"
)

const hostileCurveHandlers = `
module.exports = { rules: [
  { command: 'ping', handler: (c) => c.send('ok') },
]};
`

// hostileCurveClosedWithin bounds how long the server may take to close a
// connection it refuses: at once, with room for a race build on a busy
// machine.
const hostileCurveClosedWithin = 5 * time.Second

// hostileCurveServer is a moebius-js serving CURVE on its bind endpoint, with the
// key pair it was given.
type hostileCurveServer struct {
	*server
	key curve.KeyPair
}

// startHostileCurve starts a server whose every endpoint speaks CURVE
// (any client key allowed), with metrics and the extra flags. Unless they
// say otherwise the handshake timeout is long, so that a connection closed
// within hostileCurveClosedWithin was refused, not timed out.
func startHostileCurve(t *testing.T, flags ...string) *hostileCurveServer {
	t.Helper()
	key := zmtptest.NewKeyPair(t)
	args := []string{"--metrics", "127.0.0.1:0", "--curve-key=" + key.Secret.String()}
	if !slices.Contains(flags, "--handshake-timeout") {
		args = append(args, "--handshake-timeout", "60s")
	}
	args = append(args, flags...)
	return &hostileCurveServer{server: startServer(t, writeHandlers(t, hostileCurveHandlers), args...), key: key}
}

// dialCurve connects a CURVE client with a fresh key pair to s; nothing is
// sent yet.
func (s *hostileCurveServer) dialCurve(t *testing.T) *zmtptest.CurveClient {
	t.Helper()
	return zmtptest.DialCurve(t, s.addr, s.key.Public, zmtptest.NewKeyPair(t))
}

// wellBehaved connects a correct CURVE client as identity id and checks
// that it is served.
func (s *hostileCurveServer) wellBehaved(t *testing.T, id string) *zmtptest.CurveClient {
	t.Helper()
	c := s.dialCurve(t)
	c.Handshake("DEALER", zmtptest.Str(id))
	hostileCurveServed(t, c, id)
	return c
}

// hostileCurveServed checks that c gets 'ok' for a ping.
func hostileCurveServed(t *testing.T, c *zmtptest.CurveClient, who string) {
	t.Helper()
	c.SendText(`{"command":"ping"}`)
	frames, err := c.RecvErr()
	if err != nil {
		t.Fatalf("%s was not served: %v", who, err)
	}
	if got := string(frames[0]); got != "ok" {
		t.Fatalf("%s got %q, want ok", who, got)
	}
}

func (s *hostileCurveServer) refused(t *testing.T, reason string) float64 {
	t.Helper()
	return s.metricLabelled("moebius_curve_refused_total", `reason="`+reason+`"`)
}

// hostileCurveRefusalBytes checks what a refused peer received before the close:
// at most the server's greeting (when the attack did not read it) and one
// ERROR command, nothing else.
func hostileCurveRefusalBytes(t *testing.T, got []byte) {
	t.Helper()
	rest := got
	switch {
	case len(rest) >= 64 && rest[0] == 0xff && rest[9] == 0x7f:
		rest = rest[64:]
	case len(rest) == 11 && rest[0] == 0xff && rest[9] == 0x7f:
		// Only the signature and major version: the server sends the rest
		// of its greeting once it has read the peer's, and this peer's
		// asked for another mechanism.
		rest = rest[11:]
	}
	if len(rest) == 0 {
		return
	}
	if len(rest) >= 8 && rest[0] == zmtptest.FlagCommand && int(rest[1]) == len(rest)-2 && bytes.HasPrefix(rest[2:], []byte("\x05ERROR")) {
		t.Logf("the server sent ERROR %q before closing", rest[8:])
		return
	}
	t.Fatalf("the refused peer received %d bytes besides a greeting and an ERROR: %q", len(rest), rest)
}

// toWelcome takes c through the greetings and HELLO to the server's
// WELCOME.
func toWelcome(t *testing.T, c *zmtptest.CurveClient) {
	t.Helper()
	c.Write(append(zmtptest.CurveGreeting(), c.HelloFrame()...))
	if err := c.ReadGreetingErr(); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadWelcomeErr(); err != nil {
		t.Fatal(err)
	}
}

// curveLogLine waits for the log line with msg (a regexp) at INFO that
// carries reason, and returns it.
func (s *hostileCurveServer) curveLogLine(t *testing.T, msg, reason string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^.*level=INFO msg="?` + msg + `.*\breason=` + regexp.QuoteMeta(reason) + `\b.*$`)
	return s.logs.waitFor(t, re, 5*time.Second)[0]
}

// hostileCurveHasClientKey reports whether a log line names key as client_key (slog
// quotes a value holding '=' or '"', which Z85 may).
func hostileCurveHasClientKey(line string, key curve.Key) bool {
	return strings.Contains(line, "client_key="+key.String()) || strings.Contains(line, "client_key="+strconv.Quote(key.String()))
}

// afterTheAttack checks that the server lives and serves the bystander
// connected before the attack and a newcomer.
func (s *hostileCurveServer) afterTheAttack(t *testing.T, bystander *zmtptest.CurveClient) {
	t.Helper()
	if !s.alive() {
		t.Fatalf("the server died; log:\n%s", s.logs.String())
	}
	hostileCurveServed(t, bystander, "the bystander")
	s.wellBehaved(t, "newcomer")
}

// hostileCurveFlip returns a copy of b with the byte at i (from the end when
// negative) inverted.
func hostileCurveFlip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0xff
	return b
}

// hostileCurveFrameBody returns the body of one frame encoded by zmtptest.Frame.
func hostileCurveFrameBody(frame []byte) []byte {
	if frame[0]&zmtptest.FlagLong != 0 {
		return frame[9:]
	}
	return frame[2:]
}

func TestCurveHostileHandshakesAreRefusedAndCounted(t *testing.T) {
	// Each attack leaves its connection where the server must close it,
	// and returns it.
	cases := []struct {
		name   string
		reason string
		attack func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient
	}{
		{"a HELLO sealed for another server's key", "server_key", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			c := zmtptest.DialCurve(t, s.addr, zmtptest.NewKeyPair(t).Public, zmtptest.NewKeyPair(t))
			c.Write(append(zmtptest.CurveGreeting(), c.HelloFrame()...))
			return c
		}},
		{"a truncated HELLO", "malformed", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			c := s.dialCurve(t)
			hello := c.HS.Hello()
			c.Write(append(zmtptest.CurveGreeting(), zmtptest.CommandBody(hello[:120])...))
			return c
		}},
		{"a HELLO of CurveZMQ version 2.0", "malformed", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			c := s.dialCurve(t)
			hello := c.HS.Hello()
			hello[6] = 2
			c.Write(append(zmtptest.CurveGreeting(), zmtptest.CommandBody(hello)...))
			return c
		}},
		{"a MESSAGE in place of HELLO", "malformed", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			c := s.dialCurve(t)
			body := append([]byte("\x07MESSAGE"), make([]byte, 8+17+10)...)
			c.Write(append(zmtptest.CurveGreeting(), zmtptest.CommandBody(body)...))
			return c
		}},
		{"a tampered INITIATE box", "bad_box", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			c := s.dialCurve(t)
			toWelcome(t, c)
			initiate, err := c.InitiateFrameErr(zmtptest.Metadata("DEALER", zmtptest.Str("tamperer")))
			if err != nil {
				t.Fatal(err)
			}
			c.Write(hostileCurveFlip(initiate, -1))
			return c
		}},
		{"an INITIATE carrying another handshake's cookie", "bad_box", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			// Two handshakes to their WELCOME; the INITIATE of the first
			// goes down the second connection.
			first, second := s.dialCurve(t), s.dialCurve(t)
			for _, c := range []*zmtptest.CurveClient{first, second} {
				toWelcome(t, c)
			}
			initiate, err := first.InitiateFrameErr(zmtptest.Metadata("DEALER", nil))
			if err != nil {
				t.Fatal(err)
			}
			second.Write(initiate)
			return second
		}},
		{"a truncated INITIATE", "malformed", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			c := s.dialCurve(t)
			toWelcome(t, c)
			initiate, err := c.InitiateFrameErr(nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(zmtptest.CommandBody(hostileCurveFrameBody(initiate)[:200]))
			return c
		}},
		{"a NULL client", "null_client", func(t *testing.T, s *hostileCurveServer) *zmtptest.CurveClient {
			c := s.dialCurve(t)
			c.Write(append(zmtptest.Greeting(3, "NULL"), zmtptest.Ready("DEALER", zmtptest.Str("plain"))...))
			return c
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startHostileCurve(t)
			bystander := s.wellBehaved(t, "bystander")
			c := tc.attack(t, s)
			hostileCurveRefusalBytes(t, c.ExpectClosed(hostileCurveClosedWithin))
			s.curveLogLine(t, `curve handshake refused`, tc.reason)
			if got := s.refused(t, tc.reason); got != 1 {
				t.Errorf("moebius_curve_refused_total{reason=%q} = %v, want 1", tc.reason, got)
			}
			s.afterTheAttack(t, bystander)
		})
	}
}

func TestCurveHostileHandshakeCommandsClaimingHugeSizesAreRefusedWithoutAllocating(t *testing.T) {
	cases := []struct {
		name  string
		claim uint64
		// afterWelcome: the claim is an INITIATE's, not a HELLO's.
		afterWelcome bool
	}{
		{"HELLO claiming 2^50 bytes", 1 << 50, false},
		{"HELLO claiming 2^63+5 bytes", 1<<63 + 5, false},
		{"HELLO claiming 1 MiB", 1 << 20, false},
		{"INITIATE claiming 2^50 bytes", 1 << 50, true},
		{"INITIATE claiming 2^63+5 bytes", 1<<63 + 5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startHostileCurve(t)
			bystander := s.wellBehaved(t, "bystander")
			before := s.rssBytes()
			c := s.dialCurve(t)
			huge := append(zmtptest.LongHeader(zmtptest.FlagCommand, tc.claim), "\x08INITIATE and then nothing like it"...)
			if tc.afterWelcome {
				toWelcome(t, c)
				c.Write(huge)
			} else {
				c.Write(append(zmtptest.CurveGreeting(), huge...))
			}
			hostileCurveRefusalBytes(t, c.ExpectClosed(hostileCurveClosedWithin))
			s.curveLogLine(t, `curve handshake refused`, "malformed")
			if got := s.refused(t, "malformed"); got != 1 {
				t.Errorf(`moebius_curve_refused_total{reason="malformed"} = %v, want 1`, got)
			}
			if grew := s.rssBytes() - before; grew > 64<<20 {
				t.Errorf("resident memory grew by %d MiB: the claimed size was allocated", grew>>20)
			}
			s.afterTheAttack(t, bystander)
		})
	}
}

func TestCurveHostileBoxesAfterTheHandshakeCloseTheConnection(t *testing.T) {
	// Each attack runs on a client that completed its handshake and one
	// round trip, and sends what must close the connection without
	// reaching a handler.
	cases := []struct {
		name   string
		reason string
		attack func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient)
	}{
		{"a MESSAGE with a byte of its ciphertext flipped", "bad_box", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			c.Write(hostileCurveFlip(c.Seal(0, []byte(`{"command":"ping"}`)), -1))
		}},
		{"a MESSAGE with a byte of its authenticator flipped", "bad_box", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			m := c.Seal(0, []byte(`{"command":"ping"}`))
			c.Write(hostileCurveFlip(m, 2+16)) // header 2, name 8, nonce 8: the tag starts at 18
		}},
		{"a MESSAGE whose nonce was raised", "bad_box", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			m := c.Seal(0, []byte(`{"command":"ping"}`))
			c.Write(hostileCurveFlip(m, 2+8)) // the nonce's high byte: far above the last, but not the one sealed with
		}},
		{"a MESSAGE sealed in another session", "bad_box", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			other := s.dialCurve(t)
			other.Handshake("DEALER", zmtptest.Str("other"))
			// other's next nonce is above c's last one: only the box is wrong.
			other.Seal(0, []byte(`{"command":"ping"}`))
			c.Write(other.Seal(0, []byte(`{"command":"ping"}`)))
		}},
		{"a MESSAGE sent twice (a replayed nonce)", "nonce", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			m := c.Seal(0, []byte(`{"command":"ping"}`))
			c.Write(m)
			if got := c.RecvText(); got != "ok" {
				t.Fatalf("the first copy got %q", got)
			}
			c.Write(m)
		}},
		{"a MESSAGE whose flags byte sets an undefined bit", "malformed", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			c.Write(c.Seal(0x04, []byte(`{"command":"ping"}`)))
		}},
		{"a MESSAGE with a lower nonce than the last", "nonce", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			early := c.Seal(0, []byte(`{"command":"ping"}`))
			late := c.Seal(0, []byte(`{"command":"ping"}`))
			c.Write(late)
			if got := c.RecvText(); got != "ok" {
				t.Fatalf("the later MESSAGE got %q", got)
			}
			c.Write(early)
		}},
		{"a MESSAGE whose box is shorter than its overhead", "malformed", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			body := binary.BigEndian.AppendUint64([]byte("\x07MESSAGE"), 1<<40)
			body = append(body, "tiny box"...) // 16 bytes of box at least, plus the flags byte
			c.Write(zmtptest.Frame(c.MessageFlags, body))
		}},
		{"a plaintext message frame", "malformed", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			c.Write(zmtptest.Message([]byte(`{"command":"ping"}`)))
		}},
		{"a command other than MESSAGE", "malformed", func(t *testing.T, s *hostileCurveServer, c *zmtptest.CurveClient) {
			c.Write(zmtptest.Command("PING", []byte("\x00\x00ping")))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startHostileCurve(t)
			bystander := s.wellBehaved(t, "bystander")
			c := s.wellBehaved(t, "attacker")
			tc.attack(t, s, c)
			if got := c.ExpectClosed(hostileCurveClosedWithin); len(got) != 0 {
				t.Fatalf("the server sent %d bytes before closing (a reply to what it should have refused?): %q", len(got), got)
			}
			line := s.curveLogLine(t, `(curve handshake refused|closing connection)`, tc.reason)
			if !hostileCurveHasClientKey(line, c.Long.Public) {
				t.Errorf("the log line does not name client_key=%s:\n%s", c.Long.Public, line)
			}
			if got := s.refused(t, tc.reason); got != 1 {
				t.Errorf("moebius_curve_refused_total{reason=%q} = %v, want 1", tc.reason, got)
			}
			s.afterTheAttack(t, bystander)
		})
	}
}

func TestCurveHostileMessagesOverMaxMessageSizeAreClosedAndCounted(t *testing.T) {
	const maxSize = 2000
	cases := []struct {
		name   string
		attack func(c *zmtptest.CurveClient)
	}{
		{"a MESSAGE claiming 2^40 bytes", func(c *zmtptest.CurveClient) {
			c.Write(append(zmtptest.LongHeader(c.MessageFlags, 1<<40), "\x07MESSAGE and a few bytes"...))
		}},
		{"a MESSAGE claiming 2^63+5 bytes", func(c *zmtptest.CurveClient) {
			c.Write(append(zmtptest.LongHeader(c.MessageFlags, 1<<63+5), "\x07MESSAGE and a few bytes"...))
		}},
		{"a sealed frame of 1.5 times the limit", func(c *zmtptest.CurveClient) {
			c.Write(c.Seal(0, []byte(`{"command":"ping","pad":"`+strings.Repeat("p", maxSize*3/2)+`"}`)))
		}},
		{"two sealed frames each under the limit, over it together", func(c *zmtptest.CurveClient) {
			c.Send([]byte(strings.Repeat("a", maxSize*2/3)), []byte(strings.Repeat("b", maxSize*2/3)))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startHostileCurve(t, "--max-message-size", strconv.Itoa(maxSize))
			bystander := s.wellBehaved(t, "bystander")
			// A message under the limit, with what CURVE adds, is served.
			bystander.SendText(`{"command":"ping","pad":"` + strings.Repeat("p", maxSize-200) + `"}`)
			if got := bystander.RecvText(); got != "ok" {
				t.Fatalf("a message under max_message_size got %q", got)
			}
			c := s.wellBehaved(t, "attacker")
			tc.attack(c)
			if got := c.ExpectClosed(hostileCurveClosedWithin); len(got) != 0 {
				t.Fatalf("the server sent %d bytes before closing: %q", len(got), got)
			}
			s.logs.waitFor(t, regexp.MustCompile(`closing connection: message too large`), 5*time.Second)
			if got := s.metric("moebius_oversize_total"); got != 1 {
				t.Errorf("moebius_oversize_total = %v, want 1", got)
			}
			s.afterTheAttack(t, bystander)
		})
	}
}

func TestCurveHostileStallsMidHandshakeAreClosedAtTheHandshakeTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	cases := []struct {
		name  string
		stall func(t *testing.T, c *zmtptest.CurveClient)
	}{
		{"after the greeting", func(t *testing.T, c *zmtptest.CurveClient) {
			c.Write(zmtptest.CurveGreeting())
		}},
		{"in the middle of HELLO", func(t *testing.T, c *zmtptest.CurveClient) {
			hello := c.HelloFrame()
			c.Write(append(zmtptest.CurveGreeting(), hello[:len(hello)/2]...))
		}},
		{"after WELCOME", func(t *testing.T, c *zmtptest.CurveClient) {
			toWelcome(t, c)
		}},
		{"in the middle of INITIATE", func(t *testing.T, c *zmtptest.CurveClient) {
			toWelcome(t, c)
			initiate, err := c.InitiateFrameErr(zmtptest.Metadata("DEALER", nil))
			if err != nil {
				t.Fatal(err)
			}
			c.Write(initiate[:len(initiate)-10])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startHostileCurve(t, "--handshake-timeout", timeout.String())
			bystander := s.wellBehaved(t, "bystander")
			opened := time.Now()
			c := s.dialCurve(t)
			tc.stall(t, c)
			// Nobody waits for the stalled handshake.
			hostileCurveServed(t, bystander, "the bystander during the stall")
			s.wellBehaved(t, "during-the-stall")
			if time.Since(opened) >= timeout {
				t.Fatal("the other clients were served only after the stalled one timed out")
			}
			got := c.ExpectClosed(timeout + hostileCurveClosedWithin)
			if waited := time.Since(opened); waited < timeout {
				t.Fatalf("the stalled connection was closed after %v, before its %v deadline", waited, timeout)
			}
			hostileCurveRefusalBytes(t, got)
			s.logs.waitFor(t, regexp.MustCompile(`level=INFO msg="handshake failed".*timeout=true`), 5*time.Second)
			if got := s.metric("moebius_handshakes_failed_total"); got != 1 {
				t.Errorf("moebius_handshakes_failed_total = %v, want 1", got)
			}
			s.afterTheAttack(t, bystander)
		})
	}
}

// TestCurveHostileRawClientIsServedLikeAnyCURVEClient checks the raw
// client the other tests misuse: used correctly it is served, and counted
// as nothing.
func TestCurveHostileRawClientIsServedLikeAnyCURVEClient(t *testing.T) {
	s := startHostileCurve(t)
	c := s.dialCurve(t)
	c.Handshake("DEALER", zmtptest.Str("raw"))
	if !bytes.Contains(c.ServerMetadata, zmtptest.Property("Socket-Type", "ROUTER")) {
		t.Fatalf("server metadata %q", c.ServerMetadata)
	}
	for i := 0; i < 3; i++ {
		hostileCurveServed(t, c, fmt.Sprintf("round trip %d", i))
	}
	if got := s.refused(t, "malformed") + s.refused(t, "bad_box") + s.refused(t, "nonce"); got != 0 {
		t.Fatalf("a correct client was counted as refused %v times", got)
	}
}

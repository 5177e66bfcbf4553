package tests

// Envelopes are per request, as libzmq's REP socket keeps them: the frames
// up to and including the first empty frame go back on every reply sent
// while serving that request. These tests drive the real binary with
// libzmq clients whose requests carry envelopes of every shape.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// echoN answers {"command":"echo","n":i} with {"n":i}, so a test can tell
// which request each reply belongs to.
const echoN = `module.exports = { rules: [{ command: 'echo', handler: (c, d) => c.send({ n: d.n }) }] };`

type envelopeReply struct {
	Reply []string `json:"reply"` // frames as hex
}

// envelopeReplies runs a scenario of interop/envelope.py and decodes its
// replies' frames.
func envelopeReplies(t *testing.T, scenario, addr string, n int) [][][]byte {
	t.Helper()
	out := runPython(t, 60*time.Second, "envelope.py", scenario, addr, fmt.Sprint(n))
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) != n {
		t.Fatalf("%s: %d replies, want %d:\n%s", scenario, len(lines), n, out)
	}
	replies := make([][][]byte, n)
	for i, l := range lines {
		r := decodeJSON[envelopeReply](t, l)
		for _, h := range r.Reply {
			f, err := hex.DecodeString(h)
			if err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			replies[i] = append(replies[i], f)
		}
	}
	return replies
}

// wantEcho checks that frames is exactly the envelope followed by {"n":i}.
func wantEcho(t *testing.T, what string, frames [][]byte, envelope [][]byte, i int) {
	t.Helper()
	want := append(append([][]byte{}, envelope...), []byte(fmt.Sprintf(`{"n":%d}`, i)))
	if len(frames) != len(want) {
		t.Fatalf("%s: reply %d is %q, want %q", what, i, frames, want)
	}
	for k := range want {
		if !bytes.Equal(frames[k], want[k]) {
			t.Fatalf("%s: reply %d is %q, want %q", what, i, frames, want)
		}
	}
}

func TestReqClientsWithAnEnvelopeOfTheirOwnGetEveryReply(t *testing.T) {
	s := startServer(t, writeHandlers(t, echoN))
	for _, scenario := range []string{"correlate", "proxy"} {
		t.Run(scenario, func(t *testing.T) {
			// A REQ socket checks the envelope itself: with a wrong one it
			// drops the reply and the script fails on its timeout.
			replies := envelopeReplies(t, scenario, s.addr, 20)
			for i, r := range replies {
				wantEcho(t, scenario, r, nil, i)
			}
		})
	}
}

func TestADealerMixingDelimitedAndPlainRequestsGetsEachReplyInItsOwnEnvelope(t *testing.T) {
	s := startServer(t, writeHandlers(t, echoN))
	replies := envelopeReplies(t, "mixed", s.addr, 2000)
	for i, r := range replies {
		var env [][]byte
		if i%2 == 0 {
			env = [][]byte{{}}
		}
		wantEcho(t, "mixed", r, env, i)
	}
}

// A custom route sees the envelope: the frames before the delimiter, or
// null when the message has none.
func TestACustomRouteSeesTheEnvelope(t *testing.T) {
	s := startServer(t, writeHandlers(t, `
const { text } = require('moebius');
module.exports = {
  route(message) {
    const env = message.envelope === null ? null : message.envelope.map(text);
    return { handler: (c) => c.send(JSON.stringify({ env, text: message.text, frames: message.frames.length })) };
  },
};`))
	c := dial(t, s.addr, "route-env", false)
	cases := []struct {
		frames []string
		want   string
	}{
		{[]string{"plain"}, `{"env":null,"text":"plain","frames":1}`},
		{[]string{"", "req"}, `{"env":[],"text":"req","frames":1}`},
		{[]string{"hop1", "hop2", "", "proxied", "second"}, `{"env":["hop1","hop2"],"text":"proxied","frames":2}`},
	}
	for _, tc := range cases {
		c.send(tc.frames...)
		got := c.recv()
		reply := got[len(got)-1]
		var a, b any
		if json.Unmarshal(reply, &a) != nil || json.Unmarshal([]byte(tc.want), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("route saw %s for %q, want %s", reply, tc.frames, tc.want)
		}
		wantEnv := tc.frames[:countEnvelope(tc.frames)]
		if len(got)-1 != len(wantEnv) {
			t.Fatalf("reply to %q has frames %q, want the envelope %q first", tc.frames, got, wantEnv)
		}
		for k, f := range wantEnv {
			if string(got[k]) != f {
				t.Fatalf("reply to %q has frames %q, want the envelope %q first", tc.frames, got, wantEnv)
			}
		}
	}
}

// countEnvelope is how many leading frames form the envelope: up to and
// including the first empty one, or none.
func countEnvelope(frames []string) int {
	for i, f := range frames {
		if f == "" {
			return i + 1
		}
	}
	return 0
}

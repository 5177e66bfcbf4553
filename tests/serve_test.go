package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestThreeClientsEachGetTheirOwnReply(t *testing.T) {
	srv := startServer(t, "../handlers.js")
	var clients []*client
	for i := 0; i < 3; i++ {
		clients = append(clients, dial(t, srv.addr, fmt.Sprintf("Client%d", i), false))
	}
	for _, c := range clients {
		c.send(`{"command":"reply"}`)
	}
	for _, c := range clients {
		if got, want := c.recvText(), "Reply to "+c.id; got != want {
			t.Errorf("%s got %q, want %q", c.id, got, want)
		}
	}
}

func TestREQClientIsServed(t *testing.T) {
	srv := startServer(t, "../handlers.js")
	c := dial(t, srv.addr, "", true)
	if got := c.roundTrip(`{"command":"echo","n":1}`); got != `{"command":"echo","n":1}` {
		t.Fatalf("got %q", got)
	}
	if got := c.roundTrip(`{"command":"count"}`); got != `{"count":1}` {
		t.Fatalf("got %q", got)
	}
}

func TestStrategiesWithThreeRequestsInARow(t *testing.T) {
	srv := startServer(t, "testdata/features.js")
	for _, tc := range []struct {
		strategy string
		want     []string
	}{
		{"queue", []string{"t1", "t2", "t3"}},
		{"ignore", []string{"t1"}},
		{"replace", []string{"t3"}},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			c := dial(t, srv.addr, "strategy-"+tc.strategy, false)
			for _, tag := range []string{"t1", "t2", "t3"} {
				c.send(fmt.Sprintf(`{"command":%q,"tag":%q}`, tc.strategy, tag))
			}
			// A queued echo runs only after whatever the tagged requests
			// left behind has finished: it marks the end of their replies.
			c.send(`{"command":"echo","marker":true}`)
			var got []string
			for {
				r := c.recvText()
				if strings.Contains(r, "marker") {
					break
				}
				got = append(got, r)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("replies %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStreamOfThousandRepliesWhileOthersAreServed(t *testing.T) {
	srv := startServer(t, "testdata/features.js")
	a := dial(t, srv.addr, "streamer", false)
	b := dial(t, srv.addr, "other", false)
	// One reply a millisecond: the stream lasts over a second.
	a.send(`{"command":"stream","count":1000,"pause":1}`)
	if got := a.recvText(); got != "0" {
		t.Fatalf("first stream reply %q", got)
	}
	for i := 0; i < 3; i++ {
		if got := b.roundTrip(fmt.Sprintf(`{"command":"echo","i":%d}`, i)); !strings.Contains(got, fmt.Sprintf(`"i":%d`, i)) {
			t.Fatalf("b got %q", got)
		}
	}
	if arrived := 1 + a.pending(); arrived >= 1000 {
		t.Fatalf("b's requests were answered only after the stream ended (%d replies in)", arrived)
	}
	for i := 1; i < 1000; i++ {
		if got := a.recvText(); got != fmt.Sprint(i) {
			t.Fatalf("stream reply %d is %q", i, got)
		}
	}
}

func TestNestedGeneratorsReturnAndThrow(t *testing.T) {
	srv := startServer(t, "testdata/features.js")
	c := dial(t, srv.addr, "nest", false)
	if got, want := c.roundTrip(`{"command":"nested","key":"abc"}`), `{"value":"ABC","caught":"deep trouble"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestBadRequestsGetJSONErrorsAndServingGoesOn(t *testing.T) {
	srv := startServer(t, "testdata/features.js")
	c := dial(t, srv.addr, "errors", false)
	for _, tc := range []struct{ payload, code string }{
		{`this is not json`, "invalid_json"},
		{`{"no":"command"}`, "missing_command"},
		{`{"command":"launch"}`, "unknown_command"},
		{`{"command":"boom"}`, "handler_error"},
	} {
		var r struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		raw := c.roundTrip(tc.payload)
		if err := json.Unmarshal([]byte(raw), &r); err != nil || r.Error.Code != tc.code || r.Error.Message == "" {
			t.Errorf("%s -> %s, want error code %s", tc.payload, raw, tc.code)
		}
	}
	if got := c.roundTrip(`{"command":"echo"}`); got != `{"command":"echo"}` {
		t.Fatalf("after the errors: %q", got)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`at boom \(\S*features\.js:\d+:\d+\)`), 5*time.Second)
}

func TestClientStateIsKeptPerClient(t *testing.T) {
	srv := startServer(t, "testdata/features.js")
	a := dial(t, srv.addr, "state-a", false)
	b := dial(t, srv.addr, "state-b", false)
	a.roundTrip(`{"command":"remember","set":"apple"}`)
	b.roundTrip(`{"command":"remember","set":"banana"}`)
	if got := a.roundTrip(`{"command":"remember"}`); got != `{"value":"apple"}` {
		t.Fatalf("a got %s", got)
	}
	if got := b.roundTrip(`{"command":"remember"}`); got != `{"value":"banana"}` {
		t.Fatalf("b got %s", got)
	}
	fresh := dial(t, srv.addr, "state-c", false)
	if got := fresh.roundTrip(`{"command":"remember"}`); got != `{"value":null}` {
		t.Fatalf("a new client got %s", got)
	}
}

func TestBroadcastReachesExactlyTheClientsTheFilterAccepts(t *testing.T) {
	srv := startServer(t, "testdata/features.js")
	subs := []*client{dial(t, srv.addr, "sub1", false), dial(t, srv.addr, "sub2", false)}
	others := []*client{dial(t, srv.addr, "quiet1", false), dial(t, srv.addr, "quiet2", false)}
	for _, s := range subs {
		if got := s.roundTrip(`{"command":"subscribe"}`); got != "subscribed" {
			t.Fatalf("subscribe: %q", got)
		}
	}
	if got := others[0].roundTrip(`{"command":"announce","text":"news"}`); got != "announced" {
		t.Fatalf("announce: %q", got)
	}
	for _, s := range subs {
		if got := s.recvText(); got != "news" {
			t.Fatalf("%s got %q", s.id, got)
		}
	}
	// Each quiet client's next reply is the echo it asks for now: the
	// broadcast, sent before, would have arrived first.
	for _, o := range others {
		if got := o.roundTrip(`{"command":"echo"}`); got != `{"command":"echo"}` {
			t.Fatalf("%s received %q, which the filter should have kept from it", o.id, got)
		}
	}
}

func TestCustomRouteServesRawREQHelloWorld(t *testing.T) {
	srv := startServer(t, "testdata/raw.js")
	req := dial(t, srv.addr, "", true)
	for i := 0; i < 3; i++ {
		if got := req.roundTrip("Hello"); got != "World" {
			t.Fatalf("Hello -> %q", got)
		}
	}
}

func TestMultipartBinaryRequestGetsByteExactMultipartReply(t *testing.T) {
	srv := startServer(t, "testdata/raw.js")
	c := dial(t, srv.addr, "binary", false)
	big := bytes.Repeat([]byte{0xAB, 0x00}, 300)
	// An empty frame that is not followed by more is payload, not an
	// envelope's delimiter.
	c.sendBytes([]byte{0x00, 0xFF, 0x10}, big, []byte{})
	got := c.recv()
	want := [][]byte{{}, big, {0x00, 0xFF, 0x10}}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d = %x, want %x", i, got[i], want[i])
		}
	}
}

func TestSendCommandPrintsTheReply(t *testing.T) {
	srv := startServer(t, "../handlers.js")
	out, errOut, code := runCLI(t, "send", "--connect", srv.addr, "--identity", "cli", `{"command":"reply"}`)
	if code != 0 || strings.TrimSpace(out) != "Reply to cli" {
		t.Fatalf("send exited %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = runCLI(t, "send", "--connect", srv.addr, "--count", "4", `{"command":"stream","count":3}`)
	if code != 0 || out != "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"done\":3}\n" {
		t.Fatalf("stream via send: exit %d, %q", code, out)
	}
	out, _, code = runCLI(t, "send", "--connect", srv.addr, "--req", `{"command":"echo"}`)
	if code != 0 || strings.TrimSpace(out) != `{"command":"echo"}` {
		t.Fatalf("send --req: exit %d, %q", code, out)
	}
}

func TestDefaultHandlersTickSubscribersFromTheBackground(t *testing.T) {
	srv := startServer(t, "../handlers.js")
	out, errOut, code := runCLI(t, "send", "--connect", srv.addr, "--count", "3", `{"command":"subscribe"}`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || lines[0] != `{"subscribed":true}` ||
		!strings.HasPrefix(lines[1], `{"tick":`) || !strings.HasPrefix(lines[2], `{"tick":`) {
		t.Fatalf("subscribe: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Valid JSON that goja's own JSON.parse gets wrong reaches the handler as
// the language's JSON.parse makes it: a lone surrogate escape stays one
// (and goes back escaped), a number past float64's range is Infinity.
func TestPayloadsParseAsJSONParseDoes(t *testing.T) {
	srv := startServer(t, writeHandlers(t, `
module.exports = { rules: [
  { command: 'echo', handler: (c, d) => c.send(d) },
  { command: 'inspect', handler: (c, d) => c.send({ length: d.s.length, unit: d.s.charCodeAt(0), n: String(d.n) }) },
] };`))
	c := dial(t, srv.addr, "json", false)
	for _, tc := range []struct{ request, want string }{
		{`{"command":"echo","s":"\udc00x"}`, `{"command":"echo","s":"\udc00x"}`},
		{`{"command":"inspect","s":"\udc00x","n":1e400}`, `{"length":2,"unit":56320,"n":"Infinity"}`},
		{`{"command":"inspect","s":"\ud83d\ude00","n":-1e400}`, `{"length":2,"unit":55357,"n":"-Infinity"}`},
	} {
		if got := c.roundTrip(tc.request); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.request, got, tc.want)
		}
	}
}

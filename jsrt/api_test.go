package jsrt_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

const basics = `
const { sleep, server, text, bytes, TimeoutError, ClientGoneError, log } = require('moebius');

function echo(client, data) { client.send(data); }

function* reply(client, data) {
  yield sleep(50);
  client.send('Reply to ' + client.id);
}

function* stream(client, data) {
  for (let i = 0; i < data.count; i++) { client.send({ i }); yield; }
}

function* lookup(key) { yield sleep(1); return key.toUpperCase(); }
function* failing() { yield; throw new Error('inner failure'); }

function* nested(client, data) {
  const key = yield lookup(data.key);
  try { yield failing(); } catch (e) { client.send({ key, caught: e.message }); }
}

function boom() { throw new Error('sync boom'); }
function* lateBoom() { yield; null.x; }

function count(client) {
  client.state.n = (client.state.n || 0) + 1;
  client.send({ n: client.state.n });
}

function shout(client, data) {
  client.broadcast(data.msg, (c) => c.state.n > 0);
}

function kinds(client) {
  client.send('str');
  client.send(new Uint8Array([0, 1, 255]));
  client.send(new Uint8Array([7, 8]).buffer);
  client.send(42);
  client.send(null);
  client.send([1, 'a']);
  client.send('a', bytes('b'), { c: 1 });
}

function misc(client) {
  const other = server.client(client.id);
  client.send({ same: other !== null, missing: server.client('nobody') === null,
    roundTrip: text(bytes('héllo')), isTimeout: new TimeoutError('x') instanceof Error,
    n: server.clients().length });
}

function badSends(client) {
  const errs = [];
  for (const f of [() => client.send(), () => client.send(undefined), () => client.send(() => 1)]) {
    try { f(); errs.push('no error'); } catch (e) { errs.push(e.constructor.name); }
  }
  client.send(errs);
}

function* forgetsCall(client) { yield lookup; client.send('unreachable'); }
function* badSleep(client) { try { yield sleep(-1); } catch (e) { client.send(e.message); } }

module.exports = {
  rules: [
    { command: 'echo', handler: echo },
    { command: 'reply', handler: reply },
    { command: 'stream', handler: stream },
    { command: 'nested', handler: nested },
    { command: 'boom', handler: boom },
    { command: 'lateBoom', handler: lateBoom },
    { command: 'count', handler: count },
    { command: 'shout', handler: shout },
    { command: 'kinds', handler: kinds },
    { command: 'misc', handler: misc },
    { command: 'badSends', handler: badSends },
    { command: 'forgetsCall', handler: forgetsCall },
    { command: 'badSleep', handler: badSleep },
  ],
};
`

func TestPlainFunctionHandlerRepliesAtOnce(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("c1")
	e.send("c1", `{"command":"echo","x":[1,2]}`)
	if got, want := e.reply("c1", 1), `{"command":"echo","x":[1,2]}`; got != want {
		t.Fatalf("reply %s, want %s", got, want)
	}
}

func TestGeneratorSleepsThenReplies(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	for _, id := range []string{"A", "B", "C"} {
		e.connect(id)
	}
	begin := time.Now()
	for _, id := range []string{"A", "B", "C"} {
		e.send(id, `{"command":"reply"}`)
	}
	for _, id := range []string{"A", "B", "C"} {
		if got := e.reply(id, 1); got != "Reply to "+id {
			t.Fatalf("%s got %q", id, got)
		}
	}
	if el := time.Since(begin); el < 50*time.Millisecond {
		t.Fatalf("replies after %v, before the 50ms sleep", el)
	}
}

func TestStreamSendsAllRepliesInOrder(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("s")
	e.send("s", `{"command":"stream","count":500}`)
	got := e.replies("s", 500)
	for i, r := range got {
		var v struct{ I int }
		if err := json.Unmarshal([]byte(r), &v); err != nil || v.I != i {
			t.Fatalf("reply %d is %s", i, r)
		}
	}
}

func TestNestedGeneratorReturnsValueAndThrowsIntoParent(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("n")
	e.send("n", `{"command":"nested","key":"abc"}`)
	if got, want := e.reply("n", 1), `{"key":"ABC","caught":"inner failure"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestErrorRepliesAndServerGoesOn(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("e")
	cases := []struct{ payload, code, msgPart string }{
		{`not json`, "invalid_json", "not JSON"},
		{`{"x":1}`, "missing_command", "command"},
		{`[1,2]`, "missing_command", "command"},
		{`{"command":"nope"}`, "unknown_command", `"nope"`},
		{`{"command":"boom"}`, "handler_error", "Error: sync boom"},
		{`{"command":"lateBoom"}`, "handler_error", "TypeError"},
	}
	for i, tc := range cases {
		e.send("e", tc.payload)
		var r struct {
			Error struct{ Code, Message string }
		}
		raw := e.reply("e", i+1)
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatalf("%s: reply %s is not JSON", tc.payload, raw)
		}
		if r.Error.Code != tc.code || !strings.Contains(r.Error.Message, tc.msgPart) {
			t.Errorf("%s: got %s, want code %s with %q", tc.payload, raw, tc.code, tc.msgPart)
		}
	}
	e.send("e", `{"command":"echo"}`)
	if got := e.reply("e", len(cases)+1); got != `{"command":"echo"}` {
		t.Fatalf("after errors, echo replied %s", got)
	}
	e.waitLog("handlers.js:") // the JS stack with file:line:col
	if !strings.Contains(e.logs.String(), "at boom (") {
		t.Fatalf("log lacks the JS stack of the throwing handler:\n%s", e.logs.String())
	}
}

func TestClientStatePersistsPerClient(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("a")
	e.connect("b")
	for i := 0; i < 3; i++ {
		e.send("a", `{"command":"count"}`)
	}
	e.send("b", `{"command":"count"}`)
	if got := e.replies("a", 3); got[2] != `{"n":3}` {
		t.Fatalf("a's third count: %v", got)
	}
	if got := e.reply("b", 1); got != `{"n":1}` {
		t.Fatalf("b's first count: %s", got)
	}
}

func TestBroadcastReachesExactlyTheFilteredClients(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	for _, id := range []string{"in1", "in2", "out"} {
		e.connect(id)
	}
	e.send("in1", `{"command":"count"}`)
	e.send("in2", `{"command":"count"}`)
	e.reply("in1", 1)
	e.reply("in2", 1)
	e.send("out", `{"command":"shout","msg":"hi"}`)
	e.send("out", `{"command":"echo"}`) // queued after shout: a marker
	e.reply("out", 1)
	if got := e.replies("in1", 2)[1]; got != "hi" {
		t.Fatalf("in1 got %q", got)
	}
	if got := e.replies("in2", 2)[1]; got != "hi" {
		t.Fatalf("in2 got %q", got)
	}
	if got := e.out.messages("out"); len(got) != 1 || string(got[0][0]) != `{"command":"echo"}` {
		t.Fatalf("the unsubscribed client received %q", got)
	}
}

func TestSendConvertsEachKindOfValue(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("k")
	e.send("k", `{"command":"kinds"}`)
	e.replies("k", 7)
	got := e.out.messages("k")
	want := [][]string{{"str"}, {"\x00\x01\xff"}, {"\x07\x08"}, {"42"}, {"null"}, {`[1,"a"]`}, {"a", "b", `{"c":1}`}}
	for i, w := range want {
		if len(got[i]) != len(w) {
			t.Fatalf("message %d has %d frames, want %d", i, len(got[i]), len(w))
		}
		for j := range w {
			if string(got[i][j]) != w[j] {
				t.Errorf("message %d frame %d = %q, want %q", i, j, got[i][j], w[j])
			}
		}
	}
}

func TestBadSendsThrow(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("k")
	e.send("k", `{"command":"badSends"}`)
	if got, want := e.reply("k", 1), `["TypeError","TypeError","TypeError"]`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestServerLookupsAndUTF8Helpers(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("m")
	e.connect("\x00\x01")
	e.send("m", `{"command":"misc"}`)
	if got, want := e.reply("m", 1), `{"same":true,"missing":true,"roundTrip":"héllo","isTimeout":true,"n":2}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestYieldingAGeneratorFunctionIsAnError(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("f")
	e.send("f", `{"command":"forgetsCall"}`)
	if got := e.reply("f", 1); !strings.Contains(got, "handler_error") || !strings.Contains(got, "TypeError: yielded a generator function") {
		t.Fatalf("got %s", got)
	}
}

func TestSleepRejectsBadDurations(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": basics})
	e.connect("s")
	e.send("s", `{"command":"badSleep"}`)
	if got := e.reply("s", 1); !strings.Contains(got, "sleep(ms)") {
		t.Fatalf("got %s", got)
	}
}

// Client methods live on a prototype all clients share, so a client's
// object stays small; a method taken off its client has no client to act
// for and says so, while a client that left still throws ClientGoneError.
func TestClientMethodsActForTheClientTheyAreCalledOn(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
const { sleep } = require('moebius');
let parked;
module.exports = { rules: [
  { command: 'detached', handler: (c) => {
      const send = c.send;
      try { send('x'); } catch (e) { c.send(e.name + ': ' + e.message); }
      c.send(JSON.stringify({ keys: Object.keys(c), own: Object.prototype.hasOwnProperty.call(c, 'send') }));
  } },
  { command: 'park', handler: function* (c) { parked = c; c.send('parked'); yield sleep(3600000); } },
  { command: 'other', handler: (c, d, m) => {
      try { parked.send('late'); } catch (e) { c.send(e.name); }
      Object.getPrototypeOf(c).send.call(parked === c ? null : c, 'via call');
  } },
]};`})
	e.connect("a")
	e.send("a", `{"command":"detached"}`)
	if got, want := e.reply("a", 1), "TypeError: client.send must be called on a client object, as client.send(...)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, want := e.reply("a", 2), `{"keys":["id","publicKey","state"],"own":false}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	e.connect("gone")
	e.send("gone", `{"command":"park"}`)
	if got := e.reply("gone", 1); got != "parked" {
		t.Fatalf("got %q", got)
	}
	e.disconnect("gone")
	e.send("a", `{"command":"other"}`)
	if got := e.reply("a", 3); got != "ClientGoneError" {
		t.Fatalf("a send to a client that left threw %q, want ClientGoneError", got)
	}
	if got := e.reply("a", 4); got != "via call" {
		t.Fatalf("got %q", got)
	}
}

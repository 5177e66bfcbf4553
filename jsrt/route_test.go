package jsrt_test

import (
	"strings"
	"testing"

	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/jsrt"
)

const rawProtocol = `
const { text } = require('moebius');
function hello(client, data, message) { client.send(data === 'Hello' ? 'World' : 'What?'); }
function mirror(client, data, message) {
  // reply with the frames reversed, byte for byte
  client.send(...message.frames.slice().reverse());
}
module.exports = {
  route(message, client) {
    if (message.frames.length > 1) return { handler: mirror, data: null };
    if (message.text === 'drop') return null;
    if (message.text === 'throw') throw new Error('cannot route that');
    return { handler: hello };
  },
};
`

func TestCustomRouteServesARawProtocol(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": rawProtocol})
	e.connect("r")
	e.send("r", "Hello")
	if got := e.reply("r", 1); got != "World" {
		t.Fatalf("Hello -> %q", got)
	}
	e.host.Message("r", e.conn["r"], nil, [][]byte{{0, 1, 2}, {}, {0xff, 0xfe}}, flow.Hold{})
	e.replies("r", 2)
	m := e.out.messages("r")[1]
	want := [][]byte{{0xff, 0xfe}, {}, {0, 1, 2}}
	if len(m) != 3 {
		t.Fatalf("mirror reply has %d frames", len(m))
	}
	for i := range want {
		if string(m[i]) != string(want[i]) {
			t.Fatalf("frame %d = %x, want %x", i, m[i], want[i])
		}
	}
	e.send("r", "drop")
	e.send("r", "throw")
	got := e.replies("r", 4)
	if !strings.Contains(got[2], `"no_route"`) || !strings.Contains(got[3], "cannot route that") {
		t.Fatalf("unroutable replies: %v", got[2:])
	}
}

const hooks = `
function boom() { throw new Error('kaboom'); }
module.exports = {
  rules: [{ command: 'boom', handler: boom }],
  onMessageError(client, message, error) {
    if (message.text === 'hookthrows') throw new Error('hook failed');
    client.send({ mine: error.code, text: message.text });
  },
  onStepError(client, error) { client.send({ step: error.message }); },
};
`

func TestErrorHooksReplaceTheDefaultReply(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": hooks})
	e.connect("h")
	e.send("h", `{"command":"zzz"}`)
	e.send("h", `{"command":"boom"}`)
	e.send("h", `hookthrows`)
	got := e.replies("h", 3)
	want := []string{`{"mine":"unknown_command","text":"{\"command\":\"zzz\"}"}`, `{"step":"kaboom"}`}
	if got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("hook replies %v, want %v", got[:2], want)
	}
	if !strings.Contains(got[2], `"invalid_json"`) {
		t.Fatalf("a throwing hook must fall back to the default reply, got %s", got[2])
	}
	e.waitLog("hook failed")
}

const modular = `
const lib = require('./lib/util.js');
console.log('loading handlers', 42);
module.exports = { rules: [{ command: 'up', handler: (c, d) => c.send(lib.up(d.s)) }] };
`

func TestRequireResolvesNextToTheFileAndConsoleLogs(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{
		"handlers.js": modular,
		"lib/.keep":   "",
		"lib/util.js": `exports.up = (s) => s.toUpperCase();`,
	})
	e.connect("m")
	e.send("m", `{"command":"up","s":"abc"}`)
	if got := e.reply("m", 1); got != "ABC" {
		t.Fatalf("got %q", got)
	}
	e.waitLog("loading handlers 42")
	files := e.host.Files()
	if len(files) != 2 || !strings.HasSuffix(files[1], "lib/util.js") {
		t.Fatalf("Files() = %v, want handlers.js and lib/util.js", files)
	}
}

package jsrt_test

import (
	"cmp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

func TestLoadErrorsNameFileLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      string // regexp
		file      string // the handlers file's name: handlers.js when ""
	}{
		{"syntax error", "module.exports = {\n  rules: [\n    { command: 'x' handler: 1 },\n]};\n", `handlers\.js:3:\d+: SyntaxError`, ""},
		{"top-level throw", "const a = 1;\nnull.boom;\nmodule.exports = {};\n", `handlers\.js:2:\d+: TypeError`, ""},
		{"missing require", "require('./nope.js');\n", `nope`, ""},
		{"no rules nor route", "module.exports = {};\n", `handlers\.js: module\.exports has neither rules nor route`, ""},
		{"bad strategy", "module.exports = { rules: [{ command: 'a', handler() {}, strategy: 'drop' }] };", `rules\[0\]\.strategy: unknown strategy "drop"`, ""},
		{"handler not a function", "module.exports = { rules: [{ command: 'a', handler: 3 }] };", `rules\[0\]\.handler must be a function`, ""},
		{"duplicate command", "module.exports = { rules: [{ command: 'a', handler() {} }, { command: 'a', handler() {} }] };", `command "a" appears twice`, ""},
		{"export syntax", "export default {};\n", `handlers\.js:1:\d+: SyntaxError`, ""},
		{"runaway top level", "for (;;) {}\n", `took longer than`, ""},
		{"worker state at load", "require('moebius').server.clients();\n", `not available while handlers\.js is loading`, ""},
		// TypeScript: the types above move nothing (the source map).
		{"ts syntax error", "type A = { a: number };\nconst x: A = { a: 1 ;\nexport const rules = [];\n", `handlers\.ts:2:\d+: SyntaxError`, "handlers.ts"},
		{"ts top-level throw", "interface I { n: number }\nconst i: I = { n: 1 };\n(null as any).boom;\nexport const rules = [];\n", `handlers\.ts:3:\d+: TypeError`, "handlers.ts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, cmp.Or(tc.file, "handlers.js"))
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := jsrt.New(jsrt.Config{Handlers: path, StepBudget: 100 * time.Millisecond})
			if err == nil {
				t.Fatal("loaded without error")
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("error %q does not match %q", err, tc.want)
			}
		})
	}
}

func TestLoadFailsForAMissingFile(t *testing.T) {
	_, err := jsrt.New(jsrt.Config{Handlers: filepath.Join(t.TempDir(), "absent.js")})
	if err == nil || !strings.Contains(err.Error(), "absent.js") {
		t.Fatalf("error %v", err)
	}
}

const genV1 = `
const { sleep } = require('moebius');
function* slow(client) { client.send('started'); yield sleep(300); client.send('slow v1'); }
function count(client) { client.state.n = (client.state.n || 0) + 1; client.send('v1 n=' + client.state.n); }
module.exports = { rules: [{ command: 'slow', handler: slow }, { command: 'count', handler: count }] };
`

const genV2 = `
function count(client) { client.state.n = (client.state.n || 0) + 1; client.send('v2 n=' + client.state.n); }
function fresh(client) { client.send('fresh'); }
module.exports = { rules: [{ command: 'count', handler: count }, { command: 'fresh', handler: fresh }] };
`

func TestReloadSwapsCodeKeepsInflightWorkAndState(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": genV1})
	e.connect("a")
	e.connect("b")
	e.send("a", `{"command":"count"}`)
	if got := e.reply("a", 1); got != "v1 n=1" {
		t.Fatalf("got %q", got)
	}
	e.send("b", `{"command":"slow"}`) // in flight across the reload
	e.reply("b", 1)
	e.write("handlers.js", genV2)
	if err := e.host.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if e.host.Generation() != 2 {
		t.Fatalf("generation %d after one reload", e.host.Generation())
	}
	e.send("a", `{"command":"count"}`)
	e.send("a", `{"command":"fresh"}`)
	got := e.replies("a", 3)
	if got[1] != "v2 n=2" || got[2] != "fresh" {
		t.Fatalf("after reload a got %v; want new code with carried-over state", got)
	}
	if got := e.reply("b", 2); got != "slow v1" {
		t.Fatalf("in-flight generator finished as %q, want it to end on the old code", got)
	}
}

func TestBrokenReloadKeepsServingTheOldCode(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": genV1})
	e.connect("a")
	e.write("handlers.js", "module.exports = { rules: [ oops ] ;\n")
	err := e.host.Reload()
	if err == nil || !strings.Contains(err.Error(), "handlers.js:1:") {
		t.Fatalf("reload error %v, want file:line:col", err)
	}
	e.waitLog("reload failed")
	e.send("a", `{"command":"count"}`)
	if got := e.reply("a", 1); got != "v1 n=1" {
		t.Fatalf("got %q", got)
	}
}

func TestWatcherReloadsWhenTheFileIsReplacedByRename(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": genV1})
	stop, err := e.host.Watch(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// Save the way editors do: write a temporary file, rename it over.
	tmp := filepath.Join(e.dir, ".handlers.js.swp")
	if err := os.WriteFile(tmp, []byte(genV2), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.file); err != nil {
		t.Fatal(err)
	}
	e.waitLog("gen=2")
	e.connect("a")
	e.send("a", `{"command":"fresh"}`)
	if got := e.reply("a", 1); got != "fresh" {
		t.Fatalf("got %q", got)
	}
}

func TestWatcherReloadsWhenARequiredFileChanges(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{
		"handlers.js": `const v = require('./lib/version.js');
module.exports = { rules: [{ command: 'v', handler: (c) => c.send(v.name) }] };`,
		"lib/version.js": `exports.name = 'one';`,
	})
	stop, err := e.host.Watch(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	e.connect("a")
	e.send("a", `{"command":"v"}`)
	if got := e.reply("a", 1); got != "one" {
		t.Fatalf("got %q", got)
	}
	tmp := filepath.Join(e.dir, "lib", ".version.js.swp")
	if err := os.WriteFile(tmp, []byte(`exports.name = 'two';`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, "lib", "version.js")); err != nil {
		t.Fatal(err)
	}
	e.waitLog("gen=2")
	e.send("a", `{"command":"v"}`)
	if got := e.reply("a", 2); got != "two" {
		t.Fatalf("after editing the required file: %q", got)
	}
}

// A reload whose new code opened a dealer() at the top and then failed
// closes that dealer on its worker's goroutine, where its replies are
// delivered: under -race, closing it on the reloading goroutine while a
// reply arrives is a data race.
func TestAFailedReloadClosesWhatItsTopLevelOpenedOnTheWorker(t *testing.T) {
	d := newStuckDialer(t) // counts what is opened and closed
	e := start(t, jsrt.Config{Dialer: d}, map[string]string{"handlers.js": `
module.exports = { rules: [{ command: 'echo', handler: (c, d) => c.send(d) }] };`})
	e.connect("c")
	for i := 0; i < 20; i++ {
		e.write("handlers.js", `
const { dealer } = require('moebius');
const up = dealer('tcp://multi');
for (let i = 0; i < 50; i++) up.send('x');
throw new Error('broken on purpose');`)
		if err := e.host.Reload(); err == nil {
			t.Fatal("a reload of a throwing file succeeded")
		}
	}
	e.send("c", `{"command":"echo"}`)
	if got := e.reply("c", 1); got != `{"command":"echo"}` {
		t.Fatalf("the old code does not serve: %q", got)
	}
	d.waitClosed(t, "tcp://multi", 20)
	if opened, closed := d.counts("tcp://multi"); opened != 20 || closed != 20 {
		t.Fatalf("failed reloads opened %d dealers and closed %d; want 20 and 20", opened, closed)
	}
}

// A reload evaluates the new code on each worker's goroutine, without a
// lock the transport's callbacks take: a connection that arrives while the
// top-level code runs (here it blocks in a dial until the test lets it go)
// is taken at once, served by the code live when it starts, and by the
// new code once the reload has made it live.
func TestNewConnectionsAreNotHeldUpByAReloadThatIsEvaluating(t *testing.T) {
	d := newStuckDialer(t)
	e := start(t, jsrt.Config{Dialer: d, Workers: 1}, map[string]string{"handlers.js": `
module.exports = { rules: [{ command: 'ping', handler: (c) => c.send('v1') }] };`})
	e.write("handlers.js", `
const { dealer, log } = require('moebius');
log.info('evaluating v2');
dealer('tcp://stuck-at-load');
module.exports = { rules: [{ command: 'ping', handler: (c) => c.send('v2') }] };`)
	reloaded := make(chan error, 1)
	go func() { reloaded <- e.host.Reload() }()
	e.waitLog("evaluating v2")

	arrived := make(chan struct{})
	go func() {
		e.connect("newcomer")
		e.send("newcomer", `{"command":"ping"}`)
		close(arrived)
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		d.unblock("tcp://stuck-at-load")
		t.Fatal("Connected and Message waited for the reload's top-level code")
	}
	d.unblock("tcp://stuck-at-load")
	if err := <-reloaded; err != nil {
		t.Fatalf("reload: %v", err)
	}
	// Whether it started before the new code was made live, or was routed
	// again on it when it started, is the scheduler's turn to decide.
	if got := e.reply("newcomer", 1); got != "v1" && got != "v2" {
		t.Fatalf("newcomer got %q, want a reply of either generation", got)
	}
	e.send("newcomer", `{"command":"ping"}`)
	if got := e.reply("newcomer", 2); got != "v2" {
		t.Fatalf("newcomer got %q after the reload, want the new code's reply", got)
	}
}

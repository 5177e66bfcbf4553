package testkit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moebius-js/moebius-js/testkit"
)

// writeFiles writes each name → content into dir (names may have
// folders) and returns dir.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(content), 0o644))
	}
	return dir
}

// run runs files and returns the summary and the report.
func run(files []string, opts testkit.Options) (testkit.Summary, string) {
	var out strings.Builder
	opts.Out = &out
	sum := testkit.Run(files, opts)
	return sum, out.String()
}

// lineOf returns the 1-based number of the only line of text that
// contains needle.
func lineOf(t *testing.T, text, needle string) int {
	t.Helper()
	found := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, needle) {
			if found != 0 {
				t.Fatalf("%q is on lines %d and %d", needle, found, i+1)
			}
			found = i + 1
		}
	}
	if found == 0 {
		t.Fatalf("%q is on no line", needle)
	}
	return found
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

// testNames lists the names a test file gives test('…', …).
func testNames(src string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^test\('([^']+)'`).FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	return names
}

func TestTheShopExamplePasses(t *testing.T) {
	const file = "../examples/shop.test.js"
	sum, out := run([]string{file}, testkit.Options{})
	if sum != (testkit.Summary{Passed: 8}) {
		t.Fatalf("summary %+v, want 8 passed\n%s", sum, out)
	}
	names := testNames(readFile(t, file))
	if len(names) != 8 {
		t.Fatalf("found %d test names in %s, want 8: %q", len(names), file, names)
	}
	for _, name := range names {
		if !strings.Contains(out, "  ok    "+name+" (") {
			t.Errorf("the listing does not say %q is ok\n%s", name, out)
		}
	}
	if !strings.Contains(out, "(handlers ../examples/shop.js)") {
		t.Errorf("the listing does not name shop.js as the handlers\n%s", out)
	}
	if !strings.Contains(out, "8 tests: 8 passed, 0 failed, 0 skipped") {
		t.Errorf("no totals line\n%s", out)
	}
}

func TestABrokenAssertionInTheShopExampleIsReportedAtItsLine(t *testing.T) {
	dir := t.TempDir()
	handlers := readFile(t, "../examples/shop.js")
	tests := readFile(t, "../examples/shop.test.js")
	const good = "assert.deepEqual(ann.take(), { hello: 'ann' });"
	const bad = "assert.deepEqual(ann.take(), { hello: 'bob' });"
	if strings.Count(tests, good) != 1 {
		t.Fatalf("shop.test.js has %d copies of %q, want 1", strings.Count(tests, good), good)
	}
	tests = strings.Replace(tests, good, bad, 1)
	writeFiles(t, dir, map[string]string{"shop.js": handlers, "shop.test.js": tests})
	file := filepath.Join(dir, "shop.test.js")
	line := lineOf(t, tests, bad)

	sum, out := run([]string{file}, testkit.Options{})
	if sum != (testkit.Summary{Passed: 7, Failed: 1}) {
		t.Fatalf("summary %+v, want 7 passed and 1 failed\n%s", sum, out)
	}
	for _, want := range []string{
		"  FAIL  hello greets the client by its id\n",
		`AssertionError: expected {"hello":"bob"}, got {"hello":"ann"}`,
		fmt.Sprintf("at %s:%d:", file, line),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "  ok    hello greets") {
		t.Errorf("the broken test is also listed as ok\n%s", out)
	}
}

func TestTAPReportsEachResultAndThePlan(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"a.js": `module.exports = { rules: [{ command: 'ping', handler: (c) => c.send('pong') }] };`,
		"a.test.js": `const { test, assert } = require('moebius/test');
test('ping is answered', (t) => {
  const c = t.connect('c');
  c.send({ command: 'ping' });
  assert.equal(c.take(), 'pong');
});
test('ping is answered twice', (t) => {
  const c = t.connect('c');
  c.send({ command: 'ping' });
  assert.equal(c.received().length, 2, 'want two "pongs"');
});
test.skip('not yet', (t) => { assert.fail('ran'); });
`,
		"b.test.js": `const { test, assert } = require('moebius/test');
test('b passes', (t) => { assert.ok(true); });
`,
	})
	files := []string{filepath.Join(dir, "a.test.js"), filepath.Join(dir, "b.test.js")}
	failLine := lineOf(t, readFile(t, files[0]), "want two")
	sum, out := run(files, testkit.Options{TAP: true, Handlers: filepath.Join(dir, "a.js")})
	if sum != (testkit.Summary{Passed: 2, Failed: 1, Skipped: 1}) {
		t.Fatalf("summary %+v\n%s", sum, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "TAP version 13" {
		t.Fatalf("first line %q, want TAP version 13\n%s", lines[0], out)
	}
	for _, want := range []string{
		"ok 1 - ping is answered\n",
		"not ok 2 - ping is answered twice\n" +
			"  ---\n" +
			"  message: \"AssertionError: want two \\\"pongs\\\"\"\n  at: ",
		fmt.Sprintf("  at: \"%s:%d:", files[0], failLine),
		"\"\n  ...\nok 3 - not yet # SKIP\n",
		"ok 4 - b passes\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the TAP lacks %q\n%s", want, out)
		}
	}
	// The plan comes after every result, and counts them.
	results, plan := 0, -1
	for i, l := range lines {
		if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "not ok ") {
			results++
			if plan >= 0 {
				t.Errorf("result %q after the plan", l)
			}
		}
		if regexp.MustCompile(`^1\.\.\d+$`).MatchString(l) {
			if plan >= 0 {
				t.Errorf("a second plan %q", l)
			}
			plan = i
		}
	}
	if plan < 0 {
		t.Fatalf("no plan\n%s", out)
	}
	if want := fmt.Sprintf("1..%d", results); lines[plan] != want || results != 4 {
		t.Errorf("plan %q after %d results, want 1..4", lines[plan], results)
	}
	for _, l := range lines[plan+1:] {
		if !strings.HasPrefix(l, "#") {
			t.Errorf("after the plan, %q is not a comment", l)
		}
	}
}

const tsHandlers = `import { sleep } from 'moebius';

interface Order {
  sku: string;
  qty: number;
}

type Reply = { sku: string; total: number };

const prices: Record<string, number> = { tea: 3 };

export function* order(client: any, data: Order): Generator<unknown, void, unknown> {
  yield sleep(10);
  const reply: Reply = { sku: data.sku, total: prices[data.sku] * data.qty };
  client.send(reply);
}

export const rules = [{ command: 'order', handler: order }];
`

const tsTests = `import { test, assert } from 'moebius/test';

interface Client {
  send(...frames: unknown[]): void;
  take(): unknown;
}

type Expected = {
  sku: string;
  total: number;
};

function order(c: Client, sku: string, qty: number): void {
  c.send({ command: 'order', sku, qty });
}

test('an order is priced after 10 ms', (t) => {
  const c: Client = t.connect('ann');
  order(c, 'tea', 2);
  t.advance(10);
  const want: Expected = { sku: 'tea', total: 6 };
  assert.deepEqual(c.take(), want);
});

test('a wrong total fails on its own line', (t) => {
  const c: Client = t.connect('ann');
  order(c, 'tea', 1);
  t.advance(10);
  const want: Expected = { sku: 'tea', total: 4 };
  assert.deepEqual(c.take(), want /* the failing line */);
});
`

func TestTypeScriptTestsRunAndReportTheirOwnLines(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{"shop.ts": tsHandlers, "shop.test.ts": tsTests})
	file := filepath.Join(dir, "shop.test.ts")
	if got := testkit.HandlersFor(file, "handlers.js"); got != filepath.Join(dir, "shop.ts") {
		t.Fatalf("handlers for %s: %s", file, got)
	}
	line := lineOf(t, tsTests, "the failing line")
	sum, out := run([]string{file}, testkit.Options{})
	if sum != (testkit.Summary{Passed: 1, Failed: 1}) {
		t.Fatalf("summary %+v, want 1 passed and 1 failed\n%s", sum, out)
	}
	for _, want := range []string{
		"  ok    an order is priced after 10 ms (",
		"  FAIL  a wrong total fails on its own line\n",
		`expected {"sku":"tea","total":4}, got {"sku":"tea","total":3}`,
		fmt.Sprintf("at %s:%d:", file, line),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q\n%s", want, out)
		}
	}
}

// goodFiles is a test file (and its handlers) that passes, run after each
// broken one to show that the run goes on.
var goodFiles = map[string]string{
	"good.js":      `module.exports = { rules: [{ command: 'ping', handler: (c) => c.send('pong') }] };`,
	"good.test.js": "const { test, assert } = require('moebius/test');\ntest('good: ping', (t) => { const c = t.connect('c'); c.send({ command: 'ping' }); assert.equal(c.take(), 'pong'); });\n",
}

const okHandlers = `const { request } = require('moebius');
module.exports = { rules: [
  { command: 'ping', handler: (c) => c.send('pong') },
  { command: 'ask', *handler(c) { c.send(yield request('tcp://prices:1', 'tea', { timeout: 100 })); } },
] };
`

func TestFailuresAreExplainedAndTheRunGoesOn(t *testing.T) {
	const passing = "\ntest('bad: passes after', (t) => { const c = t.connect('z'); c.send({ command: 'ping' }); assert.equal(c.take(), 'pong'); });\n"
	cases := []struct {
		name      string
		handlers  string // handlers.js, given as Options.Handlers
		file      string // the broken test file's name (bad.test.js when "")
		test      string // its text
		want      testkit.Summary
		failureRe string   // when set: the report matches it
		failure   []string // in the report
		atLineOf  string   // when set: the report says at bad.test.js:<the line holding it>:
		atHandler string   // when set: the report says handlers.js:<this>
	}{
		{
			name:      "a test file with a syntax error",
			handlers:  okHandlers,
			test:      "const { test, assert } = require('moebius/test');\n\ntest('never', (t) => {\n  assert.equal(1, 1;\n});\n",
			want:      testkit.Summary{Passed: 1, Failed: 1},
			failure:   []string{"  FAIL  load ", "SyntaxError"},
			failureRe: `at \S*bad\.test\.js:4:\d+`,
		},
		{
			name:      "a TypeScript test file with a syntax error",
			handlers:  okHandlers,
			file:      "bad.test.ts",
			test:      "import { test, assert } from 'moebius/test';\ntype N = number;\ntest('never', (t) => {\n  assert.equal(1 as N, 1;\n});\n",
			want:      testkit.Summary{Passed: 1, Failed: 1},
			failure:   []string{"  FAIL  load ", "SyntaxError"},
			failureRe: `at \S*bad\.test\.ts:4:\d+`,
		},
		{
			name:     "a test file that declares no tests",
			handlers: okHandlers,
			test:     "const { test, assert } = require('moebius/test');\n",
			want:     testkit.Summary{Passed: 1, Failed: 1},
			failure:  []string{"bad.test.js\n", "the file declares no tests"},
		},
		{
			name:      "a handlers file that does not load",
			handlers:  "const x = 1;\nmodule.exports = { rules: [] };\nnull.boom;\n",
			test:      "const { test, assert } = require('moebius/test');\ntest('one', (t) => {});\ntest('two', (t) => {});\n",
			want:      testkit.Summary{Passed: 1, Failed: 2},
			failure:   []string{"  FAIL  one\n", "  FAIL  two\n", "the handlers did not load"},
			atHandler: "3:",
		},
		{
			name:     "a test function that is a generator",
			handlers: okHandlers,
			test:     "const { test, assert } = require('moebius/test');\ntest('gen', function* (t) { assert.fail('ran'); });\n" + passing,
			want:     testkit.Summary{Passed: 2, Failed: 1},
			failure:  []string{"  FAIL  gen\n", "the test function is a generator"},
		},
		{
			name:     "a stub that throws",
			handlers: okHandlers,
			test: `const { test, assert } = require('moebius/test');
test('stub throws', (t) => {
  t.stub('tcp://prices:1', () => { throw new Error('prices exploded'); });
  const c = t.connect('c');
  c.send({ command: 'ask' });
});
test('the stub error is thrown by send', (t) => {
  t.stub('tcp://prices:1', () => { throw new Error('prices exploded again'); });
  const c = t.connect('c');
  assert.throws(() => c.send({ command: 'ask' }), /prices exploded/);
});
` + passing,
			want:     testkit.Summary{Passed: 3, Failed: 1},
			failure:  []string{"  FAIL  stub throws\n", "Error: prices exploded"},
			atLineOf: "throw new Error('prices exploded');", // where the stub threw
		},
		{
			name:     "take on a client that received nothing",
			handlers: okHandlers,
			test:     "const { test, assert } = require('moebius/test');\ntest('take', (t) => {\n  const ann = t.connect('ann');\n  ann.take();\n});\n" + passing,
			want:     testkit.Summary{Passed: 2, Failed: 1},
			failure:  []string{"  FAIL  take\n", `AssertionError: client "ann" has received nothing more (0 messages in all)`},
			atLineOf: "ann.take();",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), goodFiles)
			if tc.file == "" {
				tc.file = "bad.test.js"
			}
			writeFiles(t, dir, map[string]string{"handlers.js": tc.handlers, tc.file: tc.test})
			bad := filepath.Join(dir, tc.file)
			sum, out := run([]string{bad, filepath.Join(dir, "good.test.js")}, testkit.Options{Handlers: filepath.Join(dir, "handlers.js")})
			if sum != tc.want {
				t.Errorf("summary %+v, want %+v", sum, tc.want)
			}
			if !strings.Contains(out, "  ok    good: ping (") {
				t.Errorf("the next file did not run, or failed")
			}
			want := tc.failure
			if tc.atLineOf != "" {
				want = append(want, fmt.Sprintf("at %s:%d:", bad, lineOf(t, tc.test, tc.atLineOf)))
			}
			if tc.atHandler != "" {
				want = append(want, filepath.Join(dir, "handlers.js")+":"+tc.atHandler)
			}
			if tc.failureRe != "" && !regexp.MustCompile(tc.failureRe).MatchString(out) {
				t.Errorf("the report does not match %s", tc.failureRe)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("the report lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("report:\n%s", out)
			}
		})
	}
}

// TestKitFeatures runs a small handlers file and a test file over each
// feature of the kit; every test in them must pass.
func TestKitFeatures(t *testing.T) {
	cases := []struct {
		name     string
		handlers string
		tests    string
		passed   int
	}{
		{
			name: "strategies ignore and replace",
			handlers: `const { sleep } = require('moebius');
module.exports = { rules: [
  { command: 'slow', strategy: 'ignore', *handler(c, d) { yield sleep(100); c.send('slow ' + d.n); } },
  { command: 'latest', strategy: 'replace', *handler(c, d) {
      try { yield sleep(100); c.send('latest ' + d.n); }
      finally { c.state.ended = (c.state.ended || []).concat(d.n); }
  } },
  { command: 'ended', handler(c) { c.send(c.state.ended); } },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('ignore drops a request while one runs, and takes the next once it ended', (t) => {
  const c = t.connect('c');
  c.send({ command: 'slow', n: 1 });
  t.advance(50);
  c.send({ command: 'slow', n: 2 });
  t.advance(100);
  assert.deepEqual(c.received(), ['slow 1']);
  c.send({ command: 'slow', n: 3 });
  t.advance(100);
  assert.deepEqual(c.received(), ['slow 1', 'slow 3']);
});
test('replace cancels the running handler, running its finally', (t) => {
  const c = t.connect('c');
  c.send({ command: 'latest', n: 1 });
  t.advance(50);
  c.send({ command: 'latest', n: 2 });
  t.advance(99);
  assert.deepEqual(c.received(), []);
  t.advance(1);
  assert.deepEqual(c.take(), 'latest 2');
  c.send({ command: 'ended' });
  assert.deepEqual(c.take(), [1, 2]);
});
`,
			passed: 2,
		},
		{
			name: "nested generators",
			handlers: `const { sleep } = require('moebius');
function* double(x) { yield sleep(10); if (x > 100) throw new RangeError('too big: ' + x); return x * 2; }
function* twice(x) { const a = yield double(x); return (yield double(a)) + 1; }
module.exports = { rules: [
  { command: 'calc', *handler(c, d) {
      try { c.send({ r: yield twice(d.n) }); } catch (e) { c.send({ caught: e.name + ': ' + e.message }); }
  } },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('yield g() runs g to its end and resumes with its value', (t) => {
  const c = t.connect('c');
  c.send({ command: 'calc', n: 3 });
  t.advance(10);
  assert.equal(c.received().length, 0);
  t.advance(10);
  assert.deepEqual(c.take(), { r: 13 });
  assert.equal(t.now(), 20);
});
test('an error in a nested generator is thrown at the yield', (t) => {
  const c = t.connect('c');
  c.send({ command: 'calc', n: 60 });
  t.advance(20);
  assert.deepEqual(c.take(), { caught: 'RangeError: too big: 120' });
});
`,
			passed: 2,
		},
		{
			name: "server.spawn",
			handlers: `const { sleep, server } = require('moebius');
function* job(c, n) { yield sleep(n * 10); c.send('job ' + n); }
module.exports = { rules: [
  { command: 'fan', handler(c) { for (let n = 1; n <= 3; n++) server.spawn(job, c, n); c.send('started'); } },
  { command: 'ping', handler: (c) => c.send('pong') },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('spawned tasks run beside the client queue, each on its own timer', (t) => {
  const c = t.connect('c');
  c.send({ command: 'fan' });
  assert.equal(c.take(), 'started');
  c.send({ command: 'ping' });
  assert.equal(c.take(), 'pong');
  t.advance(10);
  assert.deepEqual(c.received(), ['started', 'pong', 'job 1']);
  t.advance(20);
  assert.deepEqual(c.received().slice(3), ['job 2', 'job 3']);
});
test('spawned work of a client ends when it disconnects', (t) => {
  const c = t.connect('c');
  const d = t.connect('d');
  c.send({ command: 'fan' });
  d.send({ command: 'fan' });
  c.disconnect();
  t.advance(30);
  assert.deepEqual(c.received(), ['started']);
  assert.deepEqual(d.received(), ['started', 'job 1', 'job 2', 'job 3']);
});
`,
			passed: 2,
		},
		{
			name: "background, server.broadcast and t.advance",
			handlers: `const { sleep, server } = require('moebius');
module.exports = {
  rules: [{ command: 'ping', handler: (c) => c.send('pong') }],
  *background() { for (let n = 1; ; n++) { yield sleep(1000); server.broadcast({ tick: n }); } },
};`,
			tests: `const { test, assert } = require('moebius/test');
test('background broadcasts each second of virtual time', (t) => {
  const a = t.connect('a');
  const b = t.connect('b');
  t.advance(999);
  assert.deepEqual(a.received(), []);
  t.advance(1);
  assert.deepEqual(a.take(), { tick: 1 });
  assert.deepEqual(b.take(), { tick: 1 });
  t.advance(2000);
  assert.deepEqual(a.received(), [{ tick: 1 }, { tick: 2 }, { tick: 3 }]);
  assert.equal(t.now(), 3000);
});
test('a client that connects later hears only later ticks', (t) => {
  t.advance(1500);
  const late = t.connect('late');
  t.advance(500);
  assert.deepEqual(late.received(), [{ tick: 2 }]);
});
`,
			passed: 2,
		},
		{
			name: "client.close() from a handler",
			handlers: `module.exports = { rules: [
  { command: 'bye', handler(c) { c.send('bye'); c.close(); } },
  { command: 'ping', handler: (c) => c.send('pong') },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('a client the server closed is no longer connected and cannot send', (t) => {
  const c = t.connect('c');
  assert.equal(c.connected, true);
  c.send({ command: 'bye' });
  assert.equal(c.take(), 'bye');
  assert.equal(c.connected, false);
  assert.throws(() => c.send({ command: 'ping' }), /not connected/);
});
test('the same id may connect again after it was closed', (t) => {
  const c = t.connect('c');
  c.send({ command: 'bye' });
  const again = t.connect('c');
  again.send({ command: 'ping' });
  assert.equal(again.take(), 'pong');
  assert.equal(c.connected, false);
});
`,
			passed: 2,
		},
		{
			name: "dealer() answered twice through upstream.send",
			handlers: `const { dealer } = require('moebius');
module.exports = { rules: [
  { command: 'feed', *handler(c, d) {
      const up = dealer('tcp://feed:1');
      up.send({ want: d.want });
      const first = yield up.recv({ timeout: 1000 });
      const second = yield up.recv({ timeout: 1000 });
      c.send({ first, second });
  } },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('a stub may answer one message with several through upstream.send', (t) => {
  const got = [];
  t.stub('tcp://feed:1', (msg, upstream) => {
    got.push(msg);
    upstream.send('one');
    upstream.send({ n: msg.want });
  });
  const c = t.connect('c');
  c.send({ command: 'feed', want: 2 });
  assert.deepEqual(got, [{ want: 2 }]);
  assert.deepEqual(c.take(), { first: 'one', second: '{"n":2}' });
});
`,
			passed: 1,
		},
		{
			name: "request() timeout through t.advance",
			handlers: `const { request, TimeoutError } = require('moebius');
module.exports = { rules: [
  { command: 'ask', *handler(c) {
      try { c.send({ answer: yield request('tcp://slow:1', 'q', { timeout: 500 }) }); }
      catch (e) { c.send({ timedOut: e instanceof TimeoutError }); }
  } },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('a request nobody answers times out at its deadline of virtual time', (t) => {
  t.stub('tcp://slow:1', () => undefined);
  const c = t.connect('c');
  c.send({ command: 'ask' });
  t.advance(499);
  assert.deepEqual(c.received(), []);
  t.advance(1);
  assert.deepEqual(c.take(), { timedOut: true });
});
test('an answered request does not time out', (t) => {
  t.stub('tcp://slow:1', (q) => 'a to ' + q);
  const c = t.connect('c');
  c.send({ command: 'ask' });
  assert.deepEqual(c.take(), { answer: 'a to q' });
  t.advance(1000);
  assert.equal(c.received().length, 1);
});
`,
			passed: 2,
		},
		{
			name: "client state survives t.reload()",
			handlers: `module.exports = { rules: [
  { command: 'count', handler(c) { c.state.n = (c.state.n || 0) + 1; c.send(c.state.n); } },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('state kept across a reload', (t) => {
  const c = t.connect('c');
  c.send({ command: 'count' });
  c.send({ command: 'count' });
  t.reload();
  c.send({ command: 'count' });
  assert.deepEqual(c.received(), [1, 2, 3]);
  assert(t.logs().some((l) => l.includes('reloaded')), 'no reload in the log: ' + JSON.stringify(t.logs()));
});
`,
			passed: 1,
		},
		{
			name: "a stub that answers later, from the test",
			handlers: `const { dealer } = require('moebius');
module.exports = { rules: [{ command: 'feed', *handler(c) {
  const d = dealer('tcp://feed:1');
  d.send('go');
  c.send('sent');
  c.send('got ' + (yield d.recv({ timeout: 5000 })));
} }] };`,
			tests: `const { test, assert } = require('moebius/test');
test('a late upstream.send settles the server before it returns', (t) => {
  let up;
  t.stub('tcp://feed:1', (m, u) => { up = u; });
  const c = t.connect('c');
  c.send({ command: 'feed' });
  assert.deepEqual(c.received(), ['sent']);
  up.send('late');
  assert.deepEqual(c.received(), ['sent', 'got late']);
});
`,
			passed: 1,
		},
		{
			name: "a stub declared again answers on open connections",
			handlers: `const { request } = require('moebius');
module.exports = { rules: [{ command: 'ask', *handler(c) { c.send(yield request('tcp://x:1', 'q')); } }] };`,
			tests: `const { test, assert } = require('moebius/test');
test('the latest stub answers', (t) => {
  const c = t.connect('c');
  t.stub('tcp://x:1', () => 'one');
  c.send({ command: 'ask' });
  t.stub('tcp://x:1', () => 'two');
  c.send({ command: 'ask' });
  assert.deepEqual(c.received(), ['one', 'two']);
});
`,
			passed: 1,
		},
		{
			name: "t.logs() has the handlers' console output",
			handlers: `module.exports = { rules: [
  { command: 'hi', handler(c) { console.log('hello from ' + c.id); c.send('hi'); } },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('console.log in a handler is in t.logs()', (t) => {
  const c = t.connect('ann');
  assert(!t.logs().some((l) => l.includes('hello from ann')), 'logged before the request');
  c.send({ command: 'hi' });
  assert(t.logs().some((l) => l.includes('hello from ann')), JSON.stringify(t.logs()));
});
`,
			passed: 1,
		},
		{
			name: "binary frames",
			handlers: `module.exports = { rules: [
  { command: 'echo', handler(c, d, m) { c.send(m.frames[1]); } },
  { command: 'size', handler(c, d, m) { c.send({ size: m.frames[1].length, first: m.frames[1][0], bytes: m.frames[1] instanceof Uint8Array }); } },
] };`,
			tests: `const { test, assert } = require('moebius/test');
test('a Uint8Array goes out as its bytes', (t) => {
  const c = t.connect('c');
  c.send({ command: 'size' }, new Uint8Array([255, 0, 128]));
  assert.deepEqual(c.take(), { size: 3, first: 255, bytes: true });
});
test('a reply that is not UTF-8 comes back as an ArrayBuffer', (t) => {
  const c = t.connect('c');
  c.send({ command: 'echo' }, new Uint8Array([255, 0, 128]));
  const r = c.take();
  assert(r instanceof ArrayBuffer, 'got ' + typeof r);
  assert.deepEqual(Array.from(new Uint8Array(r)), [255, 0, 128]);
  const buf = new Uint8Array([1, 255]).buffer;
  c.send({ command: 'echo' }, buf);
  assert.deepEqual(c.take(), buf);
});
test('a reply of bytes that are UTF-8 comes back as text', (t) => {
  const c = t.connect('c');
  c.send({ command: 'echo' }, new Uint8Array([104, 105]));
  assert.equal(c.take(), 'hi');
});
`,
			passed: 3,
		},
		{
			name: "multi-frame messages",
			handlers: `const { text } = require('moebius');
module.exports = {
  route(message) { return { handler: echo }; },
};
function echo(c, d, m) { c.send(m.frames.length, ...m.frames.map((f) => text(f)), { last: true }); }`,
			tests: `const { test, assert } = require('moebius/test');
test('each argument of send is a frame, and a reply of several frames is an array', (t) => {
  const c = t.connect('c');
  c.send('a', 'b');
  assert.deepEqual(c.take(), [2, 'a', 'b', { last: true }]);
  c.send({ x: 1 }, [2], 3);
  assert.deepEqual(c.take(), [3, { x: 1 }, [2], 3, { last: true }]);
});
test('a one-frame reply is not an array', (t) => {
  const c = t.connect('c');
  c.send('solo');
  assert.deepEqual(c.received()[0], [1, 'solo', { last: true }]);
});
`,
			passed: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), map[string]string{"feature.js": tc.handlers, "feature.test.js": tc.tests})
			sum, out := run([]string{filepath.Join(dir, "feature.test.js")}, testkit.Options{})
			if sum != (testkit.Summary{Passed: tc.passed}) || len(testNames(tc.tests)) != tc.passed {
				t.Errorf("summary %+v, want %d passed (of %d tests)\n%s", sum, tc.passed, len(testNames(tc.tests)), out)
			}
		})
	}
}

func TestFindListsTestFilesInOrderSkippingNodeModulesAndDotFolders(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"b.test.js":                         "",
		"a.test.ts":                         "",
		"a.js":                              "",
		"a.test.jsx":                        "",
		"notes.md":                          "",
		"z/deep/er.test.js":                 "",
		"m/one.test.ts":                     "",
		"m/one.ts":                          "",
		"node_modules/pkg/x.test.js":        "",
		"m/node_modules/pkg/y.test.js":      "",
		".hidden/h.test.js":                 "",
		"m/.cache/c.test.ts":                "",
		"elsewhere/single.test.js":          "",
		"elsewhere/not-a-test-but-named.js": "",
	})
	p := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	cases := []struct {
		name  string
		paths []string
		want  []string
	}{
		{
			name:  "a folder: every test file under it, sorted",
			paths: []string{p(".")},
			want: []string{
				p("a.test.ts"), p("b.test.js"), p("elsewhere/single.test.js"),
				p("m/one.test.ts"), p("z/deep/er.test.js"),
			},
		},
		{
			name:  "a file as it is, even one not named as a test, in the order given",
			paths: []string{p("z"), p("elsewhere/not-a-test-but-named.js"), p("a.test.ts")},
			want:  []string{p("z/deep/er.test.js"), p("elsewhere/not-a-test-but-named.js"), p("a.test.ts")},
		},
		{
			name:  "a dot-folder or node_modules given by name is searched",
			paths: []string{p(".hidden"), p("node_modules")},
			want:  []string{p(".hidden/h.test.js"), p("node_modules/pkg/x.test.js")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := testkit.Find(tc.paths)
			must(t, err)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Find(%q)\n got %q\nwant %q", tc.paths, got, tc.want)
			}
		})
	}
	t.Run("a path that does not exist is an error", func(t *testing.T) {
		if got, err := testkit.Find([]string{p("missing")}); err == nil {
			t.Errorf("Find of a missing path: %q, no error", got)
		}
	})
}

func TestHandlersForPrefersTheSiblingOfTheTestFile(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"foo.js":        "",
		"foo.test.js":   "",
		"bar.ts":        "",
		"bar.test.ts":   "",
		"both.js":       "",
		"both.ts":       "",
		"both.test.ts":  "",
		"lone.test.js":  "",
		"dir.test.js":   "",
		"dir.js/x":      "", // a folder named dir.js is no handlers file
		"cross.ts":      "",
		"cross.test.js": "",
	})
	p := func(rel string) string { return filepath.Join(dir, rel) }
	const fallback = "handlers.js"
	cases := []struct{ test, want string }{
		{p("foo.test.js"), p("foo.js")},
		{p("bar.test.ts"), p("bar.ts")},
		{p("both.test.ts"), p("both.js")}, // .js first when both are there
		{p("cross.test.js"), p("cross.ts")},
		{p("lone.test.js"), fallback},
		{p("dir.test.js"), fallback},
		{p("foo.js"), fallback}, // a file not named as a test is never its own handlers file
	}
	for _, tc := range cases {
		if got := testkit.HandlersFor(tc.test, fallback); got != tc.want {
			t.Errorf("HandlersFor(%s) = %s, want %s", filepath.Base(tc.test), got, tc.want)
		}
	}
}

// A '#' in a test's name would start a TAP directive (a failing test named
// "x # SKIP" would read as skipped), and a newline would end its line.
func TestTAPEscapesDirectivesAndNewlinesInNames(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"handlers.js": okHandlers,
		"x.test.js":   "const { test, assert } = require('moebius/test');\ntest('a # SKIP\\nb', () => assert.fail('no'));\n",
	})
	var out strings.Builder
	sum := testkit.Run([]string{filepath.Join(dir, "x.test.js")}, testkit.Options{Handlers: filepath.Join(dir, "handlers.js"), TAP: true, Out: &out})
	if sum.Failed != 1 || !strings.Contains(out.String(), "not ok 1 - a \\# SKIP b\n") {
		t.Fatalf("summary %+v, report:\n%s", sum, out.String())
	}
}

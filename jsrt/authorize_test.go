package jsrt_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/curve"
	"github.com/moebius-js/moebius-js/jsrt"
)

// A key pair libzmq's documentation uses.
const testKey, testSecret = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"

func TestClientPublicKeyIsTheKeyTheClientProvedOrNull(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
module.exports = { rules: [{ command: 'key', handler: (c) => c.send(String(c.publicKey)) }] };`})
	e.connectWithKey("curvy", testKey)
	e.connect("plain")
	e.send("curvy", `{"command":"key"}`)
	e.send("plain", `{"command":"key"}`)
	if got := e.reply("curvy", 1); got != testKey {
		t.Fatalf("CURVE client: publicKey %q, want %q", got, testKey)
	}
	if got := e.reply("plain", 1); got != "null" {
		t.Fatalf("NULL client: publicKey %q, want null", got)
	}
}

func TestAuthorizeLetsInOnlyWhatItReturnsTrueFor(t *testing.T) {
	cases := []struct {
		name, export string
		allowed      bool
		says         string // in the refusal
	}{
		{"no export", ``, true, ""},
		{"true for this key and address", `authorize: (key, addr) => key === '` + testKey + `' && addr === '127.0.0.2:4000',`, true, ""},
		{"false", `authorize: () => false,`, false, "returned false"},
		{"truthy is not true", `authorize: () => 'yes',`, false, "returned yes"},
		{"a throw", `authorize: () => { throw new Error('nope'); },`, false, "threw Error: nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
module.exports = { ` + tc.export + ` rules: [{ command: 'x', handler: (c) => c.send('x') }] };`})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := e.host.Authorize(ctx, testKey, "127.0.0.2:4000")
			if tc.allowed {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, jsrt.ErrNotAuthorized) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want ErrNotAuthorized saying %q", err, tc.says)
			}
		})
	}
}

func TestAuthorizeThatThrowsIsLoggedWithItsStack(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
function check(key) { throw new TypeError('bad ' + key.length); }
module.exports = { authorize: check, rules: [{ command: 'x', handler: (c) => c.send('x') }] };`})
	if err := e.host.Authorize(context.Background(), testKey, "127.0.0.1:1"); err == nil {
		t.Fatal("allowed")
	}
	e.waitLog("authorize() threw")
	e.waitLog("handlers.js:2")
}

func TestAuthorizeThatLoopsIsInterruptedAndRefuses(t *testing.T) {
	e := start(t, jsrt.Config{StepBudget: 50 * time.Millisecond}, map[string]string{"handlers.js": `
module.exports = { authorize: () => { for (;;) {} }, rules: [{ command: 'x', handler: (c) => c.send('x') }] };`})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.host.Authorize(ctx, testKey, "127.0.0.1:1"); !errors.Is(err, jsrt.ErrNotAuthorized) {
		t.Fatalf("got %v, want ErrNotAuthorized", err)
	}
	// The worker still serves.
	e.connect("c")
	e.send("c", `{"command":"x"}`)
	if got := e.reply("c", 1); got != "x" {
		t.Fatalf("got %q", got)
	}
}

func TestCurveOptionsReachTheDialerAndBadOnesThrow(t *testing.T) {
	d := newFakeDialer()
	e := start(t, jsrt.Config{Dialer: d}, map[string]string{"handlers.js": `
const { dealer, request } = require('moebius');
const keys = { serverKey: 'S'.repeat(40), publicKey: '` + testKey + `', secretKey: '` + testSecret + `' };
module.exports = { rules: [
  { command: 'ok', handler: function* (c) {
      const d = dealer('tcp://echo', { curve: keys });
      d.send('a');
      c.send(yield d.recv());
      c.send(yield request('tcp://echo', 'b', { curve: { serverKey: keys.serverKey } }));
      c.send(yield request('tcp://echo', 'c'));
  } },
  { command: 'bad', handler: (c) => {
      for (const opts of [{ curve: {} }, { curve: { serverKey: keys.serverKey, publicKey: keys.publicKey } }, { curve: 'x' }, { curve: { serverKey: 7 } },
                          { curve: { serverKey: 'short' } }, { curve: { ...keys, secretKey: 'S'.repeat(40) } }, { curve: { ...keys, secretKey: keys.secretKey + 'x' } }]) {
        try { dealer('tcp://echo', opts); c.send('no throw'); } catch (e) { c.send(e.name + ': ' + e.message); }
      }
  } },
]};`})
	e.connect("c")
	e.send("c", `{"command":"ok"}`)
	if got := e.replies("c", 3); got[0] != "echo:a" || got[1] != "echo:b" || got[2] != "echo:c" {
		t.Fatalf("got %q", got)
	}
	d.mu.Lock()
	curves := d.curves
	d.mu.Unlock()
	if len(curves) != 3 {
		t.Fatalf("%d dials, want 3 (a dealer, and a pool for each set of keys)", len(curves))
	}
	server, _ := curve.ParseKey(strings.Repeat("S", 40))
	public, _ := curve.ParseKey(testKey)
	secret, _ := curve.ParseKey(testSecret)
	want := []*jsrt.CurveKeys{
		{ServerKey: server, Keys: &curve.KeyPair{Public: public, Secret: secret}},
		{ServerKey: server},
		nil,
	}
	for i := range want {
		got := curves[i]
		switch {
		case (got == nil) != (want[i] == nil):
			t.Fatalf("dial %d got curve %+v, want %+v", i, got, want[i])
		case got == nil:
		case got.ServerKey != want[i].ServerKey || (got.Keys == nil) != (want[i].Keys == nil) || got.Keys != nil && *got.Keys != *want[i].Keys:
			t.Fatalf("dial %d got curve %+v, want %+v", i, got, want[i])
		}
	}

	e.send("c", `{"command":"bad"}`)
	got := e.replies("c", 10)[3:]
	for i, want := range []string{"curve.serverKey is needed", "go together", "curve must be an object", "curve.serverKey must be a Z85 string",
		"curve.serverKey: curve key: 5 characters", "is not curve.secretKey's public key", "curve.secretKey is not 40 characters"} {
		if !strings.HasPrefix(got[i], "TypeError: ") || !strings.Contains(got[i], want) {
			t.Fatalf("bad option %d: got %q, want a TypeError saying %q", i, got[i], want)
		}
	}
}

func TestAuthorizeAsksNoWorkerWhenNothingExportsIt(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
module.exports = { rules: [{ command: 'busy', handler: (c) => { c.send('started'); const end = Date.now() + 500; while (Date.now() < end) {} c.send('done'); } }] };`})
	e.connect("c")
	e.send("c", `{"command":"busy"}`)
	e.reply("c", 1) // the only worker is inside a half-second step now
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.host.Authorize(ctx, testKey, "127.0.0.1:1"); err != nil {
		t.Fatalf("waited for the busy worker: %v", err)
	}
	e.reply("c", 2)

	// Once a reload exports it, it is asked.
	e.write("handlers.js", `module.exports = { authorize: () => false, rules: [{ command: 'x', handler: (c) => c.send('x') }] };`)
	if err := e.host.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := e.host.Authorize(context.Background(), testKey, "127.0.0.1:1"); !errors.Is(err, jsrt.ErrNotAuthorized) {
		t.Fatalf("after the reload: %v, want ErrNotAuthorized", err)
	}
}

func TestWhatAuthorizeOpensIsClosedWhenItReturns(t *testing.T) {
	d := newFakeDialer()
	e := start(t, jsrt.Config{Dialer: d}, map[string]string{"handlers.js": `
const { dealer } = require('moebius');
module.exports = { authorize: () => { dealer('tcp://echo'); return true; }, rules: [{ command: 'x', handler: (c) => c.send('x') }] };`})
	for range 3 {
		if err := e.host.Authorize(context.Background(), testKey, "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	d.waitClosed(t, 3)
	if opened, closed := d.counts(); opened != 3 || closed != 3 {
		t.Fatalf("authorize opened %d dealers and %d were closed; want 3 and 3", opened, closed)
	}
}

package testkit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/testkit"
)

func newSim(t *testing.T, src string) *testkit.Sim {
	t.Helper()
	path := filepath.Join(t.TempDir(), "handlers.js")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := testkit.New(testkit.Config{Handlers: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func texts(msgs [][][]byte) []string {
	var out []string
	for _, m := range msgs {
		var parts []string
		for _, f := range m {
			parts = append(parts, string(f))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A sleep ends exactly when virtual time reaches it, not a millisecond
// before, and each timer on the way runs at its own time.
func TestAdvanceRunsEachTimerAtItsOwnTime(t *testing.T) {
	s := newSim(t, `
const { sleep } = require('moebius');
module.exports = { rules: [{ command: 'tick', handler: function* (c, d) {
  for (let i = 1; i <= d.n; i++) { yield sleep(100); c.send('tick ' + i + ' at ' + (Date.now() >= 0)); }
} }] };`)
	c, err := s.Connect("c", "")
	must(t, err)
	must(t, s.Send(c, [][]byte{[]byte(`{"command":"tick","n":3}`)}))
	must(t, s.Advance(99*time.Millisecond))
	if got := s.Received(c); len(got) != 0 {
		t.Fatalf("after 99ms: %q", texts(got))
	}
	must(t, s.Advance(1*time.Millisecond))
	if got := texts(s.Received(c)); len(got) != 1 {
		t.Fatalf("after 100ms: %q", got)
	}
	must(t, s.Advance(250*time.Millisecond)) // passes the 200ms and 300ms timers
	if got := texts(s.Received(c)); len(got) != 3 {
		t.Fatalf("after 350ms: %q", got)
	}
	if s.Elapsed() != 350*time.Millisecond {
		t.Fatalf("elapsed %v", s.Elapsed())
	}
}

func TestStubAnswersRequestAndDealer(t *testing.T) {
	s := newSim(t, `
const { request, dealer } = require('moebius');
module.exports = { rules: [
  { command: 'ask', handler: function* (c) { const r = yield request('tcp://prices:1', 'tea'); c.send('price ' + r); } },
  { command: 'stream', handler: function* (c) {
      const d = dealer('tcp://feed:2');
      d.send('go');
      for (let i = 0; i < 2; i++) { const m = yield d.recv(); c.send('got ' + m); }
      d.close();
  } },
] };`)
	s.Stub("tcp://prices:1", func(frames [][]byte, reply func([][]byte) error) error {
		return reply([][]byte{[]byte("3 for " + string(frames[len(frames)-1]))})
	})
	s.Stub("tcp://feed:2", func(frames [][]byte, reply func([][]byte) error) error {
		if err := reply([][]byte{[]byte("a")}); err != nil {
			return err
		}
		return reply([][]byte{[]byte("b")})
	})
	c, err := s.Connect("c", "")
	must(t, err)
	must(t, s.Send(c, [][]byte{[]byte(`{"command":"ask"}`)}))
	must(t, s.Send(c, [][]byte{[]byte(`{"command":"stream"}`)}))
	want := []string{"price 3 for tea", "got a", "got b"}
	if got := texts(s.Received(c)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("received %q, want %q", got, want)
	}
}

func TestServerCloseDisconnectsTheClient(t *testing.T) {
	s := newSim(t, `const { server } = require('moebius');
module.exports = { rules: [
  { command: 'bye', handler: function (c) { c.send('bye'); c.close(); } },
  { command: 'who', handler: function (c) { c.send(server.clients().map(x => x.id).join(',')); } },
] };`)
	a, err := s.Connect("a", "")
	must(t, err)
	b, err := s.Connect("b", "")
	must(t, err)
	must(t, s.Send(a, [][]byte{[]byte(`{"command":"bye"}`)}))
	if s.Connected(a) {
		t.Fatal("still connected after client.close()")
	}
	if err := s.Send(a, [][]byte{[]byte(`{"command":"who"}`)}); err == nil {
		t.Fatal("a closed client could send")
	}
	must(t, s.Send(b, [][]byte{[]byte(`{"command":"who"}`)}))
	if got := texts(s.Received(b)); len(got) != 1 || got[0] != "b" {
		t.Fatalf("clients after a's close: %q", got)
	}
}

func TestABusyHandlerFailsTheSettleInsteadOfHanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handlers.js")
	must(t, os.WriteFile(path, []byte(`module.exports = { rules: [{ command: 'spin', handler: function* () { for (;;) yield; } }] };`), 0o644))
	s, err := testkit.New(testkit.Config{Handlers: path, SettleTimeout: 300 * time.Millisecond})
	must(t, err)
	defer s.Close()
	c, err := s.Connect("c", "")
	must(t, err)
	err = s.Send(c, [][]byte{[]byte(`{"command":"spin"}`)})
	if err == nil || !strings.Contains(err.Error(), "still busy") {
		t.Fatalf("err %v", err)
	}
}

// A simulated client past queue_limit gets queue_full, where serve would
// stop reading its connection (README says so).
func TestPastTheQueueLimitASimulatedClientGetsQueueFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handlers.js")
	must(t, os.WriteFile(path, []byte(`const { sleep } = require('moebius');
module.exports = { rules: [{ command: 'nap', handler: function* (c) { yield sleep(1000); c.send('rested'); } }] };`), 0o644))
	s, err := testkit.New(testkit.Config{Handlers: path, QueueLimit: 2})
	must(t, err)
	defer s.Close()
	c, err := s.Connect("c", "")
	must(t, err)
	for i := 0; i < 4; i++ { // one running, two queued, one too many
		must(t, s.Send(c, [][]byte{[]byte(`{"command":"nap"}`)}))
	}
	if got := texts(s.Received(c)); len(got) != 1 || !strings.Contains(got[0], "queue_full") {
		t.Fatalf("received %q, want one queue_full error reply", got)
	}
	must(t, s.Advance(3*time.Second))
	if got := texts(s.Received(c)); len(got) != 4 || got[3] != "rested" {
		t.Fatalf("received %q, want the three naps to end", got)
	}
}

package jsrt_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/jsrt"
)

// fakeCluster stands in for the NATS link: it records what handlers send
// across and lets the test deliver what other instances publish.
type fakeCluster struct {
	mu         sync.Mutex
	broadcasts []string
	sent       map[string]string
	elsewhere  map[string]bool // client ids other instances have
	down       bool
	subs       map[string]func(subject string, payload []byte)
}

func (f *fakeCluster) Broadcast(frame []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broadcasts = append(f.broadcasts, string(frame))
	return nil
}

func (f *fakeCluster) Send(id string, frames [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.down:
		return errors.New("the link to NATS is down")
	case !f.elsewhere[id]:
		return jsrt.ErrNoClient
	}
	f.sent[id] = string(frames[0])
	return nil
}

func (f *fakeCluster) Publish(subject string, payload []byte) error {
	f.mu.Lock()
	deliver := f.subs[subject]
	f.mu.Unlock()
	if deliver != nil {
		deliver(subject, payload)
	}
	return nil
}

func (f *fakeCluster) Subscribe(subject string, deliver func(string, []byte)) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[subject] = deliver
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, subject)
	}, nil
}

const clusterHandlers = `
const { server, cluster, ClientGoneError } = require('moebius');
const heard = [];
cluster.subscribe('orders.new', (m) => { heard.push(m.subject + '=' + m.text); server.broadcast('heard ' + m.text); });
module.exports = { rules: [
  { command: 'who', handler: (c) => c.send(String(cluster.instance)) },
  { command: 'shout', handler: (c, d) => server.broadcast(d.text) },
  { command: 'relay', handler: (c, d) => {
      try { server.send(d.to, d.text); c.send('sent'); }
      catch (e) { c.send(e instanceof ClientGoneError ? 'gone' : 'error: ' + e.message); }
  } },
  { command: 'publish', handler: (c, d) => { cluster.publish('orders.new', d.text); c.send('published'); } },
]};`

func TestHandlersReachOtherInstancesThroughTheCluster(t *testing.T) {
	fc := &fakeCluster{sent: map[string]string{}, elsewhere: map[string]bool{"far": true}, subs: map[string]func(string, []byte){}}
	e := start(t, jsrt.Config{Instance: "a:5555", Cluster: fc}, map[string]string{"handlers.js": clusterHandlers})
	e.connect("c")
	e.send("c", `{"command":"who"}`)
	if got := e.reply("c", 1); got != "a:5555" {
		t.Fatalf("cluster.instance = %q", got)
	}
	e.send("c", `{"command":"shout","text":"hello all"}`)
	if got := e.reply("c", 2); got != "hello all" {
		t.Fatalf("the local client got %q", got)
	}
	e.send("c", `{"command":"relay","to":"far","text":"psst"}`)
	e.send("c", `{"command":"relay","to":"nowhere","text":"psst"}`)
	if got := e.replies("c", 4)[2:]; got[0] != "sent" || got[1] != "gone" {
		t.Fatalf("relays: %q", got)
	}
	fc.mu.Lock()
	fc.down = true
	fc.mu.Unlock()
	e.send("c", `{"command":"relay","to":"far","text":"psst"}`)
	if got := e.reply("c", 5); !strings.HasPrefix(got, "error: server.send(far): client far is not on this instance") {
		t.Fatalf("a relay while the link is down: %q", got)
	}
	e.send("c", `{"command":"publish","text":"42"}`)
	if got := e.replies("c", 7)[5:]; got[0] != "published" && got[1] != "published" {
		t.Fatalf("publish: %q", got)
	}
	if got := e.replies("c", 7)[5:]; !strings.Contains(strings.Join(got, ","), "heard 42") {
		t.Fatalf("the subscriber did not run: %q", got)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.broadcasts) != 2 || fc.broadcasts[0] != "hello all" || fc.broadcasts[1] != "heard 42" || fc.sent["far"] != "psst" {
		t.Fatalf("crossed the cluster: broadcasts %q, sent %q", fc.broadcasts, fc.sent)
	}
}

func TestWithoutAClusterPublishThrowsAndInstanceIsNull(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
const { cluster } = require('moebius');
module.exports = { rules: [{ command: 'x', handler: (c) => {
  c.send(String(cluster.instance));
  try { cluster.publish('a', 'b'); } catch (e) { c.send(e.message); }
} }] };`})
	e.connect("c")
	e.send("c", `{"command":"x"}`)
	if got := e.replies("c", 2); got[0] != "null" || !strings.Contains(got[1], "not in a cluster (set cluster_nats)") {
		t.Fatalf("got %q", got)
	}
}

func TestAnUnsubscribedFunctionRunsNoMore(t *testing.T) {
	fc := &fakeCluster{sent: map[string]string{}, subs: map[string]func(string, []byte){}}
	e := start(t, jsrt.Config{Instance: "a", Cluster: fc}, map[string]string{"handlers.js": `
const { cluster } = require('moebius');
let calls = 0;
const sub = cluster.subscribe('t', () => { calls++; sub.unsubscribe(); });
module.exports = { rules: [
  { command: 'flood', handler: (c) => { for (let i = 0; i < 50; i++) cluster.publish('t', i); c.send('sent'); } },
  { command: 'calls', handler: (c) => c.send(String(calls)) },
]};`})
	e.connect("c")
	e.send("c", `{"command":"flood"}`)
	e.send("c", `{"command":"calls"}`)
	if got := e.replies("c", 2); got[1] != "1" {
		t.Fatalf("fn ran %s times after unsubscribing in its first call, want 1", got[1])
	}
}

func TestAReloadEndsTheOldCodesSubscriptions(t *testing.T) {
	fc := &fakeCluster{sent: map[string]string{}, subs: map[string]func(string, []byte){}}
	e := start(t, jsrt.Config{Instance: "a", Cluster: fc}, map[string]string{"handlers.js": `
const { cluster } = require('moebius');
cluster.subscribe('old', () => {});
module.exports = { rules: [{ command: 'x', handler: (c) => c.send('x') }] };`})
	e.write("handlers.js", `
const { cluster } = require('moebius');
cluster.subscribe('new', () => {});
module.exports = { rules: [{ command: 'x', handler: (c) => c.send('x') }] };`)
	if err := e.host.Reload(); err != nil {
		t.Fatal(err)
	}
	e.connect("c")
	e.send("c", `{"command":"x"}`) // served by the new code: the swap is done
	e.reply("c", 1)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if _, old := fc.subs["old"]; old {
		t.Error("the old code's subscription outlived the reload")
	}
	if _, ok := fc.subs["new"]; !ok {
		t.Error("the new code did not subscribe")
	}
}

func TestASubscriberFarBehindHasMessagesDroppedAndCounted(t *testing.T) {
	fc := &fakeCluster{sent: map[string]string{}, subs: map[string]func(string, []byte){}}
	e := start(t, jsrt.Config{Instance: "a", Cluster: fc, StepBudget: 5 * time.Second}, map[string]string{"handlers.js": `
const { cluster } = require('moebius');
let heard = 0;
cluster.subscribe('t', () => { heard++; });
module.exports = { rules: [
  { command: 'busy', handler: (c) => { c.send('started'); const end = Date.now() + 1000; while (Date.now() < end) {} c.send('done'); } },
  { command: 'heard', handler: (c) => c.send(String(heard)) },
]};`})
	e.connect("c")
	e.send("c", `{"command":"busy"}`)
	e.reply("c", 1) // the worker is inside a one-second step: nothing it is sent runs meanwhile
	fc.mu.Lock()
	deliver := fc.subs["t"]
	fc.mu.Unlock()
	const flood, bound = 10_050, 10_000
	for range flood {
		deliver("t", []byte("x"))
	}
	if got := e.host.Counters().SubscriberDropped; got != flood-bound {
		t.Fatalf("%d messages dropped, want %d", got, flood-bound)
	}
	e.reply("c", 2)
	e.send("c", `{"command":"heard"}`)
	if got := e.reply("c", 3); got != fmt.Sprint(bound) {
		t.Fatalf("the subscriber heard %s messages, want %d", got, bound)
	}
	e.waitLog("cluster message dropped: its subscriber is too far behind")
}

package jsrt_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/internal/waitfor"
	"github.com/moebius-js/moebius-js/jsrt"
)

// virtualClock is a core.Clock whose time moves only when a test advances
// it; a Sleep until a later time blocks until then (or a Wake).
type virtualClock struct {
	mu       sync.Mutex
	cond     *sync.Cond
	now      time.Time
	woken    bool
	asleep   bool      // a Sleep is under way
	sleeping time.Time // the deadline the scheduler sleeps until; zero: it does not (or with no limit)
}

func newVirtualClock() *virtualClock {
	c := &virtualClock{now: time.Unix(2_000_000_000, 0)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *virtualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *virtualClock) Sleep(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeping, c.asleep = until, true
	c.cond.Broadcast()
	for !c.woken && (until.IsZero() || c.now.Before(until)) {
		c.cond.Wait()
	}
	c.woken, c.sleeping, c.asleep = false, time.Time{}, false
	c.cond.Broadcast()
}

func (c *virtualClock) Wake() {
	c.mu.Lock()
	c.woken = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// advanceWhenAsleep waits until the scheduler sleeps until a deadline,
// then moves time there.
func (c *virtualClock) advanceWhenAsleep(t *testing.T) time.Duration {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !waitfor.Cond(&c.mu, c.cond, 5*time.Second, func() bool { return !c.sleeping.IsZero() }) {
		t.Fatal("the scheduler never slept until a deadline")
	}
	d := c.sleeping.Sub(c.now)
	c.now = c.sleeping
	c.cond.Broadcast()
	return d
}

// waitIdle waits until the scheduler, woken since the last Wake, has
// nothing to run: all it was given so far has run as far as it can.
func (c *virtualClock) waitIdle(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !waitfor.Cond(&c.mu, c.cond, 5*time.Second, func() bool { return c.asleep && !c.woken }) {
		t.Fatal("the scheduler never went idle")
	}
}

func TestTimeInHandlersRunsOnTheConfiguredClock(t *testing.T) {
	clock := newVirtualClock()
	e := start(t, jsrt.Config{Dialer: newFakeDialer(), NewClock: func() core.Clock { return clock }}, map[string]string{"handlers.js": `
const { sleep, request, TimeoutError } = require('moebius');
module.exports = { rules: [
  { command: 'nap', handler: function* (c) { yield sleep(3600 * 1000); c.send('rested'); } },
  { command: 'ask', handler: function* (c) {
      try { yield request('tcp://down', 'x', { timeout: 600 * 1000 }); c.send('answered'); }
      catch (e) { c.send(e instanceof TimeoutError ? 'timed out' : String(e)); } } },
] };`})
	e.connect("c")
	e.send("c", `{"command":"nap"}`)
	if d := clock.advanceWhenAsleep(t); d != time.Hour {
		t.Fatalf("slept for %v of virtual time, want 1h", d)
	}
	if got := e.reply("c", 1); got != "rested" {
		t.Fatalf("reply %q", got)
	}
	e.send("c", `{"command":"ask"}`)
	if d := clock.advanceWhenAsleep(t); d != 10*time.Minute {
		t.Fatalf("waited %v of virtual time, want 10m", d)
	}
	if got := e.reply("c", 2); got != "timed out" {
		t.Fatalf("reply %q", got)
	}
}

// A sleep too long for a time.Duration (which once overflowed and
// returned at once) or of Infinity lasts until the task is cancelled:
// here, until the next request replaces it.
func TestLongSleepsLastUntilCancelled(t *testing.T) {
	for _, ms := range []string{"1e300", "9.3e15", "9.3e12", "1e400"} {
		t.Run(ms, func(t *testing.T) {
			clock := newVirtualClock()
			e := start(t, jsrt.Config{NewClock: func() core.Clock { return clock }}, map[string]string{"handlers.js": `
const { sleep } = require('moebius');
module.exports = { rules: [
  { command: 'nap', strategy: 'replace', handler: function* (c, d) { yield sleep(d.ms); c.send('woke after ' + d.ms); } },
] };`})
			e.connect("c")
			e.send("c", `{"command":"nap","ms":`+ms+`}`)
			clock.waitIdle(t) // the nap has begun
			e.send("c", `{"command":"nap","ms":0}`)
			if got := e.reply("c", 1); got != "woke after 0" {
				t.Fatalf("first reply %q: the long sleep returned", got)
			}
		})
	}
}

func TestSleepRefusesNegativeAndNaN(t *testing.T) {
	e := start(t, jsrt.Config{}, map[string]string{"handlers.js": `
const { sleep } = require('moebius');
module.exports = { rules: [
  { command: 'nap', handler: function* (c, d) {
      try { yield sleep(Number(d.ms)); c.send('slept'); } catch (e) { c.send(e.name + ': ' + e.message); } } },
] };`})
	e.connect("c")
	for i, ms := range []string{`-1`, `"NaN"`, `"soon"`} {
		e.send("c", `{"command":"nap","ms":`+ms+`}`)
		if got := e.reply("c", i+1); !strings.HasPrefix(got, "TypeError: sleep(ms) needs a number") {
			t.Errorf("sleep(%s): %q", ms, got)
		}
	}
}

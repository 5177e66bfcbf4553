package testkit

import (
	"sync"
	"time"
)

// epoch is the virtual clock's time zero.
var epoch = time.Unix(1_800_000_000, 0)

// virtualClock is the scheduler's core.Clock in a Sim: time moves only
// when the driver advances it. It shares the Sim's lock and condition,
// so that the driver can wait for "asleep with nothing to run" and for
// work handed to it in one wait.
type virtualClock struct {
	mu       *sync.Mutex
	cond     *sync.Cond
	now      time.Time
	woken    bool      // a Wake came that no Sleep has consumed
	asleep   bool      // a Sleep is under way
	deadline time.Time // what that Sleep waits for; zero: only a Wake
}

// Now is the virtual time. Any goroutine.
func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep blocks until virtual time reaches until, or a Wake. Scheduler
// goroutine.
func (c *virtualClock) Sleep(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asleep, c.deadline = true, until
	c.cond.Broadcast()
	for !c.woken && (until.IsZero() || c.now.Before(until)) {
		c.cond.Wait()
	}
	c.woken, c.asleep, c.deadline = false, false, time.Time{}
	c.cond.Broadcast()
}

// Wake ends the current or next Sleep. Any goroutine.
func (c *virtualClock) Wake() {
	c.mu.Lock()
	c.woken = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// idleLocked reports that the scheduler sleeps with nothing to run. c.mu
// held.
func (c *virtualClock) idleLocked() bool { return c.asleep && !c.woken }

// moveToLocked sets the time to t, waking a Sleep whose deadline it
// reaches as a Wake would, so that idleLocked is false until the scheduler
// has run what came due and slept again. c.mu held.
func (c *virtualClock) moveToLocked(t time.Time) {
	c.now = t
	if c.asleep && !c.deadline.IsZero() && !t.Before(c.deadline) {
		c.woken = true
	}
	c.cond.Broadcast()
}

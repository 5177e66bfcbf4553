package core

import (
	"sync"
	"time"
)

// Clock is the scheduler's source of time and its way to sleep.
type Clock interface {
	// Now returns the current time. Scheduler goroutine.
	Now() time.Time
	// Sleep blocks until the clock reaches until (the zero time: no limit)
	// or until Wake is called. A Wake that came while nobody slept ends the
	// next Sleep at once. Scheduler goroutine.
	Sleep(until time.Time)
	// Wake ends the current or the next Sleep. Any goroutine.
	Wake()
}

// SystemClock is the real [Clock]: wall time, and sleeps that a Wake from
// any goroutine cuts short. Its zero value is not usable; call
// [NewSystemClock].
type SystemClock struct {
	mu    sync.Mutex
	cond  *sync.Cond
	woken bool
	timer *time.Timer // wakes a Sleep at its deadline; reused, as idle transitions are frequent
}

// NewSystemClock returns a Clock on real time. Any goroutine.
func NewSystemClock() *SystemClock {
	c := &SystemClock{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Now returns time.Now(). Any goroutine.
func (c *SystemClock) Now() time.Time { return time.Now() }

// Sleep blocks until until or a Wake. Scheduler goroutine.
func (c *SystemClock) Sleep(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.woken {
		c.woken = false
		return
	}
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return
		}
		if c.timer == nil {
			c.timer = time.AfterFunc(d, c.Wake)
		} else {
			c.timer.Reset(d)
		}
		defer c.timer.Stop() // a fire that races this only causes a spurious wake-up
	}
	for !c.woken {
		c.cond.Wait()
	}
	c.woken = false
}

// Wake ends the current or the next Sleep. Any goroutine.
func (c *SystemClock) Wake() {
	c.mu.Lock()
	c.woken = true
	c.mu.Unlock()
	c.cond.Signal()
}

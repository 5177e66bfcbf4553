// Package waitfor lets tests wait for an event with a deadline instead of
// sleeping. It is test support; no production code imports it.
package waitfor

import (
	"sync"
	"time"
)

// Cond waits until done() holds or timeout passes, and reports whether
// done held. The caller holds l, and c (a sync.Cond on l) must be
// broadcast whenever done's answer may change; done is checked with l held.
func Cond(l sync.Locker, c *sync.Cond, timeout time.Duration, done func() bool) bool {
	expired := false
	timer := time.AfterFunc(timeout, func() {
		l.Lock()
		expired = true
		l.Unlock()
		c.Broadcast()
	})
	defer timer.Stop()
	for !done() {
		if expired {
			return false
		}
		c.Wait()
	}
	return true
}

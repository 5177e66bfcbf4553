// Package lograte keeps logs readable when one peer, or many, repeat the
// same mistake: it rate-limits log lines per kind and per key (a peer, an
// address), and says how many it suppressed.
//
// Each (kind, key) may log a burst of lines, then one line per interval;
// each kind as a whole may log a larger burst, then a few lines a second,
// so that ten thousand peers making the same mistake cannot flood the log
// either. The line that gets through after a silence carries "suppressed",
// the number of lines held back since the previous one of that key.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for a Limiter's policy.
const (
	KeyBurst     = 5                // lines per (kind, key) before limiting starts
	KeyInterval  = 10 * time.Second // then one line per interval
	KindBurst    = 50               // lines per kind before limiting starts
	KindInterval = 100 * time.Millisecond
	maxKeys      = 10_000 // tracked (kind, key) pairs; past it only kinds limit
)

// Limiter decides which repeated lines are logged. The zero value is not
// usable; call New. Any goroutine.
type Limiter struct {
	now func() time.Time

	mu    sync.Mutex
	keys  map[pair]*bucket
	kinds map[string]*bucket

	suppressed atomic.Uint64
}

type pair struct{ kind, key string }

// bucket is a token bucket with a count of what it held back.
type bucket struct {
	tokens     float64
	last       time.Time
	suppressed int
}

// New returns a Limiter on real time.
func New() *Limiter { return NewWithClock(time.Now) }

// NewWithClock returns a Limiter reading time from now (tests use a fake).
func NewWithClock(now func() time.Time) *Limiter {
	return &Limiter{now: now, keys: make(map[pair]*bucket), kinds: make(map[string]*bucket)}
}

// Suppressed returns how many lines were held back in all.
func (l *Limiter) Suppressed() uint64 { return l.suppressed.Load() }

// take spends a token of b if it has one, refilling it at one token per
// interval up to burst.
func (b *bucket) take(now time.Time, burst int, interval time.Duration) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+float64(now.Sub(b.last))/float64(interval))
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// Allow reports whether a line of kind about key may be logged now and, if
// so, how many lines of that key were suppressed since the last one.
func (l *Limiter) Allow(kind, key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	kb := l.kinds[kind]
	if kb == nil {
		kb = &bucket{}
		l.kinds[kind] = kb
	}
	pb := l.keys[pair{kind, key}]
	if pb == nil {
		if len(l.keys) >= maxKeys {
			l.forgetQuiet(now)
		}
		if len(l.keys) < maxKeys {
			pb = &bucket{}
			l.keys[pair{kind, key}] = pb
		}
	}
	if pb != nil && !pb.take(now, KeyBurst, KeyInterval) || !kb.take(now, KindBurst, KindInterval) {
		if pb != nil {
			pb.suppressed++
		} else {
			kb.suppressed++
		}
		l.suppressed.Add(1)
		return false, 0
	}
	if pb != nil {
		suppressed, pb.suppressed = pb.suppressed, 0
	}
	suppressed += kb.suppressed
	kb.suppressed = 0
	return true, suppressed
}

// forgetQuiet drops the pairs that have been quiet long enough to be full
// again. Caller holds l.mu.
func (l *Limiter) forgetQuiet(now time.Time) {
	for p, b := range l.keys {
		if now.Sub(b.last) >= KeyBurst*KeyInterval && b.suppressed == 0 {
			delete(l.keys, p)
		}
	}
}

// Log writes msg at level through log unless the limiter holds it back;
// kind names the repeated event and key its source (a peer, an address).
// A line after suppressed ones carries "suppressed".
func (l *Limiter) Log(log *slog.Logger, level slog.Level, kind, key, msg string, args ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	ok, n := l.Allow(kind, key)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
}

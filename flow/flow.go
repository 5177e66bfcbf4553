// Package flow bounds what the server has read from its clients and not yet
// started: per connection, the messages it holds (a high-water mark, as
// libzmq's ZMQ_RCVHWM) and, across all connections, the bytes they hold.
//
// The transport opens one [Account] per connection and reserves room on it
// before it reads each frame body; a reservation that does not fit blocks,
// so a connection that is not given room is simply not read, and TCP holds
// its peer back. Whoever takes a delivered message gets its [Hold] and
// releases it when the request stops waiting (it starts, or is dropped):
// that room lets the reader go on.
//
// Past the [Budget]'s limit, accounts that already hold something wait
// first: an account holding nothing may still reserve a small frame (up to
// [SmallFrame] bytes) while the total stays within the limit plus a
// reserve, so a client with nothing waiting that sends ordinary requests is
// not locked out by others that hold the budget with big ones.
//
// It knows neither ZeroMQ nor JavaScript: an account is a holder of bytes
// and messages. Every method may be called from any goroutine; Reserve and
// TryReserve of one account must come from one goroutine at a time (its
// connection's reader).
package flow

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
)

// ErrClosed is what Reserve returns once its account is closed.
var ErrClosed = errors.New("flow: account closed")

// Budget bounds the bytes held by all its accounts together.
type Budget struct {
	limit   int64  // past it, accounts that hold something wait
	reserve int64  // room beyond limit for accounts that hold nothing
	onPause func() // hears an account begin to wait on the budget; may be nil

	used    atomic.Int64
	waiting atomic.Int32 // accounts blocked on the budget

	mu      sync.Mutex
	waiters map[*Account]struct{}

	stats Stats
}

// Stats count a Budget's pauses. Any goroutine may read them.
type Stats struct {
	// CountPauses counts reservations that waited because their account
	// held its maximum number of messages.
	CountPauses atomic.Uint64
	// BudgetPauses counts reservations that waited for the server-wide
	// byte bound.
	BudgetPauses atomic.Uint64
}

// NewBudget returns a budget of limit bytes (0 or less: unbounded), with a
// reserve of a quarter of it for accounts that hold nothing. onPause, if
// not nil, hears (on the waiting account's goroutine) each time an account
// starts to wait because the budget is spent: the bound biting, for a log
// line.
func NewBudget(limit int64, onPause func()) *Budget {
	if limit <= 0 {
		limit = math.MaxInt64 / 2
	}
	return &Budget{limit: limit, reserve: limit / 4, waiters: make(map[*Account]struct{}), onPause: onPause}
}

// Used returns the bytes held now by all accounts.
func (b *Budget) Used() int64 { return b.used.Load() }

// Stats returns the budget's counters.
func (b *Budget) Stats() *Stats { return &b.stats }

// SmallFrame is the largest frame an account holding nothing may reserve
// past a budget's limit, out of its reserve.
const SmallFrame = 64 << 10

// tryAdd takes n bytes for a if they fit: within the limit, or within the
// reserve for a small frame when a holds nothing (or when nothing at all is
// held, so that one message bigger than the limit can still pass alone).
func (b *Budget) tryAdd(a *Account, n int64) bool {
	for {
		u := b.used.Load()
		light := a.held.Load() == 0
		ok := u+n <= b.limit || light && (n <= SmallFrame && u+n <= b.limit+b.reserve || u == 0)
		if !ok {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// wakeWaiters wakes every account blocked on the budget, so that each
// checks again whether its reservation fits.
func (b *Budget) wakeWaiters() {
	b.mu.Lock()
	for a := range b.waiters {
		a.signal()
	}
	b.mu.Unlock()
}

// Account is one connection's holdings: the bytes and messages it has
// reserved and not yet released.
type Account struct {
	b    *Budget
	max  int32 // messages it may hold; 0: no bound
	held atomic.Int64
	msgs atomic.Int32

	countWait atomic.Bool   // its reader waits for msgs < max
	closed    atomic.Bool   //
	wake      chan struct{} // 1-buffered: something changed, check again
}

// Open returns a new account on b holding at most maxMessages messages at
// once (0 or less: no bound).
func (b *Budget) Open(maxMessages int) *Account {
	if maxMessages < 0 || maxMessages > math.MaxInt32 {
		maxMessages = 0
	}
	return &Account{b: b, max: int32(maxMessages), wake: make(chan struct{}, 1)}
}

func (a *Account) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Held returns the bytes and messages the account holds.
func (a *Account) Held() (bytes int64, messages int) {
	return a.held.Load(), int(a.msgs.Load())
}

// full reports whether a new message would take the account over its
// message bound.
func (a *Account) full() bool { return a.max > 0 && a.msgs.Load() >= a.max }

// TryReserve takes n bytes, and a message slot when first is true (the
// first frame of a message), if they fit now; it never blocks.
func (a *Account) TryReserve(n int64, first bool) bool {
	if a.closed.Load() || first && a.full() || !a.b.tryAdd(a, n) {
		return false
	}
	a.took(n, first)
	return true
}

func (a *Account) took(n int64, first bool) {
	a.held.Add(n)
	if first {
		a.msgs.Add(1)
	}
}

// Reserve is TryReserve that waits until the reservation fits, or fails
// with ErrClosed once the account is closed.
func (a *Account) Reserve(n int64, first bool) error {
	countPaused, budgetPaused := false, false
	for {
		if a.closed.Load() {
			return ErrClosed
		}
		if first && a.full() {
			// Announce the wait before checking again, so that a Release
			// between the check and the wait cannot be missed.
			a.countWait.Store(true)
			if a.full() && !a.closed.Load() {
				if !countPaused {
					countPaused = true
					a.b.stats.CountPauses.Add(1)
				}
				<-a.wake
			}
			a.countWait.Store(false)
			continue
		}
		if a.b.tryAdd(a, n) {
			a.took(n, first)
			return nil
		}
		b := a.b
		b.mu.Lock()
		b.waiting.Add(1)
		b.waiters[a] = struct{}{}
		fits := b.tryAdd(a, n)
		if fits {
			delete(b.waiters, a)
			b.waiting.Add(-1)
		}
		b.mu.Unlock()
		if fits {
			a.took(n, first)
			return nil
		}
		if !budgetPaused {
			budgetPaused = true
			b.stats.BudgetPauses.Add(1)
			if b.onPause != nil {
				b.onPause()
			}
		}
		if !a.closed.Load() {
			<-a.wake
		}
		b.mu.Lock()
		delete(b.waiters, a)
		b.waiting.Add(-1)
		b.mu.Unlock()
	}
}

// Release gives back n bytes, and one message slot when message is true.
func (a *Account) Release(n int64, message bool) {
	if n != 0 {
		a.held.Add(-n)
		a.b.used.Add(-n)
	}
	if message {
		a.msgs.Add(-1)
		if a.countWait.Load() {
			a.signal()
		}
	}
	if a.b.waiting.Load() > 0 {
		a.b.wakeWaiters()
	}
}

// Close makes Reserve fail from now on and ends one that waits. Holds
// already taken are still released as usual.
func (a *Account) Close() {
	a.closed.Store(true)
	a.signal()
}

// Hold is what one delivered message holds on its connection's account.
// The zero Hold holds nothing.
type Hold struct {
	a *Account
	n int64
}

// NewHold is the hold of a message whose frames reserved n bytes and one
// message slot on a.
func NewHold(a *Account, n int64) Hold { return Hold{a: a, n: n} }

// Bytes returns what the hold holds.
func (h Hold) Bytes() int64 { return h.n }

// Release gives the hold back. Call it once per Hold; the zero Hold does
// nothing.
func (h Hold) Release() {
	if h.a != nil {
		h.a.Release(h.n, true)
	}
}

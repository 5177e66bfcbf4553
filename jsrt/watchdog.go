package jsrt

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// errStepBudget is what an interrupted step fails with.
var errStepBudget = errors.New("step exceeded its time budget")

// watchdog interrupts a JavaScript call that runs longer than the budget.
// One watchdog serves one scheduler goroutine, which brackets every call
// into JavaScript with begin and end; the watchdog's own goroutine checks
// every budget/8 whether the same call is still running and, once it has
// run for the whole budget by the clock (not by counting ticks, which
// drifts late by every sleep's overshoot), interrupts its runtime, and
// again every budget after that. It parks while no call runs, so an idle
// server costs no wake-ups.
//
// An interrupt is seen between JavaScript instructions, not inside a
// native call; the one that can run long, a backtracking regular
// expression, gives up at twice the budget (regexp.go), by when the
// interrupt is pending, so it ends the step as soon as the match returns.
// Any other native call ('x'.repeat(2**29), a huge Array fill or
// JSON.stringify) runs to its end. A call still running stuckAfter(budget)
// after its first interrupt is reported to stuck; when stuck says it
// retired the worker (retire.go), nothing more is reported, but the
// watchdog goes on interrupting whatever that goroutine still runs until
// it is stopped (once the goroutine has ended); else the call is reported
// again each stuckAfter(budget) while it runs.
type watchdog struct {
	budget time.Duration
	tick   time.Duration
	stuck  func(owner string, ran time.Duration, call uint64) bool // nil: nothing is reported

	mu      sync.Mutex
	vm      *goja.Runtime // the runtime inside a guarded call, or nil
	depth   int           // nesting of guarded calls (only the outermost counts)
	seq     uint64        // counts guarded calls
	began   time.Time     // when the outermost guarded call began
	owner   string        // whom it runs for (client.id as text; "" for background work)
	parked  bool          // the watchdog goroutine waits on wake
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

// How long after its first interrupt a guarded call that is still running
// counts as stuck in a native call: three budgets, and at least a second.
// A backtracking regular expression started just before the interrupt
// gives up two budgets (plus regexp2's 100ms clock) after it, so it ends
// as an ordinary runaway well before; what is still running past this is
// a call the interrupt cannot stop.
const (
	stuckBudgets = 3
	minStuck     = time.Second
)

// stuckAfter is that span for a step budget.
func stuckAfter(budget time.Duration) time.Duration { return max(stuckBudgets*budget, minStuck) }

// newWatchdog starts a watchdog goroutine; stop ends it. stuck (which may
// be nil) hears of a call stuck in native code, on the watchdog's
// goroutine, and reports whether the worker was retired for it. Any
// goroutine.
func newWatchdog(budget time.Duration, stuck func(owner string, ran time.Duration, call uint64) bool) *watchdog {
	w := &watchdog{
		budget: budget,
		tick:   max(budget/8, time.Millisecond),
		stuck:  stuck,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go w.run()
	return w
}

// begin marks the start of a guarded call on vm, run for owner.
// Scheduler goroutine.
func (w *watchdog) begin(vm *goja.Runtime, owner string) {
	w.mu.Lock()
	w.depth++
	if w.depth > 1 {
		w.mu.Unlock()
		return
	}
	w.vm = vm
	w.seq++
	w.began = time.Now()
	w.owner = owner
	wake := w.parked
	w.parked = false
	w.mu.Unlock()
	if wake {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// end marks the end of the guarded call and clears any interrupt the
// watchdog raised that the call did not see. Scheduler goroutine.
func (w *watchdog) end() {
	w.mu.Lock()
	w.depth--
	if w.depth > 0 {
		w.mu.Unlock()
		return
	}
	vm := w.vm
	w.vm = nil
	w.mu.Unlock()
	vm.ClearInterrupt()
}

// stop ends the watchdog goroutine and waits for it. Any goroutine, once.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

// running reports whether guarded call number call (as the stuck
// callback named it) is still the one running. Any goroutine.
func (w *watchdog) running(call uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.vm != nil && w.seq == call
}

func (w *watchdog) run() {
	defer close(w.done)
	var seen uint64
	stuck := w.stuck
	var due time.Time     // when the call seen is to be interrupted (again)
	var stuckAt time.Time // when it is to be reported as stuck; zero: not interrupted yet
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		if w.vm == nil {
			w.parked = true
			w.mu.Unlock()
			<-w.wake
			continue
		}
		if w.seq != seen {
			seen, due, stuckAt = w.seq, w.began.Add(w.budget), time.Time{}
		}
		now := time.Now()
		if !now.Before(due) {
			w.vm.Interrupt(fmt.Errorf("%w (%v)", errStepBudget, w.budget))
			due = now.Add(w.budget)
			if stuckAt.IsZero() {
				stuckAt = now.Add(stuckAfter(w.budget))
			}
		}
		next := due
		var owner string
		var ran time.Duration
		report := false
		if !stuckAt.IsZero() && stuck != nil {
			if now.Before(stuckAt) {
				if stuckAt.Before(next) {
					next = stuckAt
				}
			} else {
				report, stuckAt = true, now.Add(stuckAfter(w.budget)) // again then, if it is not retired
				owner, ran = w.owner, now.Sub(w.began)
			}
		}
		w.mu.Unlock()
		if report {
			if stuck(owner, ran, seen) {
				// The worker was retired. Its goroutine may yet come out of
				// the call and run JavaScript before it sees that: go on
				// interrupting what runs too long, reporting nothing more,
				// until stop (when that goroutine has ended).
				stuck = nil
			}
			continue
		}
		time.Sleep(min(w.tick, next.Sub(now)))
	}
}

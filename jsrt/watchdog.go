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
// run for the whole budget, interrupts its runtime. It parks while no call
// runs, so an idle server costs no wake-ups.
type watchdog struct {
	budget time.Duration
	tick   time.Duration

	mu      sync.Mutex
	vm      *goja.Runtime // the runtime inside a guarded call, or nil
	depth   int           // nesting of guarded calls (only the outermost counts)
	seq     uint64        // counts guarded calls
	parked  bool          // the watchdog goroutine waits on wake
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

// newWatchdog starts a watchdog goroutine; stop ends it. Any goroutine.
func newWatchdog(budget time.Duration) *watchdog {
	w := &watchdog{
		budget: budget,
		tick:   max(budget/8, time.Millisecond),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go w.run()
	return w
}

// begin marks the start of a guarded call on vm. Scheduler goroutine.
func (w *watchdog) begin(vm *goja.Runtime) {
	w.mu.Lock()
	w.depth++
	if w.depth > 1 {
		w.mu.Unlock()
		return
	}
	w.vm = vm
	w.seq++
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

func (w *watchdog) run() {
	defer close(w.done)
	var seen uint64
	var ran time.Duration
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
			ran = 0
			continue
		}
		if w.seq != seen {
			seen, ran = w.seq, 0
		} else if ran += w.tick; ran >= w.budget {
			w.vm.Interrupt(fmt.Errorf("%w (%v)", errStepBudget, w.budget))
			ran = 0
		}
		w.mu.Unlock()
		time.Sleep(w.tick)
	}
}

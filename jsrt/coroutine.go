package jsrt

import (
	"errors"
	"math"
	"time"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
)

// genCoroutine adapts a JavaScript generator object to core.Coroutine.
type genCoroutine struct {
	rt      *jsRuntime
	gen     *goja.Object
	scope   *scope // the job's: owns what the generator opens
	pending waitOp // what it yielded last, if that was a wait

	// Outbound backpressure: while a connection it sent to is backlogged
	// the coroutine is parked instead of stepped; held is what it resumes
	// with once they have drained.
	held    core.Input
	holding bool
}

// Resume runs the generator to its next yield: next(value), or throw(error)
// when in carries an error. A generator whose last steps sent to a client
// that is now backlogged is not stepped: it parks until that client's send
// queue drains below its low-water mark (or the client goes).
func (f *genCoroutine) Resume(in core.Input) core.Step {
	if op := f.pending; op != nil {
		f.pending = nil
		in = op.resumed(in)
	}
	if f.holding {
		in, f.held, f.holding = f.held, core.Input{}, false
	}
	if st, parked := f.waitWritable(in); parked {
		return st
	}
	st := f.step(in)
	if st.Kind == core.Yield {
		if wait, parked := f.waitWritable(st.In); parked {
			return wait
		}
	}
	return st
}

// waitWritable parks the coroutine, to resume with in, while a connection its
// job sent to is backlogged.
func (f *genCoroutine) waitWritable(in core.Input) (core.Step, bool) {
	w := f.rt.w
	for len(f.scope.backlog) > 0 {
		t := f.scope.backlog[0]
		key := w.sched.NewWaitKey()
		sched := w.sched
		if w.out.WhenWritable(t.ID, t.Serial, func() { sched.Post(func() { sched.Resolve(key, core.Input{}) }) }) {
			w.host.backpressure.Add(1)
			f.held, f.holding = in, true
			return core.Step{Kind: core.Park, Wait: key}, true
		}
		f.scope.backlog = f.scope.backlog[1:]
	}
	f.scope.backlog = nil
	return core.Step{}, false
}

// step runs the generator once with in.
func (f *genCoroutine) step(in core.Input) core.Step {
	rt := f.rt
	defer rt.w.enter(f.scope)()
	var res goja.Value
	var err error
	if in.Err != nil {
		res, err = rt.call(rt.js.genThrow, f.gen, rt.errorValue(in.Err))
	} else {
		res, err = rt.call(rt.js.genNext, f.gen, rt.value(in.Value))
	}
	if err != nil {
		if uncatchable(err) {
			return core.Step{Kind: core.Abort, In: core.Input{Err: err}}
		}
		return core.Step{Kind: core.Done, In: core.Input{Err: err}}
	}
	it := res.(*goja.Object)
	if it.Get("done").ToBoolean() {
		return core.Step{Kind: core.Done, In: core.Input{Value: it.Get("value")}}
	}
	return f.yielded(it.Get("value"))
}

// Cancel calls the generator's return(), so its finally blocks run. A
// finally block that yields is cut short there.
func (f *genCoroutine) Cancel() {
	if op := f.pending; op != nil {
		f.pending = nil
		op.cancelled()
	}
	f.holding, f.held = false, core.Input{}
	defer f.rt.w.enter(f.scope)()
	if _, err := f.rt.call(f.rt.js.genReturn, f.gen, goja.Undefined()); err != nil {
		f.rt.w.log.Error("a finally block threw while its generator was cancelled", "error", f.rt.describe(err))
	}
}

// uncatchable reports whether err ended a call in a way JavaScript could not
// catch (the watchdog's interrupt, a blown call stack): the generator that
// ran is dead.
func uncatchable(err error) bool {
	var intr *goja.InterruptedError
	var so *goja.StackOverflowError
	return errors.As(err, &intr) || errors.As(err, &so)
}

// sleepOp is what sleep(ms) returns; yielding it parks the task.
type sleepOp struct {
	d       time.Duration
	forever bool // until the task is cancelled
}

// maxSleepMs is the longest sleep a time.Duration holds, about 292 years;
// a longer one (or Infinity) lasts until the task is cancelled.
const maxSleepMs = float64(math.MaxInt64 / int64(time.Millisecond))

// newSleepOp is sleep(ms) for ms >= 0.
func newSleepOp(ms float64) *sleepOp {
	if ms >= maxSleepMs {
		return &sleepOp{forever: true}
	}
	return &sleepOp{d: time.Duration(ms * float64(time.Millisecond))}
}

func (op *sleepOp) park(f *genCoroutine) core.Step {
	if op.forever {
		return core.Step{Kind: core.Park} // no deadline and no wait key: only a cancel ends it
	}
	return core.Step{Kind: core.Park, Until: f.rt.w.sched.Now().Add(op.d)}
}
func (op *sleepOp) resumed(in core.Input) core.Input { return in }
func (op *sleepOp) cancelled()                       {}

// yielded decides what a yielded value asks of the scheduler (docs/design.md §2).
func (f *genCoroutine) yielded(v goja.Value) core.Step {
	rt := f.rt
	o, ok := v.(*goja.Object)
	if !ok {
		return core.Step{Kind: core.Yield}
	}
	if p := o.Prototype(); p != nil {
		if p.Prototype() == rt.js.genProto {
			return core.Step{Kind: core.Call, Child: &genCoroutine{rt: rt, gen: o, scope: f.scope}}
		}
		if p == rt.js.genFuncProto {
			return core.Step{Kind: core.Yield, In: core.Input{Err: badArgument(
				"yielded a generator function: call it (yield fn(...)) to run it")}}
		}
	}
	switch o.ExportType() {
	case typeSleepOp, typeRecvOp, typeRequestOp:
		op := o.Export().(waitOp)
		f.pending = op
		return op.park(f)
	}
	return core.Step{Kind: core.Yield}
}

// generator returns v as a generator object, or nil when it is not one.
func (rt *jsRuntime) generator(v goja.Value) *goja.Object {
	if o, ok := v.(*goja.Object); ok {
		if p := o.Prototype(); p != nil && p.Prototype() == rt.js.genProto {
			return o
		}
	}
	return nil
}

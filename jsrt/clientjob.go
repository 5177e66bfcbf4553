package jsrt

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
)

// clientJob is one client message on its way to a handler: the core.Job
// its worker's scheduler runs. Its ticket (retire.go) holds the message and
// its room on the client's inbound account, and says how far it got, in
// case the worker is retired.
//
// Routing happens in two steps. At arrival, route finds the strategy: the
// default router only checks the JSON and reads its "command" (a request
// that waits in a queue holds its bytes, not parsed objects); a custom
// route() is called at once, since it decides the strategy. When the
// request starts, on the code live then, bind builds the handler's
// arguments. A request that cannot be routed is still queued, and its error
// reply goes out in its turn, so a client's replies keep the order of its
// requests.
type clientJob struct {
	w   *worker
	c   *client
	t   *ticket
	env [][]byte // its envelope, carried back by every reply while it is served
	raw [][]byte

	rt         *jsRuntime    // the runtime it was routed on
	err        error         // why it cannot be routed
	handler    goja.Callable // the handler the route chose
	clientOnly bool          // it takes the client alone: no data or message is built for it
	data       goja.Value    // its data argument; nil until bound
	msg        *goja.Object
	started    bool
	scope      scope // owns what the handler opens

	command string    // the rule's command ("" when a custom route() chose the handler, or none was found)
	began   time.Time // when it started (zero until then)
}

// route finds the request's strategy on rt; a failure is kept in r.err.
func (r *clientJob) route(rt *jsRuntime) core.Strategy {
	r.rt, r.err, r.handler, r.clientOnly, r.data, r.msg, r.command = rt, nil, nil, false, nil, nil, ""
	if rt.exports.route != nil {
		strategy, err := r.customRoute(rt)
		r.err = err
		return strategy
	}
	command, err := scanCommand(r.raw[0])
	switch {
	case errors.Is(err, errNoCommand):
		r.err = &refusal{CodeMissingCommand, `payload has no string "command"`}
	case err != nil:
		r.err = &refusal{CodeInvalidJSON, "payload is not JSON: " + err.Error()}
	default:
		rl, ok := rt.exports.rules[string(command)] // a lookup, not an allocation
		if !ok {
			r.err = &refusal{CodeUnknownCommand, fmt.Sprintf("unknown command %q", command)}
			break
		}
		r.handler, r.clientOnly, r.command = rl.call, rl.clientOnly, rl.command
		return rl.strategy
	}
	return core.Queue
}

// message returns the request's message object, made on first use.
func (r *clientJob) message() *goja.Object {
	if r.msg == nil {
		r.msg = r.rt.vm.NewDynamicObject(&message{rt: r.rt, env: r.env, raw: r.raw})
	}
	return r.msg
}

// customRoute asks handlers.js's route(message, client) for
// {handler, strategy?, data?}. What route() opens is closed when it returns.
func (r *clientJob) customRoute(rt *jsRuntime) (core.Strategy, error) {
	s := r.answering()
	res, err := r.w.callIn(&s, rt, rt.exports.route, r.message(), rt.object(r.c))
	if err != nil {
		if uncatchable(err) {
			return core.Queue, err
		}
		return core.Queue, &refusal{CodeNoRoute, "route threw: " + rt.errorText(err)}
	}
	o, ok := res.(*goja.Object)
	if !ok {
		return core.Queue, &refusal{CodeNoRoute, "no route for this message"}
	}
	// The result's properties may be getters: read them guarded.
	var (
		h        goja.Callable
		strategy = core.Queue
		data     goja.Value
		bad      error
	)
	err = rt.read(func() {
		var ok bool
		if h, ok = goja.AssertFunction(o.Get("handler")); !ok {
			bad = &refusal{CodeNoRoute, "route returned no handler function"}
			return
		}
		if v := o.Get("strategy"); v != nil && !goja.IsUndefined(v) {
			var perr error
			if strategy, perr = core.ParseStrategy(v.String()); perr != nil {
				bad = &refusal{CodeNoRoute, "route returned a bad strategy: " + perr.Error()}
				return
			}
		}
		data = o.Get("data")
	})
	switch {
	case err != nil && uncatchable(err):
		return core.Queue, err
	case err != nil:
		return core.Queue, &refusal{CodeNoRoute, "reading what route returned threw: " + rt.errorText(err)}
	case bad != nil:
		return core.Queue, bad
	}
	r.handler, r.data = h, data
	if data == nil {
		r.data = r.message().Get("text")
	}
	return strategy, nil
}

// answering is the scope of code that serves r: its sends to r's client
// carry r's envelope.
func (r *clientJob) answering() scope {
	return scope{client: r.c, answers: true, env: r.env}
}

// bind readies the handler's data (the default router parses the JSON
// now; a custom route gave it already).
func (r *clientJob) bind() error {
	if r.data != nil {
		return nil
	}
	data, err := r.rt.parseJSON(r.raw[0])
	if err != nil {
		return &refusal{CodeInvalidJSON, "payload is not JSON: " + err.Error()}
	}
	r.data = data
	return nil
}

// Start runs the request on the live code: it routes again first when the
// code was reloaded since the request arrived, then calls the handler, or
// sends the error reply of a request that cannot be routed.
func (r *clientJob) Start() (core.Coroutine, error) {
	r.w.exitIfRetired()
	r.t.phase.Store(phaseStarted)
	r.t.releaseHold()
	rt := r.w.rt
	if r.rt != rt {
		r.route(rt)
	}
	rt.acquire()
	r.started, r.began = true, time.Now()
	if r.err == nil && !r.clientOnly {
		r.err = r.bind()
	}
	if r.err != nil {
		r.w.failed(rt, r.c, r.env, r.commandName(), r.message(), r.err)
		return nil, nil
	}
	r.scope = r.answering()
	leave := r.w.enter(&r.scope)
	var res goja.Value
	var err error
	if r.clientOnly {
		res, err = rt.call(r.handler, goja.Undefined(), rt.object(r.c))
	} else {
		res, err = rt.call(r.handler, goja.Undefined(), rt.object(r.c), r.data, r.message())
	}
	leave()
	if err != nil {
		return nil, err
	}
	if g := rt.generator(res); g != nil {
		return &genCoroutine{rt: rt, gen: g, scope: &r.scope}, nil
	}
	return nil, nil
}

// Finish reports how the request ended: a failure gets its error reply, a
// request cut short by shutdown the shutting_down reply.
func (r *clientJob) Finish(res core.Input) {
	r.w.exitIfRetired()
	r.t.releaseHold()
	defer r.w.settle(r.t)
	if r.started {
		defer r.rt.release()
		if on := r.w.host.cfg.OnRequest; on != nil {
			on(r.commandName(), time.Since(r.began))
		}
	}
	r.scope.close()
	defer r.w.checkDrained()
	switch {
	case errors.Is(res.Err, errShutdown):
		if !r.c.gone {
			r.w.shuttingDown(r.c, r.env)
		}
	case res.Err == nil, errors.Is(res.Err, core.ErrCancelled), errors.Is(res.Err, core.ErrReplaced):
	default:
		r.w.failed(r.rt, r.c, r.env, r.commandName(), r.message(), res.Err)
	}
}

// failed handles a request that could not run or that threw: the error hook
// runs when handlers.js defines one, else the client gets the JSON error
// reply; either way the log says why, with the JavaScript stack, and a
// handler's error is kept in the Host's history (command names it).
func (w *worker) failed(rt *jsRuntime, c *client, env [][]byte, command string, msg *goja.Object, err error) {
	code, text := rt.classify(err)
	if n := w.host.errorReplies[code]; n != nil {
		n.Add(1)
	}
	var re *refusal
	routing := errors.As(err, &re)
	if routing {
		w.host.lim.Log(w.log, slog.LevelWarn, code, c.id, "request refused", "client", c.text, "code", code, "error", text)
	} else {
		described := rt.describe(err)
		w.host.history.addError(errorEvent(c.text, code, command, described))
		w.host.lim.Log(w.log, slog.LevelError, code, c.id, "handler failed", "client", c.text, "code", code, "error", described)
	}
	if c.gone {
		return
	}
	hook, args := rt.exports.onStepError, []goja.Value{rt.object(c), rt.errorObject(err, code, text)}
	if routing {
		hook, args = rt.exports.onMessageError, []goja.Value{args[0], msg, args[1]}
	}
	if hook != nil {
		hs := scope{client: c, answers: true, env: env} // what the hook opens closes when it returns
		_, herr := w.callIn(&hs, rt, hook, args...)
		if herr == nil {
			return
		}
		w.log.Error("error hook threw; sending the default error reply", "client", c.text, "error", rt.describe(herr))
	}
	if err := w.reply(c, env, [][]byte{errorReply(code, text)}); err != nil {
		w.log.Debug("error reply not delivered", "client", c.text, "error", err)
	}
}

// errorObject is the JavaScript error an error hook receives: the thrown
// value itself, or an Error carrying code for failures raised outside
// JavaScript.
func (rt *jsRuntime) errorObject(err error, code, text string) goja.Value {
	var ex *goja.Exception
	if errors.As(err, &ex) && !uncatchable(err) {
		return ex.Value()
	}
	e := rt.newError(rt.js.errorCtor, text)
	if o, ok := e.(*goja.Object); ok {
		_ = o.Set("code", code)
	}
	return e
}

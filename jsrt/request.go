package jsrt

import (
	"errors"
	"fmt"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
)

// request is one client message on its way to a handler: a core.Job.
type request struct {
	w   *worker
	c   *client
	raw [][]byte

	rt      *runtime // the runtime it was routed on
	handler goja.Callable
	data    goja.Value
	msg     *goja.Object
	started bool
	scope   scope // what the handler opened
}

// route finds the request's handler, data and strategy on rt: through the
// custom route when handlers.js exports one, else by the JSON "command".
func (r *request) route(rt *runtime) (core.Strategy, error) {
	r.rt = rt
	m := &message{rt: rt, raw: r.raw}
	r.msg = rt.vm.NewDynamicObject(m)
	if rt.route != nil {
		return r.customRoute(rt, m)
	}
	data, err := rt.parseJSON(r.raw[0])
	if err != nil {
		return 0, &requestError{CodeInvalidJSON, "payload is not JSON: " + exceptionText(err)}
	}
	obj, ok := data.(*goja.Object)
	var cmd goja.Value
	if ok && obj.ClassName() == "Object" {
		cmd = obj.Get("command")
	}
	if cmd == nil || !goja.IsString(cmd) {
		return 0, &requestError{CodeMissingCommand, `payload has no string "command"`}
	}
	rl, ok := rt.rules[cmd.String()]
	if !ok {
		return 0, &requestError{CodeUnknownCommand, fmt.Sprintf("unknown command %q", cmd.String())}
	}
	r.handler, r.data = rl.call, data
	return rl.strategy, nil
}

// customRoute asks handlers.js's route(message, client) for
// {handler, strategy?, data?}.
func (r *request) customRoute(rt *runtime, m *message) (core.Strategy, error) {
	res, err := rt.call(rt.route, goja.Undefined(), r.msg, rt.object(r.c))
	if err != nil {
		if uncatchable(err) {
			return 0, err
		}
		return 0, &requestError{CodeNoRoute, "route threw: " + exceptionText(err)}
	}
	o, ok := res.(*goja.Object)
	if !ok {
		return 0, &requestError{CodeNoRoute, "no route for this message"}
	}
	h, ok := goja.AssertFunction(o.Get("handler"))
	if !ok {
		return 0, &requestError{CodeNoRoute, "route returned no handler function"}
	}
	strategy := core.Queue
	if s := o.Get("strategy"); s != nil && !goja.IsUndefined(s) {
		if strategy, err = core.ParseStrategy(s.String()); err != nil {
			return 0, &requestError{CodeNoRoute, "route returned a bad strategy: " + err.Error()}
		}
	}
	r.handler, r.data = h, m.textValue()
	if d := o.Get("data"); d != nil {
		r.data = d
	}
	return strategy, nil
}

// Start calls the handler. A request that waited across a reload is routed
// again on the new code first.
func (r *request) Start() (core.Frame, error) {
	rt := r.w.rt
	if r.rt != rt {
		if _, err := r.route(rt); err != nil {
			return nil, err
		}
	}
	rt.acquire()
	r.started = true
	leave := r.w.enter(&r.scope)
	res, err := rt.call(r.handler, goja.Undefined(), rt.object(r.c), r.data, r.msg)
	leave()
	if err != nil {
		return nil, err
	}
	if g := rt.generator(res); g != nil {
		return &genFrame{rt: rt, gen: g, scope: &r.scope}, nil
	}
	return nil, nil
}

// Finish reports a failed request to its client.
func (r *request) Finish(res core.Input) {
	if r.started {
		defer r.rt.release()
	}
	r.scope.close()
	defer r.w.checkDrained()
	if res.Err == nil || errors.Is(res.Err, core.ErrCancelled) || errors.Is(res.Err, core.ErrReplaced) {
		return
	}
	r.w.failed(r.rt, r.c, r.msg, res.Err)
}

// refusal is a request that could not be routed: when its turn comes it
// sends the error reply (or runs onMessageError) — unless the code was
// reloaded meanwhile, when it is routed again and may run after all.
type refusal struct {
	r     *request
	err   error
	retry bool
}

func (f *refusal) Start() (core.Frame, error) {
	if f.r.rt != f.r.w.rt {
		f.retry = true
		return f.r.Start()
	}
	f.r.w.failed(f.r.rt, f.r.c, f.r.msg, f.err)
	return nil, nil
}

func (f *refusal) Finish(res core.Input) {
	if f.retry {
		f.r.Finish(res)
		return
	}
	f.r.w.checkDrained()
}

// exceptionText is a thrown error's one-line message.
func exceptionText(err error) string {
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return exceptionMessage(ex)
	}
	return err.Error()
}

// failed handles a request that could not run or that threw: the error hook
// runs when handlers.js defines one, else the client gets the JSON error
// reply; either way the log says why, with the JavaScript stack.
func (w *worker) failed(rt *runtime, c *client, msg *goja.Object, err error) {
	code, text := classify(err)
	var re *requestError
	routing := errors.As(err, &re)
	if routing {
		w.log.Warn("request refused", "client", c.text, "code", code, "error", text)
	} else {
		w.log.Error("handler failed", "client", c.text, "code", code, "error", describe(err))
	}
	if c.gone {
		return
	}
	hook, args := rt.onStepError, []goja.Value{rt.object(c), rt.errorObject(err, code, text)}
	if routing {
		hook, args = rt.onMessageError, []goja.Value{args[0], msg, args[1]}
	}
	if hook != nil {
		_, herr := rt.call(hook, goja.Undefined(), args...)
		if herr == nil {
			return
		}
		w.log.Error("error hook threw; sending the default error reply", "client", c.text, "error", describe(herr))
	}
	if err := w.send(c, [][]byte{errorReply(code, text)}); err != nil {
		w.log.Debug("error reply not delivered", "client", c.text, "error", err)
	}
}

// errorObject is the JavaScript error an error hook receives: the thrown
// value itself, or an Error carrying code for failures raised outside
// JavaScript.
func (rt *runtime) errorObject(err error, code, text string) goja.Value {
	var ex *goja.Exception
	if errors.As(err, &ex) && !uncatchable(err) {
		return ex.Value()
	}
	e := rt.newError(rt.vm.Get("Error"), text)
	if o, ok := e.(*goja.Object); ok {
		_ = o.Set("code", code)
	}
	return e
}

package jsrt

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
)

// moebiusModule is require('moebius') for this runtime.
func (rt *runtime) moebiusModule(vm *goja.Runtime, module *goja.Object) {
	exports := module.Get("exports").(*goja.Object)
	set := func(name string, v any) { _ = exports.Set(name, v) }

	set("sleep", func(ms goja.Value) goja.Value {
		f := ms.ToFloat()
		if goja.IsUndefined(ms) || math.IsNaN(f) || f < 0 || math.IsInf(f, 0) {
			rt.throw(badArgument("sleep(ms) needs a finite number of milliseconds >= 0, got %s", ms.String()))
		}
		return vm.ToValue(&sleepOp{d: time.Duration(f * float64(time.Millisecond))})
	})
	set("text", func(v goja.Value) string {
		if o, ok := v.(*goja.Object); ok {
			switch o.ExportType() {
			case typeBytes:
				return string(o.Export().([]byte))
			case typeArrayBuffer:
				return string(o.Export().(goja.ArrayBuffer).Bytes())
			}
		}
		rt.throw(badArgument("text(bytes) needs a Uint8Array or an ArrayBuffer"))
		return ""
	})
	set("bytes", func(s string) goja.Value { return rt.bytesValue([]byte(s)) })
	set("dealer", func(addr string, opts goja.Value) goja.Value { return rt.newDealer(addr, opts) })
	set("request", func(addr string, x, opts goja.Value) goja.Value { return rt.newRequest(addr, x, opts) })
	set("TimeoutError", rt.timeoutError)
	set("ClientGoneError", rt.clientGoneError)
	set("server", rt.serverObject())
	set("log", rt.logObject())
}

// serverObject is the moebius `server`: the worker's clients and background
// work.
func (rt *runtime) serverObject() *goja.Object {
	if rt.server != nil {
		return rt.server
	}
	vm := rt.vm
	o := vm.NewObject()
	rt.server = o
	_ = o.Set("broadcast", func(x, filter goja.Value) { rt.broadcast(x, filter) })
	_ = o.Set("clients", func() goja.Value {
		rt.mustBeLoaded("server.clients()")
		list := make([]any, 0, len(rt.w.clients))
		for _, c := range rt.w.clients {
			list = append(list, rt.object(c))
		}
		return vm.NewArray(list...)
	})
	_ = o.Set("client", func(id string) goja.Value {
		rt.mustBeLoaded("server.client(id)")
		if raw, ok := IDBytes(id); ok {
			if c := rt.w.clients[raw]; c != nil {
				return rt.object(c)
			}
		}
		return goja.Null()
	})
	_ = o.Set("iterate", func(fn goja.Value) {
		rt.mustBeLoaded("server.iterate(fn)")
		f, ok := goja.AssertFunction(fn)
		if !ok {
			rt.throw(badArgument("server.iterate(fn) needs a function"))
		}
		for _, c := range rt.w.clients {
			if _, err := f(goja.Undefined(), rt.object(c)); err != nil {
				panic(err)
			}
		}
	})
	_ = o.Set("spawn", func(call goja.FunctionCall) goja.Value {
		rt.mustBeLoaded("server.spawn(fn)")
		f, ok := goja.AssertFunction(call.Argument(0))
		if !ok {
			rt.throw(badArgument("server.spawn(generatorFunction, ...args) needs a function"))
		}
		args := append([]goja.Value(nil), call.Arguments[1:]...)
		rt.w.sched.Spawn(&spawnJob{rt: rt, fn: f, args: args, what: "spawned work"})
		return goja.Undefined()
	})
	return o
}

// mustBeLoaded throws when handlers.js is still being evaluated: its
// top-level code runs off the scheduler goroutine and must not touch the
// worker's clients or tasks.
func (rt *runtime) mustBeLoaded(what string) {
	if !rt.loaded {
		rt.throw(errors.New(what + " is not available while handlers.js is loading; call it from a handler or background()"))
	}
}

// logObject is moebius `log`: log.info(message, fields?) and friends write
// to the server's log, fields as attributes.
func (rt *runtime) logObject() *goja.Object {
	o := rt.vm.NewObject()
	for name, level := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
	} {
		_ = o.Set(name, func(msg goja.Value, fields goja.Value) {
			attrs := []any{"source", "js"}
			if f, ok := fields.(*goja.Object); ok {
				for _, k := range f.Keys() {
					attrs = append(attrs, k, f.Get(k).Export())
				}
			}
			rt.w.log.Log(context.Background(), level, msg.String(), attrs...)
		})
	}
	return o
}

// spawnJob runs background work: the exported background(server) generator
// or what server.spawn started. Its failures are logged, never replied.
type spawnJob struct {
	rt      *runtime
	fn      goja.Callable
	args    []goja.Value
	what    string
	started bool
	scope   scope
}

func (j *spawnJob) Start() (core.Frame, error) {
	j.rt.acquire()
	j.started = true
	leave := j.rt.w.enter(&j.scope)
	res, err := j.rt.call(j.fn, goja.Undefined(), j.args...)
	leave()
	if err != nil {
		return nil, err
	}
	if g := j.rt.generator(res); g != nil {
		return &genFrame{rt: j.rt, gen: g, scope: &j.scope}, nil
	}
	return nil, nil
}

func (j *spawnJob) Finish(res core.Input) {
	if j.started {
		defer j.rt.release()
	}
	j.scope.close()
	if res.Err != nil && !errors.Is(res.Err, core.ErrCancelled) {
		j.rt.w.log.Error(j.what+" failed", "gen", j.rt.gen, "error", describe(res.Err))
	}
}

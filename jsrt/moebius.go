package jsrt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/internal/ident"
)

// moebiusModule is require('moebius') for this runtime.
func (rt *jsRuntime) moebiusModule(vm *goja.Runtime, module *goja.Object) {
	exports := module.Get("exports").(*goja.Object)
	set := func(name string, v any) { _ = exports.Set(name, v) }

	// Natives take a FunctionCall: call.Argument(i) is undefined, never nil,
	// when JavaScript passes fewer arguments.
	set("sleep", func(call goja.FunctionCall) goja.Value {
		ms := call.Argument(0)
		f := ms.ToFloat()
		if !goja.IsNumber(ms) || math.IsNaN(f) || f < 0 {
			rt.throw(badArgument("sleep(ms) needs a number of milliseconds >= 0 (Infinity: until cancelled), got %s", ms.String()))
		}
		return vm.ToValue(newSleepOp(f))
	})
	set("text", func(call goja.FunctionCall) goja.Value {
		if o, ok := call.Argument(0).(*goja.Object); ok {
			switch o.ExportType() {
			case typeBytes:
				return vm.ToValue(string(o.Export().([]byte)))
			case typeArrayBuffer:
				return vm.ToValue(string(o.Export().(goja.ArrayBuffer).Bytes()))
			}
		}
		rt.throw(badArgument("text(bytes) needs a Uint8Array or an ArrayBuffer"))
		return nil
	})
	set("bytes", func(call goja.FunctionCall) goja.Value {
		s := call.Argument(0)
		if !goja.IsString(s) {
			rt.throw(badArgument("bytes(text) needs a string"))
		}
		return rt.bytesValue([]byte(s.String()))
	})
	set("dealer", func(call goja.FunctionCall) goja.Value {
		return rt.newDealer(rt.address(call.Argument(0), "dealer"), call.Argument(1))
	})
	set("request", func(call goja.FunctionCall) goja.Value {
		return rt.newRequest(rt.address(call.Argument(0), "request"), call.Argument(1), call.Argument(2))
	})
	set("TimeoutError", rt.js.timeoutError)
	set("ClientGoneError", rt.js.clientGoneError)
	set("server", rt.serverObject())
	set("cluster", rt.clusterObject())
	set("log", rt.logObject())
}

// serverObject is the moebius `server`: the worker's clients and background
// work.
func (rt *jsRuntime) serverObject() *goja.Object {
	if rt.server != nil {
		return rt.server
	}
	vm := rt.vm
	o := vm.NewObject()
	rt.server = o
	_ = o.Set("broadcast", func(call goja.FunctionCall) goja.Value {
		rt.broadcast(call.Argument(0), call.Argument(1))
		return goja.Undefined()
	})
	_ = o.Set("send", func(call goja.FunctionCall) goja.Value {
		rt.sendTo(call)
		return goja.Undefined()
	})
	_ = o.Set("clients", func() goja.Value {
		rt.mustBeLoaded("server.clients()")
		list := make([]any, 0, len(rt.w.clients))
		for _, c := range rt.w.clients {
			list = append(list, rt.object(c))
		}
		return vm.NewArray(list...)
	})
	_ = o.Set("client", func(call goja.FunctionCall) goja.Value {
		rt.mustBeLoaded("server.client(id)")
		if raw, ok := ident.Bytes(call.Argument(0).String()); ok {
			if c := rt.w.clients[raw]; c != nil {
				return rt.object(c)
			}
		}
		return goja.Null()
	})
	_ = o.Set("iterate", func(call goja.FunctionCall) goja.Value {
		rt.mustBeLoaded("server.iterate(fn)")
		f, ok := goja.AssertFunction(call.Argument(0))
		if !ok {
			rt.throw(badArgument("server.iterate(fn) needs a function"))
		}
		for _, c := range rt.w.clients {
			if _, err := f(goja.Undefined(), rt.object(c)); err != nil {
				panic(err)
			}
		}
		return goja.Undefined()
	})
	_ = o.Set("spawn", func(call goja.FunctionCall) goja.Value {
		rt.mustBeLoaded("server.spawn(fn)")
		f, ok := goja.AssertFunction(call.Argument(0))
		if !ok {
			rt.throw(badArgument("server.spawn(generatorFunction, ...args) needs a function"))
		}
		args := append([]goja.Value(nil), call.Arguments[1:]...)
		if err := rt.spawn(f, args, "spawned work"); err != nil {
			rt.throw(err)
		}
		return goja.Undefined()
	})
	return o
}

// mustBeLoaded throws when handlers.js is still being evaluated: a
// generation that is loading is not live (its load may yet fail, and the
// clients and tasks belong to the generation serving them), so its
// top-level code must not act on them.
func (rt *jsRuntime) mustBeLoaded(what string) {
	if !rt.loaded {
		rt.throw(errors.New(what + " is not available while handlers.js is loading; call it from a handler or background()"))
	}
}

// address reads an endpoint argument of dealer() or request().
func (rt *jsRuntime) address(v goja.Value, fn string) string {
	if !goja.IsString(v) {
		rt.throw(badArgument("%s(address, ...) needs an endpoint such as 'tcp://127.0.0.1:5556'", fn))
	}
	return v.String()
}

// sendTo is server.send(id, ...parts): a message to the client with that
// id, whichever worker it is pinned to (for brokers relaying between
// clients). It throws ClientGoneError when no such client is connected.
func (rt *jsRuntime) sendTo(call goja.FunctionCall) {
	rt.mustBeLoaded("server.send(id, ...parts)")
	id := call.Argument(0)
	raw, ok := ident.Bytes(id.String())
	if !goja.IsString(id) || !ok {
		rt.throw(badArgument("server.send(id, ...parts) needs a client id, got %s", id.String()))
	}
	frames, err := rt.frames(call.Arguments[1:])
	if err != nil {
		rt.throw(err)
	}
	if c := rt.w.clients[raw]; c != nil {
		err = rt.w.send(c, frames) // this worker's client: aimed at its connection
	} else if err = rt.w.sendTo(Target{ID: raw}, id.String(), frames); err != nil {
		err = rt.sendElsewhere(raw, id.String(), frames)
	}
	if err != nil {
		rt.throw(err)
	}
}

// sendElsewhere sends to a client that no worker of this instance has:
// through the cluster to the instance that has it, if any.
func (rt *jsRuntime) sendElsewhere(raw, text string, frames [][]byte) error {
	c := rt.w.cluster
	if c == nil {
		return &clientGoneError{"client " + text + " is not connected"}
	}
	switch err := c.Send(raw, frames); {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoClient):
		return &clientGoneError{"client " + text + " is not connected to any instance of the cluster"}
	default:
		return fmt.Errorf("server.send(%s): client %s is not on this instance, and the cluster cannot be asked: %w", text, text, err)
	}
}

// logObject is moebius `log`: log.info(message, fields?) and friends write
// to the server's log, fields as attributes.
func (rt *jsRuntime) logObject() *goja.Object {
	o := rt.vm.NewObject()
	for name, level := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
	} {
		_ = o.Set(name, func(call goja.FunctionCall) goja.Value {
			attrs := []any{"source", "js"}
			if f, ok := call.Argument(1).(*goja.Object); ok {
				for _, k := range f.Keys() {
					attrs = append(attrs, k, f.Get(k).Export())
				}
			}
			rt.w.log.Log(context.Background(), level, call.Argument(0).String(), attrs...)
			return goja.Undefined()
		})
	}
	return o
}

// spawnJob runs background work: the exported background(server) generator
// or what server.spawn started. Its failures are logged, never replied. It
// belongs to the owner of the code that spawned it (see spawned).
type spawnJob struct {
	rt      *jsRuntime
	fn      goja.Callable
	args    []goja.Value
	what    string
	started bool
	scope   scope
	id      core.SpawnID
	set     spawned // where its owner tracks it
}

// spawn starts fn(...args) as a task of its own, owned like the code
// running now: by its client, or as background work. It fails with a
// RangeError past MaxSpawned tasks in the worker or MaxSpawnedPerClient
// for the owning client. What a guarded call spawns is cancelled if that
// call is interrupted (see jsRuntime.call).
func (rt *jsRuntime) spawn(fn goja.Callable, args []goja.Value, what string) error {
	w := rt.w
	cfg := &w.host.cfg
	j := &spawnJob{rt: rt, fn: fn, args: args, what: what}
	switch owner := w.scope; {
	case owner != nil && owner.client != nil && !owner.client.gone:
		c := owner.client
		j.scope.client = c
		j.scope.answers, j.scope.env = owner.answers, owner.env // replies of work spawned for a request carry its envelope
		j.set = w.clientSpawns[c]
		if len(j.set) >= cfg.MaxSpawnedPerClient {
			return rt.spawnRefused(fmt.Sprintf("client %s has %d spawned tasks running already (max_spawned_per_client)", c.text, len(j.set)), c.id)
		}
		if j.set == nil {
			j.set = spawned{}
			w.clientSpawns[c] = j.set
		}
	case owner != nil && owner.client != nil:
		return nil // its client is gone: the work has no one to do it for
	default:
		j.set = rt.life.bgSpawns
	}
	if n := w.sched.Spawned(); n >= cfg.MaxSpawned {
		return rt.spawnRefused(fmt.Sprintf("this worker has %d spawned tasks running already (max_spawned)", n), "")
	}
	j.id = w.sched.Spawn(j)
	j.set[j.id] = struct{}{}
	w.stepSpawns = append(w.stepSpawns, j.id)
	return nil
}

// spawnRefused counts, logs (rate-limited) and returns a spawn refusal.
func (rt *jsRuntime) spawnRefused(why, key string) error {
	rt.w.host.spawnRefused.Add(1)
	rt.w.host.lim.Log(rt.w.log, slog.LevelWarn, "spawn_refused", key, "server.spawn refused: "+why)
	return &rangeError{"server.spawn: " + why + "; let some finish first"}
}

func (j *spawnJob) Start() (core.Coroutine, error) {
	j.rt.acquire()
	j.started = true
	leave := j.rt.w.enter(&j.scope)
	res, err := j.rt.call(j.fn, goja.Undefined(), j.args...)
	leave()
	if err != nil {
		return nil, err
	}
	if g := j.rt.generator(res); g != nil {
		return &genCoroutine{rt: j.rt, gen: g, scope: &j.scope}, nil
	}
	return nil, nil
}

func (j *spawnJob) Finish(res core.Input) {
	if j.started {
		defer j.rt.release()
	}
	delete(j.set, j.id)
	j.scope.close()
	if res.Err != nil && !errors.Is(res.Err, core.ErrCancelled) {
		j.rt.w.log.Error(j.what+" failed", "gen", j.rt.gen, "error", j.rt.describe(res.Err))
	}
}

package jsrt

import (
	"errors"

	"github.com/dop251/goja"
)

// client is one connected peer as its worker knows it. A reconnect with the
// same identity is a new client.
type client struct {
	id   string // routing identity bytes
	text string // ident.Text(id): client.id in JavaScript, and in logs
	conn uint64 // the transport's connection serial
	gone bool   // disconnected: sends throw ClientGoneError
}

// object returns this runtime's JavaScript object for c, creating it on
// first use: {id, state, send, broadcast, close}.
func (rt *jsRuntime) object(c *client) *goja.Object {
	if o := rt.life.clients[c]; o != nil {
		return o
	}
	vm := rt.vm
	o := vm.NewObject()
	_ = o.DefineDataProperty("id", vm.ToValue(c.text), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = o.Set("state", vm.NewObject())
	_ = o.Set("send", func(call goja.FunctionCall) goja.Value {
		frames, err := rt.frames(call.Arguments)
		if err != nil {
			rt.throw(err)
		}
		if err := rt.w.send(c, frames); err != nil {
			rt.throw(err)
		}
		return goja.Undefined()
	})
	_ = o.Set("broadcast", func(call goja.FunctionCall) goja.Value {
		rt.broadcast(call.Argument(0), call.Argument(1))
		return goja.Undefined()
	})
	_ = o.Set("close", func(goja.FunctionCall) goja.Value {
		rt.w.disconnect(c)
		return goja.Undefined()
	})
	if !c.gone {
		rt.life.clients[c] = o
	}
	return o
}

// forget drops this runtime's object for a client that went away.
func (rt *jsRuntime) forget(c *client) { delete(rt.life.clients, c) }

// broadcast sends x to every connected client that filter (when it is a
// function) accepts. Without a filter it reaches the clients of every
// worker; a filter runs here, on this worker's clients. A filter that throws
// skips that client and the error is logged.
func (rt *jsRuntime) broadcast(x, filter goja.Value) {
	rt.mustBeLoaded("broadcast")
	f, err := rt.frame(x)
	if err != nil {
		rt.throw(err)
	}
	accept, hasFilter := goja.AssertFunction(filter)
	if !hasFilter {
		rt.w.host.broadcast(rt.w, f)
		return
	}
	for _, c := range rt.w.clients {
		ok, err := accept(goja.Undefined(), rt.object(c))
		if err != nil {
			if uncatchable(err) {
				panic(err) // the watchdog stopped this step: let it end
			}
			rt.w.log.Error("broadcast filter threw", "client", c.text, "error", rt.describe(err))
			continue
		}
		if ok.ToBoolean() {
			rt.w.broadcastTo(c, f)
		}
	}
}

// adoptStates gives each client of old that has a JSON-serialisable state a
// copy of it in rt. Called when rt replaces old; the state's toJSON, if
// any, runs under the watchdog like any step.
func (rt *jsRuntime) adoptStates(old *jsRuntime) {
	for c, o := range old.life.clients {
		if c.gone {
			continue
		}
		var s goja.Value
		err := old.read(func() { // state may be a getter, toJSON a loop: all guarded
			var jerr error
			if s, jerr = old.js.jsonStringify(goja.Undefined(), o.Get("state")); jerr != nil {
				panic(jerr) // an exception or an interrupt: goja carries either out of read
			}
		})
		if err == nil && goja.IsUndefined(s) {
			err = errors.New("it has no JSON form")
		}
		if err != nil {
			rt.w.log.Warn("client.state not carried over to the new code: it is not JSON-serialisable",
				"client", c.text, "error", old.errorText(err))
			continue
		}
		v, err := rt.js.jsonParse(goja.Undefined(), rt.vm.ToValue(s.String()))
		if err != nil {
			rt.w.log.Warn("client.state not carried over to the new code", "client", c.text, "error", rt.errorText(err))
			continue
		}
		_ = rt.object(c).Set("state", v)
	}
}

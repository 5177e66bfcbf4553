package jsrt

import (
	"errors"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/internal/ident"
)

// client is one connected peer as its worker knows it. A reconnect with the
// same identity is a new client.
type client struct {
	id   string // routing identity bytes
	text string // ident.Text(id): client.id in JavaScript, and in logs
	conn uint64 // the transport's connection serial
	key  string // the CURVE public key it proved (Z85); "" on NULL
	gone bool   // disconnected: sends throw ClientGoneError
}

// connInfo is what the transport says of a client's connection: its
// serial and the CURVE public key the client proved ("" on NULL).
type connInfo struct {
	conn      uint64
	publicKey string
}

// newClient is the worker's record of connection ci of identity id.
func newClient(id string, ci connInfo) *client {
	return &client{id: id, text: ident.Text(id), conn: ci.conn, key: ci.publicKey}
}

// object returns this runtime's JavaScript object for c, creating it on
// first use: {id, state}, whose send, broadcast and close come from a
// prototype all clients share (clientPrototype) and find their client
// through a hidden symbol-keyed slot. Sharing them keeps a client's object
// small: many clients parked in a handler each hold one.
func (rt *jsRuntime) object(c *client) *goja.Object {
	if o := rt.life.clients[c]; o != nil {
		rt.lastObject, rt.lastClient = o, c
		return o
	}
	vm := rt.vm
	o := vm.NewObject()
	_ = o.SetPrototype(rt.clientPrototype())
	_ = o.DefineDataProperty("id", vm.ToValue(c.text), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	publicKey := goja.Null()
	if c.key != "" {
		publicKey = vm.ToValue(c.key)
	}
	_ = o.DefineDataProperty("publicKey", publicKey, goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = o.Set("state", vm.NewObject())
	_ = o.DefineDataPropertySymbol(rt.clientSlot, vm.ToValue(c), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
	if !c.gone {
		rt.life.clients[c] = o
	}
	rt.lastObject, rt.lastClient = o, c
	return o
}

// clientPrototype is the prototype of this runtime's client objects, made
// on first use: send, broadcast and close, each acting for the client its
// this is.
func (rt *jsRuntime) clientPrototype() *goja.Object {
	if rt.clientProto != nil {
		return rt.clientProto
	}
	rt.clientSlot = goja.NewSymbol("moebius.client")
	p := rt.vm.NewObject()
	method := func(name string, fn func(c *client, call goja.FunctionCall)) {
		_ = p.Set(name, func(call goja.FunctionCall) goja.Value {
			fn(rt.thisClient(call.This, name), call)
			return goja.Undefined()
		})
	}
	method("send", func(c *client, call goja.FunctionCall) {
		frames, err := rt.frames(call.Arguments)
		if err != nil {
			rt.throw(err)
		}
		if err := rt.w.send(c, frames); err != nil {
			rt.throw(err)
		}
	})
	method("broadcast", func(_ *client, call goja.FunctionCall) { rt.broadcast(call.Argument(0), call.Argument(1)) })
	method("close", func(c *client, _ goja.FunctionCall) { rt.w.disconnect(c) })
	rt.clientProto = p
	return p
}

// thisClient is the client a client method was called on, or a TypeError
// when this is no client object (a method taken off its client:
// const send = client.send).
func (rt *jsRuntime) thisClient(this goja.Value, method string) *client {
	if o, ok := this.(*goja.Object); ok {
		if o == rt.lastObject { // the object a handler was just given: no lookup
			return rt.lastClient
		}
		if c, ok := o.GetSymbol(rt.clientSlot).Export().(*client); ok {
			return c
		}
	}
	rt.throw(badArgument("client.%s must be called on a client object, as client.%s(...)", method, method))
	return nil
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
		if c := rt.w.cluster; c != nil {
			_ = c.Broadcast(f) // down: this instance's clients only (the link logs and counts it)
		}
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

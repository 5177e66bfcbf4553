package testkit

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/console"
	"github.com/dop251/goja_nodejs/require"

	"github.com/moebius-js/moebius-js/transpile"
)

// kitSource is require('moebius/test') in JavaScript, over a binding.
//
//go:embed kit.js
var kitSource string

// kitName is the name kit.js is compiled under, which failure reports
// skip when they look for the test file's line.
const kitName = "moebius/test"

// registered is one test a test file declared.
type registered struct {
	name string
	fn   goja.Callable
	skip bool
}

// fileRuntime is one test file's own goja runtime, with the kit in it.
// Driver goroutine only.
type fileRuntime struct {
	vm      *goja.Runtime
	tests   []registered
	context goja.Callable // kit.js's context(sim): a test's `t`
}

// newFileRuntime makes a runtime whose require loads files from disk
// (TypeScript through transpile) and offers 'moebius/test'; console
// writes to out.
func newFileRuntime(out io.Writer) (*fileRuntime, error) {
	fr := &fileRuntime{vm: goja.New()}
	vm := fr.vm
	prg, err := goja.Compile(kitName, kitSource, true)
	if err != nil {
		return nil, fmt.Errorf("compile the test kit: %w", err)
	}
	factory, err := vm.RunProgram(prg)
	if err != nil {
		return nil, fmt.Errorf("run the test kit: %w", err)
	}
	build, _ := goja.AssertFunction(factory)
	binding := vm.NewObject()
	_ = binding.Set("register", func(name string, fn goja.Value, skip bool) {
		call, ok := goja.AssertFunction(fn)
		if !ok && !skip {
			panic(vm.NewTypeError("test(name, fn): fn must be a function"))
		}
		fr.tests = append(fr.tests, registered{name: name, fn: call, skip: skip})
	})
	kit, err := build(goja.Undefined(), binding)
	if err != nil {
		return nil, fmt.Errorf("build the test kit: %w", err)
	}
	kitObj := kit.ToObject(vm)
	fr.context, _ = goja.AssertFunction(kitObj.Get("context"))
	exports := kitObj.Get("exports")

	reg := require.NewRegistry(require.WithLoader(func(p string) ([]byte, error) {
		b, err := require.DefaultSourceLoader(p)
		if err != nil {
			return nil, err
		}
		return transpile.ForGoja(p, b)
	}))
	reg.RegisterNativeModule(kitName, func(_ *goja.Runtime, module *goja.Object) {
		_ = module.Set("exports", exports)
	})
	reg.RegisterNativeModule("console", console.RequireWithPrinter(linePrinter{out}))
	reg.Enable(vm)
	console.Enable(vm)
	return fr, nil
}

// linePrinter is console in a test file: each line to the runner's output,
// indented under the test.
type linePrinter struct{ w io.Writer }

func (p linePrinter) Log(s string)   { fmt.Fprintf(p.w, "    # %s\n", s) }
func (p linePrinter) Warn(s string)  { p.Log(s) }
func (p linePrinter) Error(s string) { p.Log(s) }

// simBinding is the Go side of one test's `t`: the methods kit.js calls,
// over that test's Sim. A client is passed to JavaScript as its *Client,
// an opaque handle kit.js gives back. Driver goroutine.
type simBinding struct {
	vm  *goja.Runtime
	sim *Sim
}

func (b *simBinding) object() *goja.Object {
	o := b.vm.NewObject()
	set := func(name string, fn any) { _ = o.Set(name, fn) }
	set("connect", func(id, key string) goja.Value {
		c, err := b.sim.Connect(id, key)
		b.check(err)
		return b.vm.ToValue(c)
	})
	set("send", func(h goja.Value, frames []goja.Value) {
		raw := make([][]byte, len(frames))
		for i, f := range frames {
			raw[i] = b.bytes(f)
		}
		b.check(b.sim.Send(b.client(h), raw))
	})
	set("take", func(h goja.Value) goja.Value {
		m, ok := b.sim.Take(b.client(h))
		if !ok {
			return goja.Null()
		}
		return b.frames(m)
	})
	set("received", func(h goja.Value) goja.Value {
		msgs := b.sim.Received(b.client(h))
		out := make([]any, len(msgs))
		for i, m := range msgs {
			out[i] = b.frames(m)
		}
		return b.vm.NewArray(out...)
	})
	set("disconnect", func(h goja.Value) { b.check(b.sim.Disconnect(b.client(h))) })
	set("connected", func(h goja.Value) bool { return b.sim.Connected(b.client(h)) })
	set("advance", func(ms float64) {
		if ms > float64(math.MaxInt64/int64(time.Millisecond)) {
			panic(b.vm.NewTypeError("advance(%v): too far", ms))
		}
		b.check(b.sim.Advance(time.Duration(ms * float64(time.Millisecond))))
	})
	set("now", func() float64 { return float64(b.sim.Elapsed()) / float64(time.Millisecond) })
	set("reload", func() { b.check(b.sim.Reload()) })
	set("stub", func(endpoint string, answer goja.Callable) {
		b.sim.Stub(endpoint, func(frames [][]byte, reply func([][]byte) error) error {
			send := func(out []goja.Value) {
				raw := make([][]byte, len(out))
				for i, f := range out {
					raw[i] = b.bytes(f)
				}
				b.check(reply(raw))
			}
			_, err := answer(goja.Undefined(), b.frames(frames), b.vm.ToValue(send))
			if err != nil {
				return fmt.Errorf("the stub of %s threw: %w", endpoint, err)
			}
			return nil
		})
	})
	set("logs", func() []string { return b.sim.Logs() })
	return o
}

// check throws err in JavaScript: a JavaScript exception (a stub's, say)
// as it was thrown, anything else as an Error with its message.
func (b *simBinding) check(err error) {
	if err == nil {
		return
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		panic(ex)
	}
	panic(b.vm.NewGoError(err))
}

func (b *simBinding) client(h goja.Value) *Client {
	c, ok := h.Export().(*Client)
	if !ok {
		panic(b.vm.NewTypeError("not a test client"))
	}
	return c
}

// bytes is a frame kit.js encoded: a string (its UTF-8) or an ArrayBuffer.
func (b *simBinding) bytes(v goja.Value) []byte {
	switch x := v.Export().(type) {
	case string:
		return []byte(x)
	case goja.ArrayBuffer:
		return append([]byte(nil), x.Bytes()...)
	}
	panic(b.vm.NewTypeError("a frame must be a string or bytes"))
}

// frames is a message for kit.js to decode: each frame as a string, or an
// ArrayBuffer when it is not UTF-8.
func (b *simBinding) frames(m [][]byte) goja.Value {
	out := make([]any, len(m))
	for i, f := range m {
		if utf8.Valid(f) {
			out[i] = string(f)
		} else {
			out[i] = b.vm.NewArrayBuffer(append([]byte(nil), f...))
		}
	}
	return b.vm.NewArray(out...)
}

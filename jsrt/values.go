package jsrt

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
)

var (
	typeBytes       = reflect.TypeOf([]byte(nil))
	typeArrayBuffer = reflect.TypeOf(goja.ArrayBuffer{})
	typeProxy       = reflect.TypeOf(goja.Proxy{})
	typeSleepOp     = reflect.TypeOf(&sleepOp{})
	typeRecvOp      = reflect.TypeOf(&recvOp{})
	typeRequestOp   = reflect.TypeOf(&requestOp{})
)

// These Go errors become TimeoutError, ClientGoneError, TypeError and
// RangeError when
// thrown into JavaScript.
type (
	timeoutError    struct{ msg string }
	clientGoneError struct{ msg string }
	typeError       struct{ msg string }
	rangeError      struct{ msg string }
)

func (e *timeoutError) Error() string    { return e.msg }
func (e *clientGoneError) Error() string { return e.msg }
func (e *typeError) Error() string       { return e.msg }
func (e *rangeError) Error() string      { return e.msg }

// badArgument is a TypeError for a moebius API call's arguments.
func badArgument(format string, args ...any) error {
	return &typeError{fmt.Sprintf(format, args...)}
}

// frame converts one client.send argument to a frame: a string is its UTF-8
// bytes, a Uint8Array or ArrayBuffer a copy of its bytes, anything else its
// JSON text.
func (rt *jsRuntime) frame(v goja.Value) ([]byte, error) {
	if goja.IsString(v) {
		return []byte(v.String()), nil
	}
	if o, ok := v.(*goja.Object); ok {
		switch o.ExportType() {
		case typeBytes:
			return append([]byte(nil), o.Export().([]byte)...), nil
		case typeArrayBuffer:
			return append([]byte(nil), o.Export().(goja.ArrayBuffer).Bytes()...), nil
		}
	}
	s, err := rt.js.jsonStringify(goja.Undefined(), v)
	if err != nil {
		return nil, err
	}
	if goja.IsUndefined(s) {
		return nil, badArgument("cannot send %s: it has no JSON form", v.String())
	}
	return []byte(s.String()), nil
}

// frames converts client.send's arguments to one message.
func (rt *jsRuntime) frames(args []goja.Value) ([][]byte, error) {
	if len(args) == 0 {
		return nil, badArgument("send needs at least one argument")
	}
	out := make([][]byte, len(args))
	for i, a := range args {
		f, err := rt.frame(a)
		if err != nil {
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}

// bytesValue wraps b (not copied) in a new Uint8Array.
func (rt *jsRuntime) bytesValue(b []byte) goja.Value {
	arr, err := rt.vm.New(rt.js.uint8Array, rt.vm.ToValue(rt.vm.NewArrayBuffer(b)))
	if err != nil {
		panic(err)
	}
	return arr
}

// value converts what a coroutine resumes with to JavaScript.
func (rt *jsRuntime) value(v any) goja.Value {
	switch v := v.(type) {
	case nil:
		return goja.Undefined()
	case goja.Value:
		return v
	case []byte:
		return rt.bytesValue(v)
	}
	return rt.vm.ToValue(v)
}

// errorValue converts an error to the JavaScript value to throw.
func (rt *jsRuntime) errorValue(err error) goja.Value {
	var ex *goja.Exception
	var te *timeoutError
	var cg *clientGoneError
	var tye *typeError
	var re *rangeError
	switch {
	case errors.As(err, &ex):
		return ex.Value()
	case errors.As(err, &te):
		return rt.newError(rt.js.timeoutError, te.msg)
	case errors.As(err, &cg):
		return rt.newError(rt.js.clientGoneError, cg.msg)
	case errors.As(err, &tye):
		return rt.newError(rt.js.typeErrorCtor, tye.msg)
	case errors.As(err, &re):
		return rt.newError(rt.js.rangeErrorCtor, re.msg)
	case errors.Is(err, core.ErrStackOverflow):
		return rt.newError(rt.js.rangeErrorCtor, err.Error())
	}
	return rt.newError(rt.js.errorCtor, err.Error())
}

func (rt *jsRuntime) newError(ctor goja.Value, msg string) goja.Value {
	o, err := rt.vm.New(ctor, rt.vm.ToValue(msg))
	if err != nil {
		return rt.vm.ToValue(msg)
	}
	return o
}

// throw raises err as a JavaScript exception from inside a native function.
func (rt *jsRuntime) throw(err error) {
	panic(rt.errorValue(err))
}

// message is the JavaScript view of one request's frames: "frames" (each a
// Uint8Array of the exact bytes) and "text" (the first frame as UTF-8), both
// built on first use.
type message struct {
	rt       *jsRuntime
	env      [][]byte // the envelope, delimiter included; nil: none
	raw      [][]byte
	subject  string // a cluster message's subject; "" for a client's message
	frames   goja.Value
	text     goja.Value
	envelope goja.Value
}

func (m *message) Get(key string) goja.Value {
	switch key {
	case "frames":
		if m.frames == nil {
			vals := make([]any, len(m.raw))
			for i, f := range m.raw {
				vals[i] = m.rt.bytesValue(f)
			}
			m.frames = m.rt.vm.NewArray(vals...)
		}
		return m.frames
	case "text":
		return m.textValue()
	case "subject":
		if m.subject != "" {
			return m.rt.vm.ToValue(m.subject)
		}
	case "envelope":
		// The frames before the delimiter, or null when the message came
		// with none.
		if m.envelope == nil {
			if m.env == nil {
				m.envelope = goja.Null()
			} else {
				vals := make([]any, len(m.env)-1)
				for i, f := range m.env[:len(m.env)-1] {
					vals[i] = m.rt.bytesValue(f)
				}
				m.envelope = m.rt.vm.NewArray(vals...)
			}
		}
		return m.envelope
	}
	return nil
}

func (m *message) textValue() goja.Value {
	if m.text == nil {
		var s string
		if len(m.raw) > 0 {
			s = string(m.raw[0])
		}
		m.text = m.rt.vm.ToValue(s)
	}
	return m.text
}

func (m *message) Set(string, goja.Value) bool { return false }
func (m *message) Has(key string) bool {
	return key == "frames" || key == "text" || key == "envelope" || key == "subject" && m.subject != ""
}
func (m *message) Delete(string) bool { return false }
func (m *message) Keys() []string {
	if m.subject != "" {
		return []string{"subject", "frames", "text", "envelope"}
	}
	return []string{"frames", "text", "envelope"}
}

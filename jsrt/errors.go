package jsrt

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/transpile"
)

// Error codes of the JSON error reply {"error":{"code":…,"message":…}}.
const (
	CodeInvalidJSON    = "invalid_json"    // the payload is not JSON
	CodeMissingCommand = "missing_command" // JSON, but no string "command"
	CodeUnknownCommand = "unknown_command" // no rule has that command
	CodeNoRoute        = "no_route"        // a custom route threw or returned nothing
	CodeQueueFull      = "queue_full"      // the client's queue is at its bound
	CodeHandlerError   = "handler_error"   // the handler threw
	CodeRunaway        = "runaway_handler" // a step overran the budget or the call stack
	CodeShuttingDown   = "shutting_down"   // the server is draining and takes no new requests
)

// refusal is why a request was refused before its handler ran: it could
// not be routed or queued. It carries its reply code.
type refusal struct {
	code string
	msg  string
}

func (e *refusal) Error() string { return e.msg }

// errorReply is the JSON error reply for code and message.
func errorReply(code, msg string) []byte {
	b, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": msg}})
	return b
}

// classify returns the reply code and a one-line message for how a request
// ended.
func (rt *jsRuntime) classify(err error) (code, msg string) {
	var re *refusal
	var intr *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &re):
		return re.code, re.msg
	case errors.As(err, &intr):
		return CodeRunaway, fmt.Sprint(intr.Value())
	case errors.As(err, &so), errors.Is(err, core.ErrStackOverflow):
		return CodeRunaway, "maximum call stack size exceeded"
	case errors.As(err, &ex):
		return CodeHandlerError, rt.thrownText(ex.Value())
	}
	return CodeHandlerError, err.Error()
}

// errorText is err as one line: a thrown value's "Name: message", or the Go
// error's text.
func (rt *jsRuntime) errorText(err error) string {
	var ex *goja.Exception
	if errors.As(err, &ex) && !uncatchable(err) {
		return rt.thrownText(ex.Value())
	}
	return err.Error()
}

// thrownText renders a thrown value as "Name: message" without running any
// JavaScript: it reads "name" and "message" only where they are plain data
// properties (a getter or toString could loop for ever, outside any step's
// watchdog).
func (rt *jsRuntime) thrownText(v goja.Value) string {
	o, ok := v.(*goja.Object)
	if !ok {
		if v == nil {
			return "exception"
		}
		return v.String() // a primitive: no user code runs
	}
	msg, hasMsg := rt.dataProperty(o, "message")
	name, hasName := rt.dataProperty(o, "name")
	switch {
	case hasName && hasMsg:
		return name + ": " + msg
	case hasMsg:
		return "Error: " + msg
	case hasName:
		return name
	}
	return "thrown " + o.ClassName() + " object"
}

// dataProperty finds key on o or its prototypes and returns it as text when
// it is a data property holding a string (accessors are not called).
func (rt *jsRuntime) dataProperty(o *goja.Object, key string) (string, bool) {
	for depth := 0; o != nil && depth < 32; depth++ {
		if o.ExportType() == typeProxy {
			return "", false // its traps are user code
		}
		d, err := rt.js.ownDescriptor(goja.Undefined(), o, rt.vm.ToValue(key))
		if err != nil {
			return "", false
		}
		if desc, ok := d.(*goja.Object); ok {
			v := desc.Get("value")
			if v == nil || !goja.IsString(v) {
				return "", false // an accessor, or not a string
			}
			return v.String(), true
		}
		o = o.Prototype()
	}
	return "", false
}

// describe renders err for the log: the message, then the JavaScript stack
// one stack frame a line as "at fn (file:line:col)".
func (rt *jsRuntime) describe(err error) string {
	var b strings.Builder
	var stack []goja.StackFrame
	var intr *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &intr):
		b.WriteString(fmt.Sprint(intr.Value()))
		stack = intr.Stack()
	case errors.As(err, &so):
		b.WriteString("RangeError: maximum call stack size exceeded")
		stack = so.Stack()
		if len(stack) > 10 {
			stack = stack[:10]
		}
	case errors.As(err, &ex):
		b.WriteString(rt.thrownText(ex.Value()))
		stack = ex.Stack()
	default:
		return err.Error()
	}
	for i := range stack {
		f := &stack[i]
		if f.SrcName() == "<native>" {
			continue
		}
		b.WriteString("\n    at ")
		b.WriteString(f.FuncName())
		b.WriteString(" (")
		b.WriteString(position(f))
		b.WriteString(")")
	}
	return b.String()
}

// position is a stack frame's file:line:col.
func position(f *goja.StackFrame) string {
	p := f.Position()
	if p.Line == 1 && p.Column > len(transpile.ModuleWrapper) && !transpile.IsTypeScript(p.Filename) { // a .ts position comes from its source map, unwrapped
		p.Column -= len(transpile.ModuleWrapper)
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// describeLoadError renders an error from compiling or evaluating a file
// with its file:line:col first.
func (rt *jsRuntime) describeLoadError(err error) string {
	var syn *transpile.Error
	var ex *goja.Exception
	switch {
	case errors.As(err, &syn):
		return syn.Error()
	case errors.As(err, &ex):
		for i, st := 0, ex.Stack(); i < len(st); i++ {
			if st[i].SrcName() != "<native>" {
				return position(&st[i]) + ": " + rt.describe(err)
			}
		}
	}
	return rt.describe(err)
}

package jsrt

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dop251/goja"

	"github.com/moebius-js/moebius-js/core"
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

// requestError is a request that could not be routed or queued.
type requestError struct {
	code string
	msg  string
}

func (e *requestError) Error() string { return e.msg }

// errorReply is the JSON error reply for code and message.
func errorReply(code, msg string) []byte {
	b, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": msg}})
	return b
}

// classify returns the reply code and a one-line message for how a request
// ended.
func classify(err error) (code, msg string) {
	var re *requestError
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
		return CodeHandlerError, exceptionMessage(ex)
	}
	return CodeHandlerError, err.Error()
}

// exceptionMessage is the thrown value as one line: "Error: boom".
func exceptionMessage(ex *goja.Exception) string {
	v := ex.Value()
	if v == nil {
		return "exception"
	}
	if o, ok := v.(*goja.Object); ok {
		if m := o.Get("message"); m != nil && !goja.IsUndefined(m) {
			name := "Error"
			if n := o.Get("name"); n != nil && !goja.IsUndefined(n) {
				name = n.String()
			}
			return name + ": " + m.String()
		}
	}
	return v.String()
}

// describe renders err for the log: the message, then the JavaScript stack
// one frame a line as "at fn (file:line:col)".
func describe(err error) string {
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
		b.WriteString(exceptionMessage(ex))
		stack = ex.Stack()
	default:
		return describeLoadError(err)
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
	if p.Line == 1 && p.Column > len(moduleWrapper) {
		p.Column -= len(moduleWrapper)
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// describeLoadError renders an error from compiling or evaluating a file
// with its file:line:col first.
func describeLoadError(err error) string {
	var syn *syntaxError
	var ex *goja.Exception
	switch {
	case errors.As(err, &syn):
		return syn.Error()
	case errors.As(err, &ex):
		for i, st := 0, ex.Stack(); i < len(st); i++ {
			if st[i].SrcName() != "<native>" {
				return position(&st[i]) + ": " + describe(err)
			}
		}
		return describe(err)
	}
	return err.Error()
}

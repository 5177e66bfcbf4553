package jsrt

import (
	"fmt"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"

	"github.com/moebius-js/moebius-js/core"
)

// exports is what one generation's module.exports offers the server: its
// rules by command, or a custom route, and the optional hooks. Fixed once
// the load returns; read on the worker's goroutine.
type exports struct {
	rules          map[string]rule
	route          goja.Callable
	background     goja.Callable
	onMessageError goja.Callable
	onStepError    goja.Callable
	authorize      goja.Callable // authorize(publicKey, address): may a CURVE client connect?
}

// rule is one entry of module.exports.rules.
type rule struct {
	command    string // its command, as the rule names it
	call       goja.Callable
	strategy   core.Strategy
	clientOnly bool // the handler cannot see its data or message argument (takesClientOnly)
}

// takesClientOnly reports whether a handler can see nothing but its first
// argument (the client): a JavaScript function that declares at most one
// parameter, none of them a rest parameter, and whose source mentions
// neither arguments nor eval. Such a handler is called with the client alone, so
// the request's JSON is never built into objects for it. Natives and bound
// functions (whose source does not show) and anything that does not parse
// as a function count as seeing everything. It reads the function's source
// with Function.prototype.toString as it was before handlers.js ran: the
// loading goroutine, under the load's timer.
func takesClientOnly(js *intrinsics, fn goja.Value) bool {
	src, err := js.fnToString(fn)
	if err != nil {
		return false
	}
	text := src.String()
	if strings.Contains(text, "arguments") || strings.Contains(text, "eval") { // eval could reach arguments
		return false
	}
	params, ok := parameters(text)
	return ok && params.Rest == nil && len(params.List) <= 1
}

// parameters parses a function's source (an expression, or a method as
// an object literal shows it) and returns its parameter list.
func parameters(src string) (*ast.ParameterList, bool) {
	for _, wrapped := range []string{"(" + src + "\n)", "({" + src + "\n})"} {
		prog, err := parser.ParseFile(nil, "", wrapped, 0)
		if err != nil || len(prog.Body) != 1 {
			continue
		}
		stmt, ok := prog.Body[0].(*ast.ExpressionStatement)
		if !ok {
			continue
		}
		expr := stmt.Expression
		if obj, ok := expr.(*ast.ObjectLiteral); ok && len(obj.Value) == 1 {
			if prop, ok := obj.Value[0].(*ast.PropertyKeyed); ok {
				expr = prop.Value
			}
		}
		switch f := expr.(type) {
		case *ast.FunctionLiteral:
			return f.ParameterList, true
		case *ast.ArrowFunctionLiteral:
			return f.ParameterList, true
		}
	}
	return nil, false
}

// maxRules bounds module.exports.rules (a sparse array can claim billions).
const maxRules = 10_000

// readExports checks module.exports and keeps what the server uses. It may
// run the script's getters: the loading goroutine, under the load's timer.
func readExports(js *intrinsics, path string, value goja.Value) (ex exports, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: module.exports.%s", path, fmt.Sprintf(format, args...))
	}
	obj, ok := value.(*goja.Object)
	if !ok || goja.IsUndefined(value) || goja.IsNull(value) {
		return ex, fmt.Errorf("%s: module.exports must be an object with rules or route", path)
	}
	fn := func(name string) (goja.Callable, error) {
		v := obj.Get(name)
		if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
			return nil, nil
		}
		f, ok := goja.AssertFunction(v)
		if !ok {
			return nil, bad("%s must be a function", name)
		}
		return f, nil
	}
	if ex.route, err = fn("route"); err != nil {
		return ex, err
	}
	if ex.background, err = fn("background"); err != nil {
		return ex, err
	}
	if ex.onMessageError, err = fn("onMessageError"); err != nil {
		return ex, err
	}
	if ex.onStepError, err = fn("onStepError"); err != nil {
		return ex, err
	}
	if ex.authorize, err = fn("authorize"); err != nil {
		return ex, err
	}

	rules := obj.Get("rules")
	if rules == nil || goja.IsUndefined(rules) || goja.IsNull(rules) {
		if ex.route == nil {
			return ex, fmt.Errorf("%s: module.exports has neither rules nor route", path)
		}
		return ex, nil
	}
	list, ok := rules.(*goja.Object)
	if !ok || list.ClassName() != "Array" {
		return ex, bad("rules must be an array")
	}
	n := list.Get("length").ToInteger()
	if n > maxRules {
		return ex, bad("rules has %d entries; at most %d are allowed", n, maxRules)
	}
	ex.rules = make(map[string]rule, n)
	for i := int64(0); i < n; i++ {
		r, ok := list.Get(fmt.Sprint(i)).(*goja.Object)
		if !ok {
			return ex, bad("rules[%d] must be an object {command, handler, strategy?}", i)
		}
		cmd := r.Get("command")
		if cmd == nil || !goja.IsString(cmd) || cmd.String() == "" {
			return ex, bad("rules[%d].command must be a non-empty string", i)
		}
		hv := r.Get("handler")
		h, ok := goja.AssertFunction(hv)
		if !ok {
			return ex, bad("rules[%d].handler must be a function (command %q)", i, cmd.String())
		}
		strategy := core.Queue
		if s := r.Get("strategy"); s != nil && !goja.IsUndefined(s) {
			if strategy, err = core.ParseStrategy(s.String()); err != nil {
				return ex, bad("rules[%d].strategy: %v", i, err)
			}
		}
		if _, dup := ex.rules[cmd.String()]; dup {
			return ex, bad("rules[%d]: command %q appears twice", i, cmd.String())
		}
		ex.rules[cmd.String()] = rule{command: cmd.String(), call: h, strategy: strategy, clientOnly: takesClientOnly(js, hv)}
	}
	return ex, nil
}

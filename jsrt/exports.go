package jsrt

import (
	"fmt"

	"github.com/dop251/goja"

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
}

// rule is one entry of module.exports.rules.
type rule struct {
	call     goja.Callable
	strategy core.Strategy
}

// maxRules bounds module.exports.rules (a sparse array can claim billions).
const maxRules = 10_000

// readExports checks module.exports and keeps what the server uses. It may
// run the script's getters: the loading goroutine, under the load's timer.
func readExports(path string, value goja.Value) (ex exports, err error) {
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
		h, ok := goja.AssertFunction(r.Get("handler"))
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
		ex.rules[cmd.String()] = rule{call: h, strategy: strategy}
	}
	return ex, nil
}

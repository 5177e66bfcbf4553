package jsrt

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/file"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja_nodejs/console"
	"github.com/dop251/goja_nodejs/require"

	"github.com/moebius-js/moebius-js/core"
)

// rule is one entry of module.exports.rules.
type rule struct {
	call     goja.Callable
	strategy core.Strategy
}

// jsRuntime is one generation of handlers.js in one worker: a goja runtime
// with the file evaluated and its exports checked. It is built on any
// goroutine, then used only on its worker's scheduler goroutine.
type jsRuntime struct {
	w     *worker
	gen   int
	vm    *goja.Runtime
	files []string // every file the load read, for the watcher

	rules          map[string]rule
	route          goja.Callable
	background     goja.Callable
	onMessageError goja.Callable
	onStepError    goja.Callable

	// Cached JavaScript values.
	jsonParse       goja.Callable
	jsonStringify   goja.Callable
	genProto        *goja.Object // %GeneratorPrototype%
	genFuncProto    *goja.Object // %GeneratorFunction.prototype%
	genNext         goja.Callable
	genThrow        goja.Callable
	genReturn       goja.Callable
	uint8Array      goja.Value
	timeoutError    *goja.Object
	clientGoneError *goja.Object
	errorCtor       goja.Value // Error, TypeError, RangeError as they were at start:
	typeErrorCtor   goja.Value // handlers.js may overwrite the globals
	rangeErrorCtor  goja.Value
	ownDescriptor   goja.Callable // Object.getOwnPropertyDescriptor
	setOwn          goja.Callable // (o, k, v): define k as o's own data property, for keys Go strings cannot hold

	server      *goja.Object             // the moebius server object, made on first use
	loaded      bool                     // evaluation is over: the worker's state may be used
	sources     map[string][]byte        // what the load read, by path: a retired worker's successor loads the same code
	clients     map[*client]*goja.Object // this runtime's object for each client
	scope       scope                    // what code run at load time opened (module-level dealers)
	bgSpawns    spawned                  // background() and the work it spawned
	loadDealers int                      // dealers its top-level code opened
	refs        int                      // jobs and coroutines still running here
	retired     bool                     // a newer generation is live
}

// loadBudgetSteps bounds the evaluation of handlers.js, which may loop
// forever: it may take this many step budgets.
const loadBudgetSteps = 5

// maxRules bounds module.exports.rules (a sparse array can claim billions).
const maxRules = 10_000

// maxCallStack bounds JavaScript call depth, so that unbounded recursion
// ends in a RangeError-like abort instead of exhausting memory.
const maxCallStack = 10_000

// load evaluates the handlers file at path into a new runtime for w. The
// error names the file, line and column. Files found in src (the sources
// of an earlier load, or nil) are read from there rather than from disk, so
// that the successor of a retired worker runs the code of the generation
// it replaces even when the files changed since. Any goroutine; on w's
// scheduler goroutine once that runs.
func load(path string, w *worker, gen int, src map[string][]byte) (*jsRuntime, error) {
	rt := &jsRuntime{w: w, gen: gen, vm: goja.New(), clients: make(map[*client]*goja.Object), bgSpawns: spawned{},
		sources: make(map[string][]byte)}
	vm := rt.vm
	vm.SetMaxCallStackSize(maxCallStack)
	vm.SetFieldNameMapper(goja.UncapFieldNameMapper())
	if err := rt.cacheIntrinsics(); err != nil {
		return nil, err
	}

	reg := require.NewRegistry(require.WithLoader(func(p string) ([]byte, error) {
		b, ok := src[p]
		if !ok {
			var err error
			if b, err = require.DefaultSourceLoader(p); err != nil {
				return nil, err
			}
		}
		if err := checkSyntax(p, b); err != nil {
			return nil, err
		}
		rt.files = append(rt.files, p)
		rt.sources[p] = b
		return b, nil
	}))
	reg.RegisterNativeModule("moebius", rt.moebiusModule)
	reg.RegisterNativeModule("console", console.RequireWithPrinter(consolePrinter{w.log}))
	mods := reg.Enable(vm)
	if err := rt.explainMissingModules(); err != nil {
		return nil, err
	}
	if err := vm.Set("console", require.Require(vm, "console")); err != nil {
		return nil, fmt.Errorf("install console: %w", err)
	}

	if _, err := os.Stat(path); err != nil && src == nil { // a successor loads what src holds, even if the file is gone
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	spec := path
	if !filepath.IsAbs(spec) && !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
		spec = "./" + spec
	}
	budget := loadBudgetSteps * w.budget
	timer := time.AfterFunc(budget, func() {
		vm.Interrupt(fmt.Errorf("evaluating %s took longer than %v", path, budget))
	})
	exports, err := mods.Require(spec)
	if err == nil {
		err = rt.readExports(path, exports) // may run getters: still under the timer
	}
	timer.Stop()
	vm.ClearInterrupt()
	if err != nil {
		rt.scope.close() // dealers its top-level code opened
		var ex *goja.Exception
		var intr *goja.InterruptedError
		if errors.As(err, &ex) || errors.As(err, &intr) || errors.As(err, new(*syntaxError)) {
			return nil, errors.New(rt.describeLoadError(err))
		}
		return nil, err
	}
	rt.loaded = true
	return rt, nil
}

// moduleWrapper is how goja_nodejs wraps a CommonJS file before compiling
// it; positions on a file's first line are off by its length.
const moduleWrapper = "(function(exports,require,module,__filename,__dirname){"

// syntaxError is a file that does not parse, at file:line:col.
type syntaxError struct {
	pos file.Position
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: SyntaxError: %s", e.pos.Filename, e.pos.Line, e.pos.Column, e.msg)
}

// checkSyntax parses src the way require will compile it, so that a syntax
// error reports where it is (goja_nodejs flattens it to text).
func checkSyntax(path string, src []byte) error {
	_, err := parser.ParseFile(nil, path, moduleWrapper+string(src)+"\n})", 0)
	var list parser.ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		return nil
	}
	pos := list[0].Position
	if pos.Line == 1 {
		pos.Column -= len(moduleWrapper)
	}
	msg := list[0].Message
	if strings.Contains(msg, "reserved word") && strings.Contains(string(src), "export") {
		msg += " (ES modules are not supported: use module.exports and require)"
	}
	return &syntaxError{pos: pos, msg: msg}
}

// explainMissingModules wraps require so that a module that does not exist
// fails with its name rather than goja_nodejs's bare "Invalid module".
func (rt *jsRuntime) explainMissingModules() error {
	orig, ok := goja.AssertFunction(rt.vm.Get("require"))
	if !ok {
		return errors.New("require is not installed")
	}
	return rt.vm.Set("require", func(call goja.FunctionCall) goja.Value {
		v, err := orig(goja.Undefined(), call.Arguments...)
		if err != nil {
			if errors.Is(err, require.InvalidModuleError) {
				rt.throw(fmt.Errorf("cannot find module '%s'", call.Argument(0).String()))
			}
			panic(err)
		}
		return v
	})
}

// cacheIntrinsics looks up the JavaScript built-ins the runtime uses on hot
// paths and defines the moebius error classes.
func (rt *jsRuntime) cacheIntrinsics() error {
	vm := rt.vm
	v, err := vm.RunString(`(function () {
  class TimeoutError extends Error {
    constructor(message) { super(message); this.name = 'TimeoutError'; }
  }
  class ClientGoneError extends Error {
    constructor(message) { super(message); this.name = 'ClientGoneError'; }
  }
  const genFuncProto = Object.getPrototypeOf(function* () {});
  const defineProperty = Object.defineProperty;
  const setOwn = (o, k, v) => {
    defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  };
  return [JSON.parse, JSON.stringify, genFuncProto.prototype,
          Uint8Array, TimeoutError, ClientGoneError, genFuncProto,
          Error, TypeError, RangeError, Object.getOwnPropertyDescriptor, setOwn];
})()`)
	if err != nil {
		return fmt.Errorf("set up runtime: %w", err)
	}
	parts := v.(*goja.Object)
	get := func(i int) goja.Value { return parts.Get(fmt.Sprint(i)) }
	rt.jsonParse, _ = goja.AssertFunction(get(0))
	rt.jsonStringify, _ = goja.AssertFunction(get(1))
	rt.genProto = get(2).(*goja.Object)
	rt.genNext, _ = goja.AssertFunction(rt.genProto.Get("next"))
	rt.genThrow, _ = goja.AssertFunction(rt.genProto.Get("throw"))
	rt.genReturn, _ = goja.AssertFunction(rt.genProto.Get("return"))
	rt.uint8Array = get(3)
	rt.timeoutError = get(4).(*goja.Object)
	rt.clientGoneError = get(5).(*goja.Object)
	rt.genFuncProto = get(6).(*goja.Object)
	rt.errorCtor, rt.typeErrorCtor, rt.rangeErrorCtor = get(7), get(8), get(9)
	rt.ownDescriptor, _ = goja.AssertFunction(get(10))
	rt.setOwn, _ = goja.AssertFunction(get(11))
	return nil
}

// readExports checks module.exports and keeps what the server uses.
func (rt *jsRuntime) readExports(path string, exports goja.Value) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: module.exports.%s", path, fmt.Sprintf(format, args...))
	}
	obj, ok := exports.(*goja.Object)
	if !ok || goja.IsUndefined(exports) || goja.IsNull(exports) {
		return fmt.Errorf("%s: module.exports must be an object with rules or route", path)
	}
	fn := func(name string) (goja.Callable, goja.Value, error) {
		v := obj.Get(name)
		if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
			return nil, nil, nil
		}
		f, ok := goja.AssertFunction(v)
		if !ok {
			return nil, nil, bad("%s must be a function", name)
		}
		return f, v, nil
	}
	var err error
	if rt.route, _, err = fn("route"); err != nil {
		return err
	}
	if rt.background, _, err = fn("background"); err != nil {
		return err
	}
	if rt.onMessageError, _, err = fn("onMessageError"); err != nil {
		return err
	}
	if rt.onStepError, _, err = fn("onStepError"); err != nil {
		return err
	}

	rules := obj.Get("rules")
	if rules == nil || goja.IsUndefined(rules) || goja.IsNull(rules) {
		if rt.route == nil {
			return fmt.Errorf("%s: module.exports has neither rules nor route", path)
		}
		return nil
	}
	list, ok := rules.(*goja.Object)
	if !ok || list.ClassName() != "Array" {
		return bad("rules must be an array")
	}
	n := list.Get("length").ToInteger()
	if n > maxRules {
		return bad("rules has %d entries; at most %d are allowed", n, maxRules)
	}
	rt.rules = make(map[string]rule, n)
	for i := int64(0); i < n; i++ {
		r, ok := list.Get(fmt.Sprint(i)).(*goja.Object)
		if !ok {
			return bad("rules[%d] must be an object {command, handler, strategy?}", i)
		}
		cmd := r.Get("command")
		if cmd == nil || !goja.IsString(cmd) || cmd.String() == "" {
			return bad("rules[%d].command must be a non-empty string", i)
		}
		h, ok := goja.AssertFunction(r.Get("handler"))
		if !ok {
			return bad("rules[%d].handler must be a function (command %q)", i, cmd.String())
		}
		strategy := core.Queue
		if s := r.Get("strategy"); s != nil && !goja.IsUndefined(s) {
			if strategy, err = core.ParseStrategy(s.String()); err != nil {
				return bad("rules[%d].strategy: %v", i, err)
			}
		}
		if _, dup := rt.rules[cmd.String()]; dup {
			return bad("rules[%d]: command %q appears twice", i, cmd.String())
		}
		rt.rules[cmd.String()] = rule{call: h, strategy: strategy}
	}
	return nil
}

// call runs fn under the step watchdog. If the call is interrupted (or
// blows the call stack), the tasks it spawned are cancelled with it: they
// are what a runaway loop left behind. Scheduler goroutine.
func (rt *jsRuntime) call(fn goja.Callable, this goja.Value, args ...goja.Value) (goja.Value, error) {
	w := rt.w
	mark := len(w.stepSpawns)
	v, err := rt.guarded(fn, this, args)
	if err != nil && uncatchable(err) && len(w.stepSpawns) > mark {
		spawned := w.stepSpawns[mark:]
		w.log.Warn("cancelling the tasks an interrupted step spawned", "tasks", len(spawned))
		for _, id := range spawned {
			w.sched.Cancel(id)
		}
	}
	if mark == 0 {
		clear(w.stepSpawns)
		w.stepSpawns = w.stepSpawns[:0]
	} else {
		w.stepSpawns = w.stepSpawns[:mark]
	}
	return v, err
}

// read runs f, which reads or converts JavaScript values and may so run
// code of the script's (a getter, toString, toJSON), as a guarded call:
// under the watchdog like any step, with what it throws, or its
// interruption, returned as the error. Values the script made are only
// read this way, never directly after a call returned.
func (rt *jsRuntime) read(f func()) error {
	fn, _ := goja.AssertFunction(rt.vm.ToValue(func(goja.FunctionCall) goja.Value {
		f()
		return goja.Undefined()
	}))
	_, err := rt.call(fn, goja.Undefined())
	return err
}

// guarded brackets one call with the watchdog. A worker retired while the
// call ran (it was stuck in a native call, retire.go) ends its goroutine
// as soon as the call returns: nothing it would do next may reach anyone.
func (rt *jsRuntime) guarded(fn goja.Callable, this goja.Value, args []goja.Value) (goja.Value, error) {
	w := rt.w
	w.exitIfRetired()
	owner := ""
	if s := w.scope; s != nil && s.client != nil {
		owner = s.client.text
	}
	w.dog.begin(rt.vm, owner)
	defer w.dog.end()
	v, err := fn(this, args...)
	w.exitIfRetired()
	return v, err
}

func (rt *jsRuntime) acquire() { rt.refs++ }

// release drops a reference; a retired runtime with none left is disposed.
func (rt *jsRuntime) release() {
	rt.refs--
	if rt.refs == 0 && rt.retired {
		rt.dispose()
	}
}

// retire marks a runtime that a newer generation replaced.
func (rt *jsRuntime) retire() {
	rt.retired = true
	if rt.refs == 0 {
		rt.dispose()
	}
}

func (rt *jsRuntime) dispose() {
	rt.w.log.Debug("runtime generation released", "gen", rt.gen)
	rt.scope.close()
	clear(rt.clients)
	delete(rt.w.old, rt)
}

// consolePrinter sends console output to the server's log.
type consolePrinter struct{ log *slog.Logger }

func (p consolePrinter) Log(s string)   { p.log.Info(s, "source", "console") }
func (p consolePrinter) Warn(s string)  { p.log.Warn(s, "source", "console") }
func (p consolePrinter) Error(s string) { p.log.Error(s, "source", "console") }

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
	"github.com/dop251/goja_nodejs/console"
	"github.com/dop251/goja_nodejs/require"

	"github.com/moebius-js/moebius-js/transpile"
)

// jsRuntime is one generation of handlers.js in one worker: a goja runtime
// with the file evaluated and its exports checked. It is built on its
// worker's scheduler goroutine (a reload), or before that goroutine starts
// (New, a retired worker's successor), and used only on that goroutine.
type jsRuntime struct {
	w     *worker
	gen   int
	vm    *goja.Runtime
	files []string // every file the load read, for the watcher

	js      intrinsics        // built-ins as they were before handlers.js ran (intrinsics.go)
	exports exports           // what module.exports offers the server (exports.go)
	sources map[string][]byte // what the load read, by path: a retired worker's successor loads the same code
	server  *goja.Object      // the moebius server object, made on first use
	// The prototype of client objects and the symbol of their hidden
	// client slot, made on first use (client.go).
	clientProto *goja.Object
	clientSlot  *goja.Symbol
	lastObject  *goja.Object // the client object object() returned last, and its client
	lastClient  *client
	loaded      bool       // evaluation is over: the generation may become live
	life        generation // what this generation owns while it runs (generation.go)
}

// loadBudgetSteps bounds the evaluation of handlers.js, which may loop
// forever: it may take this many step budgets.
const loadBudgetSteps = 5

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
	rt := &jsRuntime{w: w, gen: gen, vm: goja.New(), sources: make(map[string][]byte),
		life: generation{clients: make(map[*client]*goja.Object), bgSpawns: spawned{}}}
	vm := rt.vm
	vm.SetMaxCallStackSize(maxCallStack)
	vm.SetFieldNameMapper(goja.UncapFieldNameMapper())
	js, err := newIntrinsics(vm)
	if err != nil {
		return nil, err
	}
	rt.js = js

	reg := require.NewRegistry(require.WithLoader(func(p string) ([]byte, error) {
		b, ok := src[p]
		if !ok {
			var err error
			if b, err = require.DefaultSourceLoader(p); err != nil {
				return nil, err
			}
		}
		rt.files = append(rt.files, p)
		rt.sources[p] = b
		return transpile.ForGoja(p, b)
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
	value, err := mods.Require(spec)
	if err == nil {
		rt.exports, err = readExports(&rt.js, path, value) // may run getters: still under the timer
	}
	timer.Stop()
	vm.ClearInterrupt()
	if err != nil {
		rt.life.scope.close() // dealers its top-level code opened
		var ex *goja.Exception
		var intr *goja.InterruptedError
		if errors.As(err, &ex) || errors.As(err, &intr) || errors.As(err, new(*transpile.Error)) {
			return nil, errors.New(rt.describeLoadError(err))
		}
		return nil, err
	}
	rt.loaded = true
	return rt, nil
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

// consolePrinter sends console output to the server's log.
type consolePrinter struct{ log *slog.Logger }

func (p consolePrinter) Log(s string)   { p.log.Info(s, "source", "console") }
func (p consolePrinter) Warn(s string)  { p.log.Warn(s, "source", "console") }
func (p consolePrinter) Error(s string) { p.log.Error(s, "source", "console") }

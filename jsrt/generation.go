package jsrt

import "github.com/dop251/goja"

// generation is what one generation of handlers.js in a worker owns while
// it runs, and when it ends: a runtime stays alive after a reload made a
// newer one live for as long as jobs that started on it still run (refs),
// and is then disposed, closing what its top-level code opened. Worker's
// goroutine (or the one loading it, before that goroutine runs).
type generation struct {
	clients    map[*client]*goja.Object // this runtime's object for each client
	scope      scope                    // what code run at load time opened (module-level dealers)
	topDealers int                      // dealers its top-level code opened and has not closed
	bgSpawns   spawned                  // background() and the work it spawned
	refs       int                      // jobs and coroutines still running here
	retired    bool                     // a newer generation is live
}

// acquire counts a job or coroutine that runs on rt.
func (rt *jsRuntime) acquire() { rt.life.refs++ }

// release drops a reference; a retired runtime with none left is disposed.
func (rt *jsRuntime) release() {
	rt.life.refs--
	if rt.life.refs == 0 && rt.life.retired {
		rt.dispose()
	}
}

// retire marks a runtime that a newer generation replaced.
func (rt *jsRuntime) retire() {
	rt.life.retired = true
	if rt.life.refs == 0 {
		rt.dispose()
	}
}

func (rt *jsRuntime) dispose() {
	rt.w.log.Debug("runtime generation released", "gen", rt.gen)
	rt.life.scope.close()
	clear(rt.life.clients)
	delete(rt.w.old, rt)
}

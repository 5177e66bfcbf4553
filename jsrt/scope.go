package jsrt

import "github.com/dop251/goja"

import "github.com/moebius-js/moebius-js/core"

// scope is the JavaScript running on behalf of someone: a client's request
// (and the work it spawns), or background work. It collects what that code
// opened, to close when it ends: the dealers its handler made.
type scope struct {
	client   *client  // the client it works for; nil for background work
	answers  bool     // it serves one of client's requests: its sends to client carry env
	env      [][]byte // that request's envelope
	cleanups []func()
	backlog  []Target // connections it sent to that are backlogged: a generator waits for them
}

func (s *scope) add(f func()) { s.cleanups = append(s.cleanups, f) }

// backlogged notes that the code sent to t and t's send queue is now
// above its high-water mark.
func (s *scope) backlogged(t Target) {
	if n := len(s.backlog); n > 0 && s.backlog[n-1] == t {
		return
	}
	s.backlog = append(s.backlog, t)
}

// close runs the cleanups, most recent first.
func (s *scope) close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
	s.backlog = nil
}

// own hands cleanup to the owner of the JavaScript running now: the job
// being stepped, or the runtime itself for code run while loading.
func (rt *jsRuntime) own(cleanup func()) {
	if rt.w.scope != nil { // evaluation runs between steps, outside any scope
		rt.w.scope.add(cleanup)
		return
	}
	rt.life.scope.add(cleanup)
}

// callIn calls fn on rt, guarded, with s owning what it opens; s is closed
// when fn returns (what a route(), a hook, a subscriber or authorize()
// opens lives no longer than its call). Scheduler goroutine.
func (w *worker) callIn(s *scope, rt *jsRuntime, fn goja.Callable, args ...goja.Value) (goja.Value, error) {
	leave := w.enter(s)
	v, err := rt.call(fn, goja.Undefined(), args...)
	leave()
	s.close()
	return v, err
}

// enter makes s the owner of what JavaScript opens until the returned func
// is called. Scheduler goroutine.
func (w *worker) enter(s *scope) (leave func()) {
	prev := w.scope
	w.scope = s
	return func() { w.scope = prev }
}

// spawned is what a worker tracks of server.spawn work so that it ends
// with its owner: a client's when that client disconnects, background work
// when the code is reloaded (or the server drains).
type spawned map[core.SpawnID]struct{}

// cancelAll cancels every task in set. Scheduler goroutine.
func (set spawned) cancelAll(sched *core.Scheduler) {
	ids := make([]core.SpawnID, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	for _, id := range ids { // Cancel runs Finish, which edits set
		sched.Cancel(id)
	}
}

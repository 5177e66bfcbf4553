package jsrt

// scope collects what a job (or a runtime) opened that must be closed when
// it ends: the dealers its handler made.
type scope struct{ cleanups []func() }

func (s *scope) add(f func()) { s.cleanups = append(s.cleanups, f) }

// close runs the cleanups, most recent first.
func (s *scope) close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

// own hands cleanup to the owner of the JavaScript running now: the job
// being stepped, or the runtime itself for code run while loading.
func (rt *runtime) own(cleanup func()) {
	if rt.loaded && rt.w.scope != nil {
		rt.w.scope.add(cleanup)
		return
	}
	rt.scope.add(cleanup)
}

// enter makes s the owner of what JavaScript opens until the returned func
// is called. Scheduler goroutine.
func (w *worker) enter(s *scope) (leave func()) {
	prev := w.scope
	w.scope = s
	return func() { w.scope = prev }
}

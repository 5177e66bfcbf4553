package jsrt

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotAuthorized: handlers.js's authorize() did not return true.
var ErrNotAuthorized = errors.New("authorize() did not return true")

// Authorize asks the live code's authorize(publicKey, address) export
// whether a CURVE client that proved publicKey (Z85) may connect from
// address. It returns nil when the export lets it in or there is no such
// export, ErrNotAuthorized (wrapped, with what it returned or threw) when
// it does not, and ctx's error when no answer came in time. The call runs
// guarded on a worker's goroutine like any handler step; anything but
// true refuses, and a throw is logged with its stack. Without the export
// it answers at once. Any goroutine but a worker's: it waits for that
// worker.
func (h *Host) Authorize(ctx context.Context, publicKey, address string) error {
	if !h.authorizes.Load() {
		return nil // no worker need be asked (nor waited for)
	}
	w := h.pick(publicKey).current()
	answer := make(chan error, 1)
	if !w.sched.Post(func() {
		err := errRetired
		defer func() { answer <- err }() // also when a retired worker's goroutine ends here
		w.exitIfRetired()
		err = w.authorize(publicKey, address)
	}) {
		return errors.New("authorize: the server is shutting down")
	}
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		return fmt.Errorf("authorize: no answer: %w", ctx.Err())
	}
}

// authorize runs the live code's authorize export. Scheduler goroutine.
func (w *worker) authorize(publicKey, address string) error {
	rt := w.rt
	fn := rt.exports.authorize
	if fn == nil {
		return nil
	}
	vm := rt.vm
	v, err := w.callIn(&scope{}, rt, fn, vm.ToValue(publicKey), vm.ToValue(address)) // what it opens closes when it returns
	if err != nil {
		w.log.Warn("authorize() threw; the client is refused", "client_key", publicKey, "error", rt.describe(err))
		return fmt.Errorf("%w: it threw %s", ErrNotAuthorized, rt.errorText(err))
	}
	if v != nil && v.StrictEquals(vm.ToValue(true)) {
		return nil
	}
	text := "undefined"
	if v != nil {
		if err := rt.read(func() { text = v.String() }); err != nil {
			text = "a value that cannot be shown"
		}
	}
	return fmt.Errorf("%w: it returned %s", ErrNotAuthorized, text)
}

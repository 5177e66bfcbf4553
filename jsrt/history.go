package jsrt

import (
	"strings"
	"sync"
	"time"
)

// What the Host remembers of its recent past, for an operator's
// dashboard: the last errors a handler's JavaScript caused, and the last
// loads of handlers.js. Bounded rings; any goroutine.

// Bounds of the history rings.
const (
	keptErrors = 50
	keptLoads  = 20
)

// ErrorEvent is one request whose handler threw (or overran its step): the
// client, the error reply's code, the command, the error's first line and
// its JavaScript stack (the lines after it), each stack frame with its
// file:line:col.
type ErrorEvent struct {
	Time    time.Time `json:"time"`
	Client  string    `json:"client"`
	Code    string    `json:"code"`
	Command string    `json:"command"`
	Message string    `json:"message"`
	Stack   string    `json:"stack"`
}

// LoadEvent is one load of handlers.js: the first, and each reload,
// successful or not (then Error says why, at file:line:col).
type LoadEvent struct {
	Time       time.Time `json:"time"`
	Generation int       `json:"generation"` // the generation it made live, or would have
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
}

// history holds the rings; its zero value is ready.
type history struct {
	mu     sync.Mutex
	errors []ErrorEvent // oldest first, at most keptErrors
	loads  []LoadEvent  // oldest first, at most keptLoads
}

func (hs *history) addError(e ErrorEvent) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.errors = keepLast(append(hs.errors, e), keptErrors)
}

func (hs *history) addLoad(e LoadEvent) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.loads = keepLast(append(hs.loads, e), keptLoads)
}

// keepLast drops the oldest entries past n, reusing the slice's array.
func keepLast[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	return append(s[:0], s[len(s)-n:]...)
}

// newestFirst returns a copy of s in reverse order.
func newestFirst[T any](s []T) []T {
	out := make([]T, len(s))
	for i, e := range s {
		out[len(s)-1-i] = e
	}
	return out
}

// RecentErrors returns the last errors handlers' JavaScript caused (up to
// 50), newest first. Any goroutine.
func (h *Host) RecentErrors() []ErrorEvent {
	h.history.mu.Lock()
	defer h.history.mu.Unlock()
	return newestFirst(h.history.errors)
}

// Loads returns the last loads of handlers.js (up to 20), newest first.
// Any goroutine.
func (h *Host) Loads() []LoadEvent {
	h.history.mu.Lock()
	defer h.history.mu.Unlock()
	return newestFirst(h.history.loads)
}

// errorEvent records a handler's error as described for the log: its
// first line is the message, the lines after it the stack.
func errorEvent(client, code, command, described string) ErrorEvent {
	msg, stack, _ := strings.Cut(described, "\n")
	return ErrorEvent{Time: time.Now(), Client: client, Code: code, Command: command, Message: msg, Stack: stack}
}

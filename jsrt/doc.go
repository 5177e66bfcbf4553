// Package jsrt runs handlers.js: it loads the file into goja runtimes as
// CommonJS, exposes the moebius API (require('moebius'), client objects,
// console), adapts JavaScript generators to core's Frame interface, routes
// each incoming message to a handler, and reloads the code when the file
// changes.
//
// It owns the JavaScript side and the scheduler goroutines that drive it: a
// [Host] runs one or more workers, each a core.Scheduler with its own
// runtime, pinned clients and step watchdog. It knows nothing of sockets or
// ZMTP: messages arrive as frames through the [Host]'s Connected, Message and
// Disconnected methods (the transport calls them), and leave through a
// [Sender].
//
// Threading: a goja runtime is single-threaded, so everything that touches
// JavaScript runs on its worker's scheduler goroutine. Methods of Host say
// which goroutines may call them; everything unexported runs on the
// scheduler goroutine unless its comment says otherwise.
//
// Decisions this package makes where DESIGN.md is silent:
//   - A request that waits in a queue across a reload is routed again, on
//     the new code, when it starts; one already running finishes on the
//     runtime it started on.
//   - client.state survives a reload when it is JSON-serialisable: the new
//     runtime gets a JSON copy. Anything else in it is lost.
//   - Replace cancels the running request and everything queued behind it.
//   - A request whose step overran the budget (or blew the call stack) is
//     dropped with an error reply; the client's queued requests still run.
//   - An error hook that is defined replaces the default error reply; if the
//     hook itself throws, the default reply is sent and both errors logged.
//   - async functions and promises are not awaited: yield is the only way to
//     wait.
package jsrt

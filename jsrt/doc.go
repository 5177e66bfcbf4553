// Package jsrt runs handlers.js: it loads the file into goja runtimes as
// CommonJS, exposes the moebius API (require('moebius'), client objects,
// console), adapts JavaScript generators to core's Coroutine interface, routes
// each incoming message to a handler, and reloads the code when the file
// changes.
//
// It owns the JavaScript side and the scheduler goroutines that drive it: a
// [Host] runs one or more workers, each a core.Scheduler with its own
// runtime, pinned clients and step watchdog, each serving a slot of the
// client identities that outlives it. It knows nothing of sockets or
// ZMTP: messages arrive as frames through the [Host]'s Connected, Message and
// Disconnected methods (the transport calls them), and leave through a
// [Sender].
//
// Threading: a goja runtime is single-threaded, so everything that touches
// JavaScript runs on its worker's scheduler goroutine. Methods of Host say
// which goroutines may call them; everything unexported runs on the
// scheduler goroutine unless its comment says otherwise.
//
// Names, one meaning each: a clientJob is a client's message as the
// scheduler's job (clientjob.go); request() is the JavaScript call to a
// remote server (requestOp, upstream.go); a refusal is why a message was
// refused before its handler ran; a genCoroutine is one running generator
// on a task's stack (coroutine.go); a frame is a ZMTP message part, and a
// stack frame is a line of a JavaScript stack trace.
//
// Decisions this package makes (docs/design.md has the rules it keeps):
//   - A request that waits in a queue across a reload is routed again, on
//     the new code, when it starts; one already running finishes on the
//     runtime it started on.
//   - client.state survives a reload when it is JSON-serialisable: the new
//     runtime gets a JSON copy. Anything else in it is lost.
//   - Replace cancels the running request and everything queued behind it.
//   - A request whose step overran the budget (or blew the call stack) is
//     dropped with an error reply; the client's queued requests still run.
//   - A worker whose step is still inside a native call three budgets (at
//     least a second) after the interrupt is retired (retire.go): its
//     requests that ran JavaScript get runaway_handler, the others and its
//     clients move to a fresh worker loaded with the same generation,
//     which takes its slot; the stuck goroutine is abandoned behind a
//     shut gate and ends itself when the call returns.
//   - An error hook that is defined replaces the default error reply; if the
//     hook itself throws, the default reply is sent and both errors logged.
//   - async functions and promises are not awaited: yield is the only way to
//     wait.
//   - Flow control: a request's ticket keeps its flow.Hold (its room on
//     the client's inbound account) until it starts or is dropped, so a client
//     at queue_limit is paused by the transport and never refused. A
//     generator that sent to a backlogged client is not stepped again until
//     that client's queue drains (Sender.WhenWritable); a plain handler
//     completes in its step and cannot wait. server.spawn throws a
//     RangeError past MaxSpawned / MaxSpawnedPerClient, and what a step that
//     is interrupted spawned is cancelled with it.
package jsrt

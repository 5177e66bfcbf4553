// Package core is the moebius-js scheduler: a deterministic state machine
// that steps many clients' work cooperatively on one goroutine.
//
// It owns tasks (one per client: a stack of coroutines plus a bounded queue of
// requests not yet started), the strategies that decide what a new request
// does to a busy task (queue, replace, ignore), round-robin stepping, and a
// timer heap for parked coroutines. It knows neither JavaScript nor ZeroMQ: a
// coroutine is anything that implements [Coroutine] (the jsrt package adapts goja
// generators to it; tests use Go-native coroutines), and a request is anything
// that implements [Job].
//
// Threading: one goroutine, the scheduler goroutine, calls [Scheduler.Run]
// (or [Scheduler.Turn] in tests) and every other method unless its doc says
// "any goroutine". Other goroutines hand work to it only through
// [Scheduler.Post], a mutex-guarded inbox plus a wake-up on the [Clock]. The
// package uses no Go channels; time comes from the Clock, so tests run on
// virtual time and are exact.
//
// One turn of the loop: run the posted functions; wake tasks whose deadline
// has come; step every task that was runnable at the start of the turn once,
// in round-robin order. When nothing is runnable the loop sleeps on the Clock
// until the next deadline or the next Post: parked and sleeping tasks cost no
// CPU, and a coroutine that yields is stepped again at once when nothing else is
// runnable, never after a fixed tick.
package core

// Package testkit runs handlers.js under test: the real runtime (jsrt) on
// a virtual clock, with simulated clients and stub upstreams in place of
// sockets, driven one step at a time by a test. It is what
// `moebius-js test` runs *.test.js and *.test.ts files with.
//
// A [Sim] is one server under test. Each of its actions (connect a client,
// send a message, advance the clock, reload the code) runs the server until
// it has nothing left to do at the current virtual time before it returns,
// so what a client received can be read at once, and a test's outcome
// never depends on how fast the machine is. The runner (run.go) loads test
// files into their own goja runtime, offers them require('moebius/test')
// (kit.js, over the binding in js.go), runs each test on a fresh Sim and
// reports as a listing or TAP.
//
// It knows no sockets, ZMTP or CLI flags; it knows the handler runtime
// only through jsrt's Config, Sender and Dialer. Threading: a Sim's methods
// are called by one goroutine, the test's (the driver); the Host's worker
// runs beside it only while the driver waits for it to settle, and the
// sender and dialer it calls hand anything that needs the driver (a stub's
// answer, a disconnection to report) to that goroutine.
package testkit

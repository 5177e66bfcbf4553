// Package cluster makes several moebius-js instances act as one, over
// NATS (nats.go; the server is Debian's nats-server or any other).
//
// It owns what crosses between instances: which instance holds which
// client (presence: every connect and disconnect is announced, numbered
// per instance, and a beat, a snapshot on request and a snapshot on
// (re)joining repair what was missed), unfiltered broadcasts, sends to a
// client of another instance, and handlers' publish/subscribe on subjects
// of their own. It must not know sockets, ZMTP or JavaScript: the
// transport's events reach it as Connected and Disconnected, and what
// arrives for this instance's clients is handed to a Local.
//
// presence.go is the table of who holds whom, a plain structure with no
// I/O and no clock of its own; wire.go says what each message looks like
// on which subject; link.go is the Link that runs them over NATS.
//
// When NATS is unreachable the Link says so (Up, ErrDown) at once rather
// than queueing: each instance keeps serving its own clients, and the
// link reconnects by itself, trading snapshots when it is back.
package cluster

package jsrt

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// Status is the Host as an operator sees it: the code it runs, each
// worker, each client and what it is doing, and the requests running and
// queued by command.
type Status struct {
	Generation int                      `json:"generation"`
	Files      []string                 `json:"files"`
	Workers    []WorkerStatus           `json:"workers"`
	Commands   map[string]CommandStatus `json:"commands"`
	Clients    []ClientStatus           `json:"clients"`
}

// WorkerStatus is one worker. A worker inside a long step cannot answer:
// Answered is false and the rest is empty.
type WorkerStatus struct {
	Index    int    `json:"index"`
	Answered bool   `json:"answered"`
	Clients  int    `json:"clients"`  // connected clients pinned to it
	Busy     int    `json:"busy"`     // of those, with a request running or queued
	Spawned  int    `json:"spawned"`  // server.spawn and background tasks running
	Steps    uint64 `json:"steps"`    // handler steps since the start
	Requests uint64 `json:"requests"` // requests started since the start
	// Background says the live code exports background(), which runs as
	// one of the Spawned tasks until it ends or throws.
	Background bool `json:"background"`
}

// ClientStatus is one connected client.
type ClientStatus struct {
	ID        string     `json:"id"`   // as client.id shows it
	Conn      uint64     `json:"conn"` // the transport's connection serial
	PublicKey string     `json:"publicKey,omitempty"`
	Worker    int        `json:"worker"`
	State     string     `json:"state"`             // "idle", "running" (due a step) or "waiting" (parked on a yield)
	Command   string     `json:"command,omitempty"` // of the running request (see CommandStatus)
	Since     *time.Time `json:"since,omitempty"`   // when the running request started
	Queued    int        `json:"queued"`            // requests waiting behind it
}

// CommandStatus counts the requests of one command running and queued
// now. Requests routed by a custom route() count as "(route)", those that
// will get an error reply as "(refused)". Every command of the live code's
// rules is there, with its strategy, even with nothing running.
type CommandStatus struct {
	Strategy string `json:"strategy,omitempty"` // the rule's, for a command the live code's rules name
	Running  int    `json:"running"`
	Queued   int    `json:"queued"`
}

// Status gathers a snapshot from every worker, each on its own goroutine,
// waiting until ctx ends for those inside a long step (they are reported
// as not answering). The list of clients, one entry each, is made only
// when withClients is set. Any goroutine but a worker's.
func (h *Host) Status(ctx context.Context, withClients bool) Status {
	h.mu.Lock()
	st := Status{Generation: h.gen, Files: slices.Clone(h.files), Commands: map[string]CommandStatus{}}
	h.mu.Unlock()
	type answer struct {
		ws      WorkerStatus
		clients []ClientStatus
		cmds    map[string]CommandStatus
	}
	answers := make([]chan answer, len(h.slots))
	for i, s := range h.slots {
		answers[i] = make(chan answer, 1)
		w, ch := s.current(), answers[i]
		if !w.sched.Post(func() {
			ws, clients, cmds := w.status(i, withClients)
			ch <- answer{ws, clients, cmds}
		}) {
			close(ch) // stopped: it will not answer
		}
	}
	for i, ch := range answers {
		select {
		case a, ok := <-ch:
			if !ok {
				st.Workers = append(st.Workers, WorkerStatus{Index: i})
				continue
			}
			st.Workers = append(st.Workers, a.ws)
			st.Clients = append(st.Clients, a.clients...)
			for cmd, n := range a.cmds {
				c := st.Commands[cmd]
				c.Running += n.Running
				c.Queued += n.Queued
				c.Strategy = cmp.Or(c.Strategy, n.Strategy)
				st.Commands[cmd] = c
			}
		case <-ctx.Done():
			st.Workers = append(st.Workers, WorkerStatus{Index: i})
		}
	}
	slices.SortFunc(st.Clients, func(a, b ClientStatus) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// status is this worker's part of Host.Status; index is its slot's.
// Scheduler goroutine.
func (w *worker) status(index int, withClients bool) (WorkerStatus, []ClientStatus, map[string]CommandStatus) {
	stats := w.sched.Stats()
	ws := WorkerStatus{Index: index, Answered: true, Clients: len(w.clients), Busy: w.sched.Clients(),
		Spawned: w.sched.Spawned(), Steps: stats.Steps.Load(), Requests: stats.Started.Load(),
		Background: w.rt.exports.background != nil}
	cmds := make(map[string]CommandStatus, len(w.rt.exports.rules))
	for cmd, r := range w.rt.exports.rules {
		cmds[cmd] = CommandStatus{Strategy: r.strategy.String()}
	}
	var clients []ClientStatus
	if withClients {
		clients = make([]ClientStatus, 0, len(w.clients))
	}
	for id, c := range w.clients {
		cs := ClientStatus{ID: c.text, Conn: c.conn, PublicKey: c.key, Worker: index, State: "idle"}
		if v, ok := w.sched.Inspect(id); ok {
			if j, ok := v.Running.(*clientJob); ok {
				cs.State, cs.Command = "running", j.commandName()
				if v.Waiting {
					cs.State = "waiting"
				}
				if j.started {
					since := j.began
					cs.Since = &since
				}
				n := cmds[cs.Command]
				n.Running++
				cmds[cs.Command] = n
			}
			cs.Queued = len(v.Queued)
			for _, q := range v.Queued {
				if j, ok := q.(*clientJob); ok {
					n := cmds[j.commandName()]
					n.Queued++
					cmds[j.commandName()] = n
				}
			}
		}
		if withClients {
			clients = append(clients, cs)
		}
	}
	return ws, clients, cmds
}

// commandName names the request's command for Status.
func (r *clientJob) commandName() string {
	switch {
	case r.err != nil:
		return "(refused)"
	case r.command == "":
		return "(route)"
	}
	return r.command
}

// Ping reports whether every worker's scheduler takes a turn before ctx
// ends: false while one is inside a long step (until it is interrupted,
// or its worker retired). A health check. Any goroutine but a worker's.
func (h *Host) Ping(ctx context.Context) bool {
	answered := make(chan struct{}, len(h.slots))
	for _, s := range h.slots {
		if !s.current().sched.Post(func() { answered <- struct{}{} }) {
			return false
		}
	}
	for range h.slots {
		select {
		case <-answered:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

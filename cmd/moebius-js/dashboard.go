package main

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/moebius-js/moebius-js/dashboard"
	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// The dashboard's wiring: what it reads of the server (snapshot), and the
// console's way in (consoleServer) and out (consoleSender).

// snapshot reads the server for one poll of the dashboard. An HTTP
// handler's goroutine.
func (a *admin) snapshot(ctx context.Context, cfg serveConfig, g gauges, reg *prometheus.Registry) dashboard.Snapshot {
	st := g.host.Status(ctx, true)
	ts, hc := g.srv.Stats(), g.host.Counters()
	var errs uint64
	for _, n := range hc.Errors {
		errs += n
	}
	snap := dashboard.Snapshot{
		Version: versionString(), Uptime: time.Since(a.started).Round(time.Second).String(),
		Instance: cfg.InstanceName, Ready: a.ready.Load(), Generation: st.Generation, Files: st.Files,
		Totals:   dashboard.Totals{Clients: len(st.Clients), Errors: errs, MessagesIn: ts.MsgsIn, MessagesOut: ts.MsgsOut},
		Commands: st.Commands, Workers: st.Workers, Clients: clients(st, g.srv.Peers()),
		Counters: counters(reg), Errors: g.host.RecentErrors(), Loads: g.host.Loads(),
	}
	if c := clusterStatus(g.link); c != nil {
		snap.Cluster = c
	}
	return snap
}

// trafficCounters are the counters that move with ordinary traffic; the
// rest count limits and defences that bit, and failures.
var trafficCounters = map[string]bool{
	"moebius_connections_accepted_total": true, "moebius_messages_received_total": true,
	"moebius_messages_sent_total": true, "moebius_steps_total": true, "moebius_requests_started_total": true,
	"moebius_heartbeats_sent_total": true, "moebius_reloads_total": true, "moebius_cluster_messages_total": true,
}

// counters reads every counter of reg, as /metrics would show it.
func counters(reg *prometheus.Registry) []dashboard.Counter {
	families, _ := reg.Gather() // sorted by name; an error still returns what gathered
	var out []dashboard.Counter
	for _, f := range families {
		if f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			out = append(out, dashboard.Counter{Name: f.GetName(), Labels: strings.Join(labels, ","),
				Value: m.GetCounter().GetValue(), Help: f.GetHelp(), Traffic: trafficCounters[f.GetName()]})
		}
	}
	return out
}

// consoleServer is the server as the dashboard's console reaches it: the
// Host, as the transport's events would, and the transport to tell which
// identities network clients hold (srv is set once it listens, before the
// dashboard serves).
type consoleServer struct {
	host *jsrt.Host
	srv  *transport.Server
}

func (c *consoleServer) InUse(id string) bool {
	for _, p := range c.srv.Peers() {
		if p.ID == id {
			return true
		}
	}
	return false
}

func (c *consoleServer) Connected(id string, conn uint64) { c.host.Connected(id, conn, "") }

// Message hands the Host a console message, holding no room: a person
// typing needs no flow control.
func (c *consoleServer) Message(id string, conn uint64, frames [][]byte) {
	c.host.Message(id, conn, nil, frames, flow.Hold{})
}

func (c *consoleServer) Disconnected(id string, conn uint64) { c.host.Disconnected(id, conn) }

// consoleSender is the Host's Sender with the console on: what goes to a
// console client goes to its page, the rest to the transport. Without
// console clients each call costs one atomic load more.
type consoleSender struct {
	next    jsrt.Sender
	console *dashboard.Console
}

func (s consoleSender) SendConn(id string, conn uint64, frames ...[]byte) (bool, error) {
	if s.console.Deliver(id, conn, frames) {
		return false, nil
	}
	return s.next.SendConn(id, conn, frames...)
}

func (s consoleSender) ReplyConn(id string, conn uint64, env [][]byte, frames ...[]byte) (bool, error) {
	if s.console.Deliver(id, conn, frames) {
		return false, nil
	}
	return s.next.ReplyConn(id, conn, env, frames...)
}

func (s consoleSender) Broadcast(frame []byte, to []jsrt.Target) int {
	var rest []jsrt.Target // to without the console's clients, made once one is met
	n := 0
	for i, t := range to {
		if !s.console.Owns(t.ID, t.Serial) {
			if rest != nil {
				rest = append(rest, t)
			}
			continue
		}
		if rest == nil {
			rest = append(make([]jsrt.Target, 0, len(to)), to[:i]...)
		}
		if s.console.Deliver(t.ID, t.Serial, [][]byte{frame}) {
			n++
		}
	}
	if rest == nil {
		rest = to
	}
	return n + s.next.Broadcast(frame, rest)
}

func (s consoleSender) WhenWritable(id string, conn uint64, fn func()) bool {
	if s.console.Owns(id, conn) {
		return false // a console client is never backlogged
	}
	return s.next.WhenWritable(id, conn, fn)
}

func (s consoleSender) DisconnectConn(id string, conn uint64) bool {
	if s.console.Closed(id, conn) {
		return true
	}
	return s.next.DisconnectConn(id, conn)
}

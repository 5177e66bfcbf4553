package main

import (
	"net/http"
	"runtime"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moebius-js/moebius-js/cluster"
	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/lograte"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// gauges is everything /metrics reads at scrape time.
type gauges struct {
	host    *jsrt.Host
	srv     *transport.Server
	inbound *flow.Budget
	lim     *lograte.Limiter
	link    *cluster.Link // nil without a cluster
}

// metricsHandler serves the server's metrics (reg, from serverMetrics)
// and the Go runtime's.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	goReg := prometheus.NewRegistry()
	goReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(prometheus.Gatherers{goReg, reg}, promhttp.HandlerOpts{})
}

// serverMetrics registers the transport's and the schedulers' counters
// and gauges, read at scrape time, and the request durations: what
// /metrics serves besides the Go runtime's, and what the dashboard's
// counters panel shows.
func serverMetrics(g gauges, durations *requestDurations) *prometheus.Registry {
	host, srv := g.host, g.srv
	reg := prometheus.NewRegistry()
	reg.MustRegister(durations.vec)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "moebius_build_info", Help: "Always 1; its labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": versionString(), "goversion": runtime.Version()},
	}, func() float64 { return 1 }))

	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "moebius_" + name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "moebius_" + name, Help: help}, f))
	}
	ts := func(f func(transport.Stats) float64) func() float64 {
		return func() float64 { return f(srv.Stats()) }
	}
	gauge("peers", "Connected clients (handshake done).", ts(func(s transport.Stats) float64 { return float64(s.Peers) }))
	gauge("connections", "Open connections, including handshaking ones.", ts(func(s transport.Stats) float64 { return float64(s.Conns) }))
	counter("connections_accepted_total", "Connections accepted.", ts(func(s transport.Stats) float64 { return float64(s.Accepted) }))
	counter("handshakes_failed_total", "Connections closed during the handshake.", ts(func(s transport.Stats) float64 { return float64(s.HandshakeFailed) }))
	counter("handshakes_abandoned_total", "Connections their peer closed during the handshake (a TCP health check, say).", ts(func(s transport.Stats) float64 { return float64(s.HandshakeAbandoned) }))
	counter("oversize_total", "Connections closed for a message over max_message_size or max_frames.", ts(func(s transport.Stats) float64 { return float64(s.Oversize) }))
	counter("slow_peers_dropped_total", "Peers dropped because a send would take their queue past send_queue_bytes.", ts(func(s transport.Stats) float64 { return float64(s.SlowDropped) }))
	counter("write_timeouts_total", "Peers dropped because they read nothing for write_timeout while replies waited.", ts(func(s transport.Stats) float64 { return float64(s.WriteTimeouts) }))
	counter("peers_shed_total", "Peers that did not read, dropped because all send queues together passed max_send_bytes.", ts(func(s transport.Stats) float64 { return float64(s.Shed) }))
	gauge("send_queue_bytes", "Bytes held in all send queues.", ts(func(s transport.Stats) float64 { return float64(s.SendBytes) }))
	counter("broadcast_skipped_total", "Broadcast copies skipped because the client was above its send high-water mark.", ts(func(s transport.Stats) float64 { return float64(s.BroadcastSkipped) }))
	counter("read_timeouts_total", "Connections closed for stalling in the middle of a message for read_timeout.", ts(func(s transport.Stats) float64 { return float64(s.ReadTimeouts) }))
	counter("heartbeats_sent_total", "Heartbeat PINGs sent to silent clients.", ts(func(s transport.Stats) float64 { return float64(s.Heartbeats) }))
	counter("heartbeat_timeouts_total", "Connections closed because nothing arrived within heartbeat_timeout of a PING.", ts(func(s transport.Stats) float64 { return float64(s.HeartbeatTimeout) }))
	// labelled registers one counter per value of label, each read from the
	// transport's stats.
	labelled := func(name, help, label string, values map[string]func(transport.Stats) float64) {
		for value, f := range values {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "moebius_" + name, Help: help, ConstLabels: prometheus.Labels{label: value},
			}, ts(f)))
		}
	}
	labelled("connections_refused_total", "Connections closed at accept, before any handshake, by the bound that refused them.",
		"bound", map[string]func(transport.Stats) float64{
			"max_connections":             func(s transport.Stats) float64 { return float64(s.RefusedMaxConnections) },
			"max_connections_per_address": func(s transport.Stats) float64 { return float64(s.RefusedPerAddress) },
			"max_handshakes":              func(s transport.Stats) float64 { return float64(s.RefusedHandshakes) },
		})
	labelled("handshakes_refused_total", "Handshakes refused for what the peer asked for: a ZMTP older than 3.0, or a security mechanism the endpoint does not offer.",
		"reason", map[string]func(transport.Stats) float64{
			"zmtp_version": func(s transport.Stats) float64 { return float64(s.VersionRefused) },
			"mechanism":    func(s transport.Stats) float64 { return float64(s.MechanismRefused) },
		})
	curveRefused := map[string]func(transport.Stats) float64{}
	for _, reason := range transport.CurveReasons() {
		curveRefused[reason] = func(s transport.Stats) float64 { return float64(s.CurveRefused[reason]) }
	}
	labelled("curve_refused_total", "CURVE connections closed for a refusal, in the handshake or after it, by reason.", "reason", curveRefused)
	counter("curve_revoked_total", "CURVE clients disconnected because their key left the allow-list.", ts(func(s transport.Stats) float64 { return float64(s.CurveRevoked) }))
	gauge("pending_bytes", "Bytes of requests read and not yet started, across all clients.", func() float64 { return float64(g.inbound.Used()) })
	counter("reads_paused_total", "Times a connection was not read because it had queue_limit requests waiting.",
		func() float64 { return float64(g.inbound.Stats().CountPauses.Load()) })
	counter("pending_bound_pauses_total", "Times a connection was not read because all clients together held max_pending_bytes.",
		func() float64 { return float64(g.inbound.Stats().BudgetPauses.Load()) })
	counter("backpressure_waits_total", "Generator steps held back until a client above its send high-water mark drained.",
		func() float64 { return float64(host.Counters().Backpressure) })
	counter("spawn_refused_total", "server.spawn calls refused by max_spawned or max_spawned_per_client.",
		func() float64 { return float64(host.Counters().SpawnRefused) })
	counter("cluster_subscriber_dropped_total", "Cluster messages dropped because their cluster.subscribe function was 10,000 messages behind.",
		func() float64 { return float64(host.Counters().SubscriberDropped) })
	counter("log_lines_suppressed_total", "Repeated log lines held back by the rate limit.", func() float64 { return float64(g.lim.Suppressed()) })
	counter("duplicate_identities_refused_total", "Connections refused because their identity was in use.", ts(func(s transport.Stats) float64 { return float64(s.DuplicateRefused) }))
	counter("protocol_errors_total", "Connections closed for a ZMTP violation.", ts(func(s transport.Stats) float64 { return float64(s.ProtocolErrors) }))
	counter("messages_received_total", "Messages received from clients.", ts(func(s transport.Stats) float64 { return float64(s.MsgsIn) }))
	counter("messages_sent_total", "Messages written to clients.", ts(func(s transport.Stats) float64 { return float64(s.MsgsOut) }))

	sum := func(f func(*core.Stats) *atomic.Uint64) func() float64 {
		return func() float64 {
			var n uint64
			for _, s := range host.Stats() {
				n += f(s).Load()
			}
			return float64(n)
		}
	}
	counter("steps_total", "Handler steps run.", sum(func(s *core.Stats) *atomic.Uint64 { return &s.Steps }))
	counter("requests_started_total", "Requests (and background jobs) started.", sum(func(s *core.Stats) *atomic.Uint64 { return &s.Started }))
	counter("requests_refused_total", "Requests refused because the client's queue was full.", sum(func(s *core.Stats) *atomic.Uint64 { return &s.Refused }))
	counter("requests_ignored_total", "Requests dropped by the ignore strategy.", sum(func(s *core.Stats) *atomic.Uint64 { return &s.Ignored }))
	counter("requests_replaced_total", "Requests cancelled by the replace strategy.", sum(func(s *core.Stats) *atomic.Uint64 { return &s.Replaced }))
	gauge("tasks", "Tasks with work in flight.", func() float64 {
		var n int64
		for _, s := range host.Stats() {
			n += s.Tasks.Load()
		}
		return float64(n)
	})
	gauge("handlers_generation", "Generation of handlers.js being served (1 + successful reloads).", func() float64 {
		return float64(host.Generation())
	})
	counter("reloads_total", "Successful reloads of handlers.js.", func() float64 { return float64(host.Counters().Reloads) })
	counter("workers_retired_total", "Workers replaced by a fresh one because a step was stuck in a native call past its step budget.",
		func() float64 { return float64(host.Counters().WorkersRetired) })
	counter("reload_failures_total", "Reloads refused for an error in handlers.js (the old code kept serving).",
		func() float64 { return float64(host.Counters().ReloadFailures) })
	if link := g.link; link != nil {
		gauge("cluster_link_up", "1 while the link to NATS is up.", func() float64 {
			if link.Up() {
				return 1
			}
			return 0
		})
		gauge("cluster_instances", "Other instances of the cluster this one knows.", func() float64 { return float64(link.Instances()) })
		counter("cluster_broadcasts_local_only_total", "Broadcasts that reached this instance's clients only: the link to NATS was down.",
			func() float64 { return float64(link.Counters().LocalOnly) })
		counter("cluster_not_sent_total", "server.send and cluster.publish calls that failed: the link to NATS was down, or its outbox full.",
			func() float64 { return float64(link.Counters().NotSent) })
		for _, kind := range cluster.Kinds() {
			for dir, read := range map[string]func(cluster.Counters) uint64{
				"in":  func(c cluster.Counters) uint64 { return c.In[kind] },
				"out": func(c cluster.Counters) uint64 { return c.Out[kind] },
			} {
				reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
					Name:        "moebius_cluster_messages_total",
					Help:        "Messages across the cluster link, by direction and kind.",
					ConstLabels: prometheus.Labels{"direction": dir, "kind": kind.String()},
				}, func() float64 { return float64(read(link.Counters())) }))
			}
		}
	}
	for _, code := range jsrt.ErrorCodes() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "moebius_request_errors_total",
			Help:        "Requests that failed, by the code of their error reply (runaway_handler: interrupted by the watchdog).",
			ConstLabels: prometheus.Labels{"code": code},
		}, func() float64 { return float64(host.ErrorReplies(code)) }))
	}
	return reg
}

package main

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moebius-js/moebius-js/core"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// metricsHandler serves the transport's and the schedulers' counters,
// read at scrape time, plus the Go runtime's.
func metricsHandler(host *jsrt.Host, srv *transport.Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

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
	counter("oversize_total", "Connections closed for a message over max_message_size or max_frames.", ts(func(s transport.Stats) float64 { return float64(s.Oversize) }))
	counter("slow_peers_dropped_total", "Peers dropped because their send queue overflowed (send_queue or send_queue_bytes).", ts(func(s transport.Stats) float64 { return float64(s.SlowDropped) }))
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
	counter("reload_failures_total", "Reloads refused for an error in handlers.js (the old code kept serving).",
		func() float64 { return float64(host.Counters().ReloadFailures) })
	for _, code := range jsrt.ErrorCodes() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "moebius_request_errors_total",
			Help:        "Requests that failed, by the code of their error reply (runaway_handler: interrupted by the watchdog).",
			ConstLabels: prometheus.Labels{"code": code},
		}, func() float64 { return float64(host.ErrorReplies(code)) }))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

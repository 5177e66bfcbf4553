package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moebius-js/moebius-js/cluster"
	"github.com/moebius-js/moebius-js/dashboard"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// The admin listener: one HTTP server, for operators and balancers, with
// no authentication (it belongs on loopback):
//
//	/          the dashboard (package dashboard), its data under /dashboard/api/
//	/metrics   Prometheus
//	/healthz   200 while the process runs
//	/readyz    200 while it takes requests; 503 before handlers.js has
//	           loaded and the transport listens, and from the start of a drain
//	/status    the server as JSON: version, uptime, generation, workers,
//	           requests by command, counts, the settings in force
//	/clients   one JSON entry per connected client: its address, worker,
//	           what it runs and since when, what it has queued
//	/debug/pprof/  Go's profiles

// statusTimeout bounds how long /status and /clients wait for a worker
// inside a long step; such a worker is reported as not answering.
const statusTimeout = 2 * time.Second

// admin is the admin listener: bound before anything else starts, so that
// a bad address fails the start, and answering from then on: /healthz and
// /readyz at once, the endpoints that read the running server once it
// runs (503 before).
type admin struct {
	ln      net.Listener
	log     *slog.Logger
	ready   atomic.Bool                   // /readyz says 200
	running atomic.Pointer[http.ServeMux] // the endpoints that read the running server; nil while it starts
	link    atomic.Pointer[cluster.Link]  // the cluster link, whose state /readyz says
	started time.Time
	hs      *http.Server
	done    chan struct{}
}

// listenAdmin binds addr and starts answering, on a goroutine of its own
// that Close stops.
func listenAdmin(addr string, log *slog.Logger) (*admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	a := &admin{ln: ln, log: log, started: time.Now(), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// The cluster link's state is said, not judged: an instance whose
		// link is down still serves its own clients.
		var link string
		if l := a.link.Load(); l != nil {
			link = "cluster: down\n"
			if l.Up() {
				link = "cluster: up\n"
			}
		}
		if !a.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "not ready\n"+link)
			return
		}
		fmt.Fprint(w, "ready\n"+link)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		running := a.running.Load()
		if running == nil {
			http.Error(w, "starting: handlers.js is loading", http.StatusServiceUnavailable)
			return
		}
		running.ServeHTTP(w, r)
	})
	a.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(a.done)
		if err := a.hs.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server", "error", err.Error())
		}
	}()
	log.Info("admin listening", "url", a.url(), "healthz", a.url()+"healthz")
	return a, nil
}

// serving gives the endpoints that read the running server what they
// read (the dashboard's rates come from rec; its console is served when
// console is not nil), and makes /readyz say ready. Any goroutine.
func (a *admin) serving(cfg serveConfig, g gauges, durations *requestDurations, rec *dashboard.Recorder, console *dashboard.Console) {
	mux := http.NewServeMux()
	reg := serverMetrics(g, durations)
	if console != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "moebius_console_replies_dropped_total",
			Help: "Replies to dashboard console clients dropped because their page was 1,000 behind.",
		}, func() float64 { return float64(console.Dropped()) }))
	}
	mux.Handle("/metrics", metricsHandler(reg))
	mux.Handle("/", dashboard.Handler(func(ctx context.Context) dashboard.Snapshot {
		ctx, cancel := context.WithTimeout(ctx, statusTimeout) // as /status waits
		defer cancel()
		return a.snapshot(ctx, cfg, g, reg)
	}, rec, console))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
		defer cancel()
		writeJSON(w, a.status(ctx, cfg, g))
	})
	mux.HandleFunc("/clients", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
		defer cancel()
		writeJSON(w, clients(g.host.Status(ctx, true), g.srv.Peers()))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	a.running.Store(mux)
	if g.link != nil {
		a.link.Store(g.link)
	}
	a.ready.Store(true)
	a.log.Info("admin", "url", a.url(), "dashboard", a.url(), "console", console != nil, "endpoints", "/metrics /healthz /readyz /status /clients")
}

// url is the admin listener's base URL, ending in a slash.
func (a *admin) url() string { return "http://" + a.ln.Addr().String() + "/" }

// Close stops the admin server and waits for its goroutine. Any
// goroutine.
func (a *admin) Close() {
	_ = a.hs.Close()
	<-a.done
}

// serverStatus is /status.
type serverStatus struct {
	Version    string                        `json:"version"`
	GoVersion  string                        `json:"goVersion"`
	Started    time.Time                     `json:"started"`
	Uptime     string                        `json:"uptime"`
	Ready      bool                          `json:"ready"`
	Generation int                           `json:"generation"`
	Files      []string                      `json:"files"`
	Endpoints  []string                      `json:"endpoints"`
	Workers    []jsrt.WorkerStatus           `json:"workers"`
	Commands   map[string]jsrt.CommandStatus `json:"commands"`
	Counts     statusCounts                  `json:"counts"`
	Instance   string                        `json:"instance"`
	Cluster    *cluster.Status               `json:"cluster,omitempty"`
	Settings   map[string]any                `json:"settings"`
}

type statusCounts struct {
	Clients        int               `json:"clients"`
	Connections    int               `json:"connections"`
	MessagesIn     uint64            `json:"messagesIn"`
	MessagesOut    uint64            `json:"messagesOut"`
	SendQueueBytes int64             `json:"sendQueueBytes"`
	PendingBytes   int64             `json:"pendingBytes"`
	Reloads        uint64            `json:"reloads"`
	ReloadFailures uint64            `json:"reloadFailures"`
	WorkersRetired uint64            `json:"workersRetired"`
	Errors         map[string]uint64 `json:"errors"`
}

func (a *admin) status(ctx context.Context, cfg serveConfig, g gauges) serverStatus {
	st := g.host.Status(ctx, false)
	ts, hc := g.srv.Stats(), g.host.Counters()
	return serverStatus{
		Version: versionString(), GoVersion: runtime.Version(),
		Started: a.started, Uptime: time.Since(a.started).Round(time.Second).String(), Ready: a.ready.Load(),
		Generation: st.Generation, Files: st.Files, Endpoints: g.srv.Addrs(),
		Workers: st.Workers, Commands: st.Commands,
		Counts: statusCounts{
			Clients: ts.Peers, Connections: ts.Conns, MessagesIn: ts.MsgsIn, MessagesOut: ts.MsgsOut,
			SendQueueBytes: ts.SendBytes, PendingBytes: g.inbound.Used(),
			Reloads: hc.Reloads, ReloadFailures: hc.ReloadFailures, WorkersRetired: hc.WorkersRetired, Errors: hc.Errors,
		},
		Settings: settingsInForce(cfg),
		Instance: cfg.InstanceName,
		Cluster:  clusterStatus(g.link),
	}
}

// clusterStatus is the link's status, nil without a cluster.
func clusterStatus(link *cluster.Link) *cluster.Status {
	if link == nil {
		return nil
	}
	st := link.Status()
	return &st
}

// clients joins the workers' clients with the transport's peers by
// connection serial: /clients, and the dashboard's client list.
func clients(st jsrt.Status, peers []transport.PeerInfo) []dashboard.ClientRow {
	bySerial := make(map[uint64]transport.PeerInfo, len(peers))
	for _, p := range peers {
		bySerial[p.Serial] = p
	}
	out := make([]dashboard.ClientRow, 0, len(st.Clients))
	for _, c := range st.Clients {
		v := dashboard.ClientRow{ClientStatus: c}
		if p, ok := bySerial[c.Conn]; ok {
			v.Remote, v.Endpoint, v.SendBytes = p.Remote, p.Endpoint, p.SendBytes
		}
		out = append(out, v)
	}
	return out
}

// settingsInForce is cfg as /status shows it: every key with its value,
// the CURVE secret key hidden when it is given as text.
func settingsInForce(cfg serveConfig) map[string]any {
	out := make(map[string]any, len(configKeys))
	for key, v := range configValues(cfg) {
		out[key] = shownValue(key, v)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// requestDurations is moebius_request_duration_seconds: how long requests
// take from their start to their end, by command.
type requestDurations struct {
	vec       *prometheus.HistogramVec
	observers sync.Map // command → its histogram (prometheus.Observer): no label hashing per request
}

func newRequestDurations() *requestDurations {
	return &requestDurations{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "moebius_request_duration_seconds",
		Help:    "Time from a request's start to its end, by command ((route): chosen by a custom route(); (refused): answered with an error before any handler ran).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"command"})}
}

// observe is jsrt.Config.OnRequest. A worker's goroutine.
func (d *requestDurations) observe(command string, took time.Duration) {
	o, ok := d.observers.Load(command)
	if !ok {
		o, _ = d.observers.LoadOrStore(command, d.vec.WithLabelValues(command))
	}
	o.(prometheus.Observer).Observe(took.Seconds())
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/cluster"
	"github.com/moebius-js/moebius-js/dashboard"
	"github.com/moebius-js/moebius-js/flow"
	"github.com/moebius-js/moebius-js/internal/lograte"
	"github.com/moebius-js/moebius-js/internal/sdnotify"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// serve runs the server until SIGINT or SIGTERM: bind, load handlers.js,
// serve, reload on change or SIGHUP, then drain and exit 0.
func serve(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	serveFlags(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	cfg, warnings, err := loadServeConfig(fs, os.Environ)
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js: bad configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	log.Info("moebius-js starting", startupAttrs(cfg)...)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err := runServer(cfg, log); err != nil {
		log.Error("server failed", "error", err.Error())
		return 1
	}
	return 0
}

// events adapts the transport's Handler to the Host, and tells the
// cluster link (when there is one) who is connected here.
type events struct {
	h       *jsrt.Host
	link    *cluster.Link
	console *dashboard.Console // nil without the dashboard's console
}

func (e events) Connected(p transport.Peer) {
	if e.console != nil {
		e.console.Closed(p.ID, 0) // a network client takes a console client's identity over
	}
	key := ""
	if p.ClientKey != nil {
		key = p.ClientKey.String()
	}
	e.h.Connected(p.ID, p.Serial, key)
	if e.link != nil {
		e.link.Connected(p.ID)
	}
}
func (e events) Message(p transport.Peer, env transport.Envelope, frames [][]byte, hold flow.Hold) {
	e.h.Message(p.ID, p.Serial, env, frames, hold)
}
func (e events) Disconnected(p transport.Peer, _ error) {
	e.h.Disconnected(p.ID, p.Serial)
	if e.link != nil {
		e.link.Disconnected(p.ID)
	}
}

// upstreams opens the DEALER connections of dealer() and request().
type upstreams struct{ cfg transport.DialConfig }

func (u upstreams) Dial(endpoint string, opts jsrt.DialOptions, onMessage func([][]byte)) (jsrt.Upstream, error) {
	cfg, err := dialConfig(u.cfg, opts)
	if err != nil {
		return nil, err
	}
	return transport.Dial(endpoint, cfg, onMessage)
}

// sender adapts the transport's Server to the Host's Sender.
type sender struct{ *transport.Server }

func (s sender) ReplyConn(id string, conn uint64, env [][]byte, frames ...[]byte) (bool, error) {
	return s.Server.ReplyConn(id, conn, env, frames...)
}

func (s sender) Broadcast(frame []byte, to []jsrt.Target) int {
	peers := make([]transport.Peer, len(to))
	for i, t := range to {
		peers[i] = transport.Peer{ID: t.ID, Serial: t.Serial}
	}
	return s.Server.Broadcast(frame, peers)
}

func runServer(cfg serveConfig, log *slog.Logger) error {
	setProcessors(cfg.Workers, log)
	// The same bounds hold for clients' connections and for those that
	// dealer() and request() open.
	limits := transport.Limits{
		MaxMessageSize:   cfg.MaxMessageSize,
		MaxFrames:        cfg.MaxFrames,
		HandshakeTimeout: cfg.HandshakeTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		SendHWM:          cfg.SendHWM,
		SendHWMBytes:     cfg.SendHWMBytes,
		SendQueueBytes:   cfg.SendQueueBytes,
	}
	// The admin listener binds first: a bad address stops the start before
	// anything else is said or done.
	var adm *admin
	if addr := cfg.adminAddr(); addr != "" {
		var err error
		if adm, err = listenAdmin(addr, log); err != nil {
			return err
		}
		defer adm.Close()
	}
	// The request histogram costs a clock read and an update per request:
	// only when the admin listener can show it.
	var durations *requestDurations
	var rates *dashboard.Recorder
	var onRequest func(string, time.Duration)
	if adm != nil {
		durations, rates = newRequestDurations(), dashboard.NewRecorder(nil)
		onRequest = func(command string, took time.Duration) {
			durations.observe(command, took)
			rates.Observe(command, took)
		}
	}
	cfg.InstanceName = instanceName(cfg) // its default named once, for the cluster, handlers and /status
	lim := lograte.New()                 // one limit per kind of line for the whole server
	link, err := openCluster(cfg, log, lim)
	if err != nil {
		return err
	}
	var clusterLink jsrt.Cluster
	if link != nil {
		defer link.Close()
		clusterLink = clusterJS{link}
	}
	inbound := flow.NewBudget(cfg.MaxPendingBytes, func() {
		lim.Log(log, slog.LevelWarn, "pending_bound", "",
			"reading paused: all clients together hold max_pending_bytes of requests not yet started; those holding the most wait first",
			"max_pending_bytes", cfg.MaxPendingBytes)
	})
	host, err := jsrt.New(jsrt.Config{
		Handlers:            cfg.Handlers,
		Workers:             cfg.Workers,
		StepBudget:          cfg.StepBudget,
		QueueLimit:          cfg.QueueLimit,
		MaxSpawned:          cfg.MaxSpawned,
		MaxSpawnedPerClient: cfg.MaxSpawnedPerCli,
		Dialer: upstreams{transport.DialConfig{
			Limits: limits,
			Logger: log,
		}},
		Logger:     log,
		LogLimiter: lim,
		OnRequest:  onRequest,
		Instance:   cfg.InstanceName,
		Cluster:    clusterLink,
	})
	if err != nil {
		return fmt.Errorf("load handlers: %w", err)
	}
	cs, err := openCurve(cfg, host.Authorize, log)
	if err != nil {
		host.Shutdown(0)
		return err
	}
	defer cs.Close()
	// Catch signals before listening: once a client can connect, SIGTERM
	// must already mean "drain and exit 0".
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	// The dashboard's console reaches the Host as the transport does; it
	// learns of the transport (to tell which identities are taken) once
	// that listens, before anyone can open the dashboard.
	var console *dashboard.Console
	toConsole := &consoleServer{host: host}
	if adm != nil && cfg.AdminConsole {
		console = dashboard.NewConsole(toConsole, log, lim)
	}
	perAddr, heartbeat := cfg.MaxConnsPerAddr, cfg.HeartbeatIvl
	if perAddr == 0 {
		perAddr = -1 // off
	}
	if heartbeat == 0 {
		heartbeat = -1 // off
	}
	srv, err := transport.Listen(transport.Config{
		Endpoints:                cs.nullEndpoints,
		CurveEndpoints:           cs.curveEndpoints,
		Curve:                    cs.server,
		Limits:                   limits,
		Handover:                 cfg.IdentityHandover,
		Inbound:                  inbound,
		QueueLimit:               cfg.QueueLimit,
		MaxSendBytes:             cfg.MaxSendBytes,
		MaxConnections:           cfg.MaxConnections,
		MaxConnectionsPerAddress: perAddr,
		MaxHandshakes:            cfg.MaxHandshakes,
		ReadTimeout:              cfg.ReadTimeout,
		HeartbeatInterval:        heartbeat,
		HeartbeatTimeout:         cfg.HeartbeatTimeout,
		Logger:                   log,
		LogLimiter:               lim,
	}, events{host, link, console})
	if err != nil {
		host.Shutdown(0)
		return err
	}
	cs.serving(srv)
	if console != nil {
		toConsole.srv = srv
		host.Start(consoleSender{next: sender{srv}, console: console})
	} else {
		host.Start(sender{srv})
	}
	if link != nil {
		link.Serve(clusterLocal{host, srv})
	}

	if cfg.Watch {
		stop, err := host.Watch(0)
		if err != nil {
			log.Warn("live reload is off", "error", err.Error())
		} else {
			defer stop()
		}
	}
	if adm != nil {
		adm.serving(cfg, gauges{host, srv, inbound, lim, link}, durations, rates, console)
	}

	// systemd (Type=notify): ready now that handlers.js has loaded and every
	// endpoint listens; then the watchdog, while every worker answers.
	notify := sdnotify.New() // nil (every call a no-op) unless systemd set NOTIFY_SOCKET
	if err := notify.Ready(servingStatus(host, srv)); err != nil {
		log.Warn("systemd notification failed", "error", err.Error())
	}
	wd, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog is off", "error", err.Error())
	}
	stopWatchdog := notify.StartWatchdog(wd, func() bool {
		return workersAnswer(host, sdnotify.PingPeriod(wd)/2)
	}, log)
	defer stopWatchdog()

	for sig := range signals {
		if sig == syscall.SIGHUP {
			_ = notify.Status("reloading " + cfg.Handlers)
			status := servingStatus(host, srv)
			if err := host.Reload(); err != nil { // logs its own failure
				status += "; the last reload failed: " + err.Error()
			} else {
				status = servingStatus(host, srv)
			}
			_ = notify.Status(status)
			continue
		}
		if adm != nil {
			adm.ready.Store(false) // a balancer stops sending from now on
		}
		log.Info("shutting down", "signal", sig.String(), "grace", cfg.ShutdownGrace, "lame_duck", cfg.LameDuck)
		_ = notify.Stopping("draining, up to " + (cfg.LameDuck + cfg.ShutdownGrace).String())
		stopWatchdog() // systemd stops watching once told STOPPING=1
		break
	}
	// A second SIGINT or SIGTERM ends the lame duck and the drain at once
	// (a SIGHUP is not acted on any more).
	drained := make(chan struct{})
	defer close(drained)
	go func() {
		for {
			select {
			case sig := <-signals:
				if sig != syscall.SIGHUP {
					log.Warn("second signal: exiting without finishing the drain", "signal", sig.String())
					os.Exit(1)
				}
			case <-drained:
				return
			}
		}
	}()
	if cfg.LameDuck > 0 {
		// Lame duck: not ready, so that balancers stop sending, but
		// serving as usual until they have.
		log.Info("lame duck: /readyz says 503; serving on before the drain", "lame_duck", cfg.LameDuck)
		time.Sleep(cfg.LameDuck)
	}
	host.Shutdown(cfg.ShutdownGrace)
	// Let the last replies leave before the connections close.
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("closing the transport", "error", err.Error())
	}
	log.Info("stopped")
	return nil
}

// flushTimeout bounds how long shutdown waits for queued replies to be
// written.
const flushTimeout = 2 * time.Second

// setProcessors gives Go one processor per JavaScript worker (at most as
// many as Go would use: one per CPU the process may use, a container's
// limit included), unless the environment sets GOMAXPROCS. Every request wakes
// three goroutines (reader, worker, writer); with a processor to spare,
// Go keeps a second thread spinning to steal them, which costs more than
// it saves: on 2 cores a single worker served 4-16% more requests on
// 7-25% less CPU per request with one processor (bench/run.sh, README
// Performance). The system calls still run beside the worker.
func setProcessors(workers int, log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := min(max(workers, 1), runtime.GOMAXPROCS(0)) // Go's default follows a container's CPU limit
	runtime.GOMAXPROCS(n)
	log.Debug("Go processors set to the number of workers", "gomaxprocs", n)
}

// servingStatus is the one line systemctl status shows for a server that
// serves.
func servingStatus(host *jsrt.Host, srv *transport.Server) string {
	return fmt.Sprintf("serving gen=%d on %s", host.Generation(), strings.Join(srv.Addrs(), " "))
}

// workersAnswer reports whether every worker's scheduler answers within
// timeout: the systemd watchdog's health check. A worker inside a long step
// does not answer until the step is interrupted, or the worker retired.
func workersAnswer(host *jsrt.Host, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return host.Ping(ctx)
}

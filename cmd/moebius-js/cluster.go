package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/moebius-js/moebius-js/cluster"
	"github.com/moebius-js/moebius-js/internal/lograte"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// instanceName is instance_name, or by default the host name and the port
// of the first bind endpoint as configured, e.g. "web-1:5555" (with port 0,
// the host name and the process id).
func instanceName(cfg serveConfig) string {
	if cfg.InstanceName != "" {
		return cfg.InstanceName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "moebius-js"
	}
	if len(cfg.Bind) == 0 {
		return host
	}
	network, address, err := transport.ParseEndpoint(cfg.Bind[0])
	if err != nil {
		return host
	}
	if network == "unix" {
		return host + ":" + filepath.Base(address)
	}
	if _, port, err := net.SplitHostPort(address); err == nil && port != "0" {
		return host + ":" + port
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid()) // any port: the process names it
}

// checkCluster reports what in cfg's cluster settings cannot work.
func checkCluster(cfg serveConfig) []error {
	var errs []error
	if cfg.ClusterName == "" || strings.ContainsAny(cfg.ClusterName, ".*> \t\r\n") {
		errs = append(errs, fmt.Errorf("cluster_name: %q must be non-empty, without '.', '*', '>' or white space", cfg.ClusterName))
	}
	if cfg.ClusterNATS == "" && cfg.ClusterCreds != "" {
		errs = append(errs, errors.New("cluster_nats_creds: needs cluster_nats"))
	}
	if cfg.ClusterNATS == "" && cfg.ClusterCA != "" {
		errs = append(errs, errors.New("cluster_nats_ca: needs cluster_nats"))
	}
	return errs
}

// openCluster opens the cluster link when cfg asks for one (nil
// otherwise), as cfg.InstanceName (set: see instanceName). It connects in the background: NATS may be down.
func openCluster(cfg serveConfig, log *slog.Logger, lim *lograte.Limiter) (*cluster.Link, error) {
	if cfg.ClusterNATS == "" {
		return nil, nil
	}
	return cluster.Open(cluster.Config{
		URLs: cfg.ClusterNATS, Creds: cfg.ClusterCreds, CA: cfg.ClusterCA,
		Name: cfg.ClusterName, Instance: cfg.InstanceName,
		Logger: log, LogLimiter: lim,
	})
}

// clusterJS adapts the Link to what handlers use of it (jsrt.Cluster).
type clusterJS struct{ *cluster.Link }

func (c clusterJS) Send(id string, frames [][]byte) error {
	err := c.Link.Send(id, frames)
	if errors.Is(err, cluster.ErrNoClient) {
		return jsrt.ErrNoClient
	}
	return err
}

// clusterLocal is this instance's side of the link: what arrives for its
// clients. Broadcasts go through the workers (like a broadcast of theirs),
// sends straight to the transport.
type clusterLocal struct {
	host *jsrt.Host
	srv  *transport.Server
}

func (l clusterLocal) Broadcast(frame []byte) { l.host.Broadcast(frame) }

// Send sends as a local server.send does: with the envelope of the
// client's latest message (a REQ-style client's delimiter, say).
func (l clusterLocal) Send(id string, frames [][]byte) error {
	_, err := l.srv.SendConn(id, 0, frames...)
	return err
}

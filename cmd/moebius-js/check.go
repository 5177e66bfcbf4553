package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/cluster"
	"github.com/moebius-js/moebius-js/jsrt"
	"github.com/moebius-js/moebius-js/transport"
)

// check loads a handlers file the way serve would and reports whether it
// is valid: exit 0, or 1 with the error at file:line:col (2 for a bad
// configuration or bad arguments).
func check(args []string, stdout, stderr io.Writer) int {
	return runCheck(args, stdout, stderr, os.Environ)
}

// runCheck is check with the environment it reads. The file is the one
// serve would load: the positional argument, else MOEBIUS_HANDLERS, else
// `handlers` in the config file (--config, or ./moebius.yaml when it
// exists), else handlers.js. The rest of the configuration is read and
// checked as serve does, so a setting that would stop serve fails check.
func runCheck(args []string, stdout, stderr io.Writer, environ func() []string) int {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	checkFlags(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	cfg, warnings, err := loadServeConfig(fs, environ)
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js check: bad configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	for _, w := range warnings {
		log.Warn(w)
	}
	// One worker is enough to evaluate the file; dealer() and request()
	// at its top level get connections that check endpoints as serve's
	// do but never connect.
	h, err := jsrt.New(jsrt.Config{
		Handlers:            cfg.Handlers,
		StepBudget:          cfg.StepBudget,
		QueueLimit:          cfg.QueueLimit,
		MaxSpawned:          cfg.MaxSpawned,
		MaxSpawnedPerClient: cfg.MaxSpawnedPerCli,
		Dialer:              checkDialer{},
		Logger:              log,
		Instance:            instanceName(cfg),
		Cluster:             nowhereCluster{},
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d files)\n", cfg.Handlers, len(h.Files()))
	return 0
}

// checkFlags are check's flags: serve's --config (the other settings come
// from the file and the environment, as serve reads them).
func checkFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file (default ./"+defaultConfigFile+" when it exists)")
}

// nowhereCluster is the cluster as check sees it: subjects are checked as
// a cluster's are, and nothing goes anywhere (as with checkDialer).
type nowhereCluster struct{}

func (nowhereCluster) Broadcast([]byte) error      { return nil }
func (nowhereCluster) Send(string, [][]byte) error { return jsrt.ErrNoClient }
func (nowhereCluster) Publish(subject string, _ []byte) error {
	return cluster.CheckSubject(subject, false)
}
func (nowhereCluster) Subscribe(subject string, _ func(string, []byte)) (func(), error) {
	return func() {}, cluster.CheckSubject(subject, true)
}

// checkDialer refuses what transport.Dial refuses (a malformed endpoint,
// an identity too long) and opens nothing: its connections drop what they
// are sent.
type checkDialer struct{}

func (checkDialer) Dial(endpoint string, opts jsrt.DialOptions, _ func([][]byte)) (jsrt.Upstream, error) {
	if err := transport.CheckDial(endpoint, opts.Identity); err != nil {
		return nil, err
	}
	if _, err := dialConfig(transport.DialConfig{}, opts); err != nil {
		return nil, err
	}
	return nowhere{}, nil
}

// nowhere is an upstream connection that is never made.
type nowhere struct{}

func (nowhere) Send(frames ...[]byte) error {
	if len(frames) == 0 {
		return transport.ErrNoFrames
	}
	return nil
}

func (nowhere) Close() {}

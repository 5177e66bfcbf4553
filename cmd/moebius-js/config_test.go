package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// loadIn parses args as serve's flags inside dir (where moebius.yaml may
// be) with env as the whole environment.
func loadIn(t *testing.T, dir string, env []string, args ...string) (serveConfig, []string, error) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return serveConfig{}, nil, err
	}
	return loadServeConfig(fs, func() []string { return env })
}

func TestConfigDefaults(t *testing.T) {
	cfg, warn, err := loadIn(t, t.TempDir(), nil)
	if err != nil || len(warn) != 0 {
		t.Fatalf("defaults: %v %v", err, warn)
	}
	if len(cfg.Bind) != 1 || cfg.Bind[0] != "tcp://127.0.0.1:5555" || cfg.Handlers != "handlers.js" ||
		!cfg.Watch || cfg.Workers != 1 || cfg.StepBudget != time.Second || cfg.MaxMessageSize != 1<<20 ||
		cfg.QueueLimit != 100 || cfg.SendQueue != 1000 || cfg.ShutdownGrace != 5*time.Second || cfg.Metrics != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestConfigPrecedenceFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	yaml := "step_budget: 2s\nworkers: 2\nqueue_limit: 7\nlog_level: debug\nbind: [\"tcp://127.0.0.1:7001\", \"ipc:///tmp/x.sock\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "moebius.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"MOEBIUS_WORKERS=3", "MOEBIUS_QUEUE_LIMIT=8", "HOME=/root"}
	cfg, _, err := loadIn(t, dir, env, "--queue-limit", "9", "app.js")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StepBudget != 2*time.Second || cfg.LogLevel != "debug" {
		t.Errorf("file values lost: %+v", cfg)
	}
	if cfg.Workers != 3 {
		t.Errorf("workers %d: the environment must override the file", cfg.Workers)
	}
	if cfg.QueueLimit != 9 {
		t.Errorf("queue_limit %d: a flag must override the environment", cfg.QueueLimit)
	}
	if cfg.Handlers != "app.js" {
		t.Errorf("handlers %q: the positional argument names the file", cfg.Handlers)
	}
	if len(cfg.Bind) != 2 || cfg.Bind[1] != "ipc:///tmp/x.sock" {
		t.Errorf("bind %v", cfg.Bind)
	}
}

func TestConfigExplicitFileAndEnvList(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(path, []byte("watch: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadIn(t, t.TempDir(), []string{"MOEBIUS_BIND=tcp://127.0.0.1:1,tcp://127.0.0.1:2"}, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Watch || len(cfg.Bind) != 2 {
		t.Fatalf("got %+v", cfg)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		args []string
		want string
	}{
		{"unknown file key", "step_budgett: 1s\n", nil, nil, `unknown key "step_budgett"`},
		{"bad duration", "", []string{"MOEBIUS_STEP_BUDGET=soon"}, nil, "step_budget"},
		{"zero workers", "", nil, []string{"--workers", "0"}, "workers: must be greater than zero"},
		{"bad endpoint", "", nil, []string{"--bind", "http://x"}, `"http://x" is not tcp://`},
		{"bad level", "log_level: loud\n", nil, nil, `log_level: "loud"`},
		{"two files", "", nil, []string{"a.js", "b.js"}, "one handlers file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.yaml != "" {
				if err := os.WriteFile(filepath.Join(dir, "moebius.yaml"), []byte(tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := loadIn(t, dir, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestUnknownEnvironmentVariableIsAWarning(t *testing.T) {
	_, warn, err := loadIn(t, t.TempDir(), []string{"MOEBIUS_COLOUR=blue"})
	if err != nil || len(warn) != 1 || !strings.Contains(warn[0], "MOEBIUS_COLOUR") {
		t.Fatalf("err %v, warnings %v", err, warn)
	}
}

func TestLoggerFormats(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"json", `{"time":`},
		{"text", "time="},
	} {
		var b strings.Builder
		log := newLogger(serveConfig{LogFormat: tc.format, LogLevel: "info"}, &b)
		log.Info("hello", "k", 1)
		log.Debug("hidden at info")
		if !strings.HasPrefix(b.String(), tc.want) || strings.Contains(b.String(), "hidden") {
			t.Errorf("%s: %q", tc.format, b.String())
		}
	}
}

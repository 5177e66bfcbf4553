package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
		cfg.QueueLimit != 100 || cfg.SendHWM != 1000 || cfg.MaxPendingBytes != 128<<20 || cfg.ReadTimeout != 30*time.Second || cfg.ShutdownGrace != 5*time.Second || cfg.Metrics != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestConfigPrecedenceFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	yaml := "step_budget: 2s\nworkers: 2\nqueue_limit: 7\nlog_level: debug\nbind: [\"tcp://127.0.0.1:7001\", \"ipc:///tmp/x.sock\"]\n"
	writeFile(t, dir, "moebius.yaml", yaml)
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
		{"bad endpoint", "", nil, []string{"--bind", "http://x"}, `bind: endpoint "http://x": unsupported transport "http"`},
		{"endpoint without a port", "", nil, []string{"--bind", "tcp://127.0.0.1"}, `bind: endpoint "tcp://127.0.0.1": address 127.0.0.1: missing port`},
		{"bad level", "log_level: loud\n", nil, nil, `log_level: "loud"`},
		{"two files", "", nil, []string{"a.js", "b.js"}, "one handlers file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.yaml != "" {
				writeFile(t, dir, "moebius.yaml", tc.yaml)
			}
			_, _, err := loadIn(t, dir, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
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

// A duration without a unit is refused wherever it comes from, naming the
// key (or flag) and asking for a unit; a bare 0 is 0 in any unit.
func TestDurationWithoutAUnitIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		args []string
		want []string
	}{
		{"file int", "handshake_timeout: 5\n", nil, nil, []string{"moebius.yaml", "handshake_timeout", "unit", `"5s"`}},
		{"file float", "step_budget: 1.5\n", nil, nil, []string{"step_budget", "unit", `"1.5s"`}},
		{"file negative", "heartbeat_interval: -3\n", nil, nil, []string{"heartbeat_interval", "unit"}},
		{"file quoted", "read_timeout: \"30\"\n", nil, nil, []string{"read_timeout", "unit", `"30s"`}},
		{"env", "", []string{"MOEBIUS_WRITE_TIMEOUT=10"}, nil, []string{"MOEBIUS_WRITE_TIMEOUT", "write_timeout", "unit", `"10s"`}},
		{"flag", "", nil, []string{"--shutdown-grace", "5"}, []string{"--shutdown-grace", "unit", `"5s"`}},
		{"file not a duration", "shutdown_grace: [1]\n", nil, nil, []string{"shutdown_grace", "not a duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.yaml != "" {
				writeFile(t, dir, "moebius.yaml", tc.yaml)
			}
			cfg, _, err := loadIn(t, dir, tc.env, tc.args...)
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDurationZeroNeedsNoUnit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "moebius.yaml", "heartbeat_interval: 0\nshutdown_grace: 0\nstep_budget: 250ms\n")
	cfg, _, err := loadIn(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HeartbeatIvl != 0 || cfg.ShutdownGrace != 0 || cfg.StepBudget != 250*time.Millisecond {
		t.Fatalf("got %+v", cfg)
	}
	// 0 for a key that must be positive is refused for that reason.
	_, _, err = loadIn(t, t.TempDir(), []string{"MOEBIUS_HANDSHAKE_TIMEOUT=0"})
	if err == nil || !strings.Contains(err.Error(), "handshake_timeout: must be greater than zero") {
		t.Fatalf("error %v", err)
	}
}

// pflag's bool flags take no separate value; `--watch false` must not
// load a handlers file named "false".
func TestBoolFlagsTakeASeparateTrueOrFalse(t *testing.T) {
	for _, tc := range []struct {
		args            []string
		watch, handover bool
		handlers        string
	}{
		{[]string{"--watch", "false"}, false, false, "handlers.js"},
		{[]string{"--watch", "false", "app.js"}, false, false, "app.js"},
		{[]string{"app.js", "--watch", "false"}, false, false, "app.js"},
		{[]string{"--watch=false", "--watch", "true", "app.js"}, true, false, "app.js"},
		{[]string{"--watch", "app.js"}, true, false, "app.js"},
		{[]string{"--watch=false", "app.js"}, false, false, "app.js"},
		{[]string{"--identity-handover", "true", "app.js"}, true, true, "app.js"},
		{[]string{"--identity-handover", "app.js"}, true, true, "app.js"},
		{[]string{"--identity-handover", "false"}, true, false, "handlers.js"},
		{[]string{"--watch", "--identity-handover", "false", "app.js"}, true, false, "app.js"},
		{[]string{"--watch", "false", "--identity-handover", "true"}, false, true, "handlers.js"},
		{[]string{"--watch", "--", "false"}, true, false, "false"}, // after "--", a file name
	} {
		cfg, _, err := loadIn(t, t.TempDir(), nil, tc.args...)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if cfg.Watch != tc.watch || cfg.IdentityHandover != tc.handover || cfg.Handlers != tc.handlers {
			t.Errorf("%q: watch %v identity_handover %v handlers %q, want %v %v %q",
				tc.args, cfg.Watch, cfg.IdentityHandover, cfg.Handlers, tc.watch, tc.handover, tc.handlers)
		}
	}
}

// MOEBIUS_ is our prefix: an unknown MOEBIUS_ variable is a mistyped
// setting, refused like an unknown key in the file, naming the closest key.
func TestUnknownEnvironmentVariableIsRefused(t *testing.T) {
	_, _, err := loadIn(t, t.TempDir(), []string{"MOEBIUS_STEP_BUDGE=2s", "HOME=/root"})
	if err == nil || !strings.Contains(err.Error(), "MOEBIUS_STEP_BUDGE") || !strings.Contains(err.Error(), "MOEBIUS_STEP_BUDGET") {
		t.Fatalf("error %v", err)
	}
}

// MOEBIUS_BIN is the end-to-end tests' own variable, and they pass their
// environment to the server they start.
func TestMoebiusBinIsNotASetting(t *testing.T) {
	_, warn, err := loadIn(t, t.TempDir(), []string{"MOEBIUS_BIN=/tmp/moebius-js"})
	if err != nil || len(warn) != 0 {
		t.Fatalf("err %v, warnings %v", err, warn)
	}
}

func TestUnknownFileKeyNamesTheClosest(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "moebius.yaml", "hearbeat_interval: 1s\n")
	_, _, err := loadIn(t, dir, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown key "hearbeat_interval"`) || !strings.Contains(err.Error(), `did you mean "heartbeat_interval"`) {
		t.Fatalf("error %v", err)
	}
}

// loadSourcesIn is loadIn returning where each value came from.
func loadSourcesIn(t *testing.T, dir string, env []string, args ...string) (loadedConfig, error) {
	t.Helper()
	t.Chdir(dir)
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return loadConfig(fs, func() []string { return env })
}

func TestConfigSourcesSayWhereEachValueCameFrom(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "moebius.yaml", "step_budget: 2s\nworkers: 2\nqueue_limit: 7\nbind: [\"tcp://127.0.0.1:7001\"]\n")
	l, err := loadSourcesIn(t, dir, []string{"MOEBIUS_WORKERS=3", "MOEBIUS_QUEUE_LIMIT=8", "MOEBIUS_BIN=/x"},
		"--queue-limit", "9", "--watch", "false", "app.js")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"step_budget": "file moebius.yaml",
		"bind":        "file moebius.yaml",
		"workers":     "env MOEBIUS_WORKERS",
		"queue_limit": "flag --queue-limit",
		"watch":       "flag --watch",
		"handlers":    "argument",
		"log_level":   "default",
		"curve_key":   "default",
	} {
		if got := l.sources[key]; got != want {
			t.Errorf("%s: source %q, want %q", key, got, want)
		}
	}
	if len(l.sources) != len(configKeys) {
		t.Errorf("%d sources for %d keys: %v", len(l.sources), len(configKeys), l.sources)
	}
	if l.cfg.Watch || l.cfg.QueueLimit != 9 || l.cfg.Workers != 3 {
		t.Errorf("values: %+v", l.cfg)
	}
}

// The flags have their keys' types, yet a flag not given leaves the file's
// (or the environment's) value alone: its default is not a value given.
func TestTypedFlagsOverrideOnlyWhenGiven(t *testing.T) {
	yaml := "workers: 4\nmax_message_size: 2048\nstep_budget: 3s\nwatch: false\ncurve_bind: [\"tcp://127.0.0.1:7002\"]\ncurve_key: k\n"
	for _, tc := range []struct {
		name string
		args []string
		want func(serveConfig) bool
	}{
		{"none given", nil, func(c serveConfig) bool {
			return c.Workers == 4 && c.MaxMessageSize == 2048 && c.StepBudget == 3*time.Second && !c.Watch && len(c.CurveBind) == 1
		}},
		{"int", []string{"--workers", "5"}, func(c serveConfig) bool { return c.Workers == 5 && c.MaxMessageSize == 2048 }},
		{"int64", []string{"--max-message-size", "4096"}, func(c serveConfig) bool { return c.MaxMessageSize == 4096 && c.Workers == 4 }},
		{"duration", []string{"--step-budget", "250ms"}, func(c serveConfig) bool { return c.StepBudget == 250*time.Millisecond }},
		{"duration zero", []string{"--shutdown-grace", "0"}, func(c serveConfig) bool { return c.ShutdownGrace == 0 && c.StepBudget == 3*time.Second }},
		{"bool", []string{"--watch"}, func(c serveConfig) bool { return c.Watch }},
		{"list", []string{"--curve-bind", "tcp://127.0.0.1:7003", "--curve-bind", "tcp://127.0.0.1:7004"}, func(c serveConfig) bool {
			return len(c.CurveBind) == 2 && c.CurveBind[1] == "tcp://127.0.0.1:7004"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "moebius.yaml", yaml)
			l, _ := loadSourcesIn(t, dir, nil, tc.args...) // curve_key "k" is no key file: check() refuses, the values stand
			if l.sources == nil || !tc.want(l.cfg) {
				t.Fatalf("%+v", l.cfg)
			}
		})
	}
}

func TestTypedFlagsRefuseAValueOfTheWrongType(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "two"}, "--workers"},
		{[]string{"--max-pending-bytes", "1e9"}, "--max-pending-bytes"},
		{[]string{"--read-timeout", "soon"}, `"soon" is not a duration`},
		{[]string{"--read-timeout", "30"}, `"30s"`},
	} {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		serveFlags(fs)
		fs.SetOutput(io.Discard)
		if err := fs.Parse(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

// In JSON, a duration is written as text, as in the text format, not as
// a number of nanoseconds; other values keep their JSON types.
func TestJSONLogsWriteDurationsAsText(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"json", `"grace":"1.5s"`},
		{"json", `"limits":{"read":"30s","frames":256}`},
		{"json", `"frames":256`},
		{"text", "grace=1.5s"},
		{"text", "limits.read=30s"},
	} {
		var b strings.Builder
		log := newLogger(serveConfig{LogFormat: tc.format, LogLevel: "info"}, &b)
		log.Info("shutting down", "grace", 1500*time.Millisecond, slog.Group("limits", "read", 30*time.Second, "frames", 256), "frames", 256)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: %q does not contain %q", tc.format, b.String(), tc.want)
		}
	}
}

// startupLine is the line serve logs as it starts, in the text format.
func startupLine(cfg serveConfig) string {
	var b strings.Builder
	newLogger(serveConfig{LogFormat: "text", LogLevel: "info"}, &b).Info("moebius-js starting", startupAttrs(cfg)...)
	return b.String()
}

// attrKeys are the keys of attrs, in order.
func attrKeys(attrs []any) []string {
	var keys []string
	for i := 0; i < len(attrs); i += 2 {
		keys = append(keys, attrs[i].(string))
	}
	return keys
}

func TestStartupAttrsNameTheVersionWhatIsServedAndWhatDiffersFromTheDefaults(t *testing.T) {
	const secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	for _, tc := range []struct {
		name    string
		yaml    string
		args    []string
		keys    []string // all of them, in order
		parts   []string // of the text line
		missing []string // never in it
	}{
		{"defaults", "", nil,
			[]string{"version", "go", "handlers", "workers", "bind", "curve", "admin"},
			[]string{"version=", "go=go1.", "handlers=handlers.js", "workers=1", "bind=[tcp://127.0.0.1:5555]", "curve=off", "admin=off"}, nil},
		{"changed settings", "queue_limit: 9\nstep_budget: 250ms\n", []string{"--workers", "2", "--admin", "127.0.0.1:0", "--watch=false", "app.js"},
			[]string{"version", "go", "handlers", "workers", "bind", "curve", "admin", "watch", "queue_limit", "step_budget"},
			[]string{"handlers=app.js", "workers=2", "admin=127.0.0.1:0", "watch=false", "queue_limit=9", "step_budget=250ms"}, nil},
		{"the old name of admin", "", []string{"--metrics", "127.0.0.1:0"},
			[]string{"version", "go", "handlers", "workers", "bind", "curve", "admin"},
			[]string{"admin=127.0.0.1:0"}, nil},
		{"curve on every bind endpoint, the key as text", "", []string{"--curve-key", secret, "--bind", "tcp://127.0.0.1:7001"},
			[]string{"version", "go", "handlers", "workers", "bind", "curve", "curve_allow_list", "admin"},
			[]string{"curve=[tcp://127.0.0.1:7001]", "curve_allow_list=false"}, []string{secret, "curve_key"}},
		{"curve beside NULL, with an allow-list", "", []string{"--curve-key", secret, "--curve-bind", "tcp://127.0.0.1:7002", "--curve-allow-keys", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"},
			[]string{"version", "go", "handlers", "workers", "bind", "curve", "curve_allow_list", "admin", "curve_allow_keys"},
			[]string{"bind=[tcp://127.0.0.1:5555]", "curve=[tcp://127.0.0.1:7002]", "curve_allow_list=true"}, []string{secret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.yaml != "" {
				writeFile(t, dir, "moebius.yaml", tc.yaml)
			}
			l, _ := loadSourcesIn(t, dir, nil, tc.args...)
			if l.sources == nil {
				t.Fatal("configuration not read")
			}
			attrs := startupAttrs(l.cfg)
			if got := attrKeys(attrs); !slices.Equal(got, tc.keys) {
				t.Errorf("keys %q, want %q", got, tc.keys)
			}
			line := startupLine(l.cfg)
			for _, p := range tc.parts {
				if !strings.Contains(line, p) {
					t.Errorf("%q does not contain %q", line, p)
				}
			}
			for _, m := range tc.missing {
				if strings.Contains(line, m) {
					t.Errorf("%q contains %q", line, m)
				}
			}
		})
	}
}

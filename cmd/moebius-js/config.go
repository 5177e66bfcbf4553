package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// serveConfig is everything `moebius-js serve` can be told. Each key can
// come from the defaults, moebius.yaml (or --config), MOEBIUS_<KEY> in the
// environment, or --<key-with-dashes>, each overriding the one before.
type serveConfig struct {
	Bind             []string      `koanf:"bind"`
	Handlers         string        `koanf:"handlers"`
	Watch            bool          `koanf:"watch"`
	Workers          int           `koanf:"workers"`
	LogLevel         string        `koanf:"log_level"`
	LogFormat        string        `koanf:"log_format"`
	MaxMessageSize   int64         `koanf:"max_message_size"`
	MaxFrames        int           `koanf:"max_frames"`
	QueueLimit       int           `koanf:"queue_limit"`
	SendQueue        int           `koanf:"send_queue"`
	SendQueueBytes   int64         `koanf:"send_queue_bytes"`
	StepBudget       time.Duration `koanf:"step_budget"`
	HandshakeTimeout time.Duration `koanf:"handshake_timeout"`
	ShutdownGrace    time.Duration `koanf:"shutdown_grace"`
	IdentityHandover bool          `koanf:"identity_handover"`
	Metrics          string        `koanf:"metrics"`
}

// defaultConfigFile is read when it exists and --config is not given.
const defaultConfigFile = "moebius.yaml"

// configKeys documents every key, in the order --help lists them.
var configKeys = []struct {
	key, def, help string
}{
	{"bind", "tcp://127.0.0.1:5555", "endpoint to bind, tcp://host:port or ipc://path (repeatable; env: comma-separated)"},
	{"handlers", "handlers.js", "the handlers file (also the first argument)"},
	{"watch", "true", "reload when handlers.js or a file it requires changes"},
	{"workers", "1", "scheduler threads, each with its own JS runtime; clients are pinned by identity"},
	{"log_level", "info", "debug, info, warn or error"},
	{"log_format", "text", "text or json"},
	{"max_message_size", "1048576", "largest incoming message in bytes; a peer that sends more is disconnected"},
	{"max_frames", "256", "most frames in one incoming message; a peer that sends more is disconnected"},
	{"queue_limit", "100", "requests a client may queue behind its running one; more get a queue_full error"},
	{"send_queue", "1000", "messages waiting to be written to one peer; past it the peer is dropped"},
	{"send_queue_bytes", "16777216", "bytes waiting to be written to one peer; past it the peer is dropped"},
	{"step_budget", "1s", "longest one step of a handler may run before it is interrupted"},
	{"handshake_timeout", "5s", "time a new connection has to complete the ZMTP handshake"},
	{"shutdown_grace", "5s", "on SIGINT/SIGTERM, how long work in flight may finish before it is cancelled"},
	{"identity_handover", "false", "a client reusing a connected identity takes it over (default: it is refused)"},
	{"metrics", "", "listen address for Prometheus /metrics, e.g. 127.0.0.1:9100 (empty: off)"},
}

// serveFlags defines serve's flags on fs.
func serveFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file (default ./"+defaultConfigFile+" when it exists)")
	for _, k := range configKeys {
		name := strings.ReplaceAll(k.key, "_", "-")
		switch k.key {
		case "bind":
			fs.StringArray(name, []string{k.def}, k.help)
		case "watch", "identity_handover":
			fs.Bool(name, k.def == "true", k.help)
		default:
			fs.String(name, k.def, k.help)
		}
	}
}

// loadServeConfig merges the defaults, the config file, the environment
// and the flags (already parsed into fs), then checks the result.
//
// Unknown MOEBIUS_* variables are not errors (the environment is shared with
// other programs); they come back as warnings.
func loadServeConfig(fs *pflag.FlagSet, environ func() []string) (cfg serveConfig, warnings []string, err error) {
	k := koanf.New(".")
	defaults := map[string]any{}
	for _, c := range configKeys {
		defaults[c.key] = c.def
	}
	defaults["bind"] = []string{"tcp://127.0.0.1:5555"}
	if err := k.Load(confmap.Provider(defaults, "."), nil); err != nil {
		return cfg, nil, fmt.Errorf("defaults: %w", err)
	}

	path, _ := fs.GetString("config")
	if path == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			path = defaultConfigFile
		}
	}
	if path != "" {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			return cfg, nil, fmt.Errorf("config file %s: %w", path, err)
		}
		if err := checkKeys(fk.Keys(), "config file "+path); err != nil {
			return cfg, nil, err
		}
		if err := k.Merge(fk); err != nil {
			return cfg, nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}

	var unknownEnv []string
	ep := env.Provider(".", env.Opt{
		Prefix:      "MOEBIUS_",
		EnvironFunc: environ,
		TransformFunc: func(key, value string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, "MOEBIUS_"))
			if !isKey(key) {
				unknownEnv = append(unknownEnv, "MOEBIUS_"+strings.ToUpper(key))
				return "", nil
			}
			if key == "bind" {
				return key, strings.Split(value, ",")
			}
			return key, value
		},
	})
	if err := k.Load(ep, nil); err != nil {
		return cfg, nil, fmt.Errorf("environment: %w", err)
	}
	for _, name := range unknownEnv {
		warnings = append(warnings, fmt.Sprintf("environment variable %s is not a setting (known keys: %s)", name, knownKeys()))
	}

	fp := posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		key := strings.ReplaceAll(f.Name, "-", "_")
		if !isKey(key) || !f.Changed {
			return "", nil
		}
		return key, posflag.FlagVal(fs, f)
	})
	if err := k.Load(fp, nil); err != nil {
		return cfg, nil, fmt.Errorf("flags: %w", err)
	}
	if args := fs.Args(); len(args) > 0 {
		if len(args) > 1 {
			return cfg, nil, fmt.Errorf("serve takes one handlers file, got %q", args)
		}
		_ = k.Set("handlers", args[0])
	}

	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf", FlatPaths: false}); err != nil {
		return cfg, nil, fmt.Errorf("config: %w", err)
	}
	return cfg, warnings, cfg.check()
}

func isKey(key string) bool {
	return slices.ContainsFunc(configKeys, func(c struct{ key, def, help string }) bool { return c.key == key })
}

func knownKeys() string {
	var names []string
	for _, c := range configKeys {
		names = append(names, c.key)
	}
	return strings.Join(names, ", ")
}

func checkKeys(keys []string, where string) error {
	for _, key := range keys {
		if !isKey(key) {
			return fmt.Errorf("%s: unknown key %q (known: %s)", where, key, knownKeys())
		}
	}
	return nil
}

// check reports the first setting that cannot work.
func (c serveConfig) check() error {
	var errs []error
	if len(c.Bind) == 0 {
		errs = append(errs, errors.New("bind: at least one endpoint is needed"))
	}
	for _, b := range c.Bind {
		if !strings.HasPrefix(b, "tcp://") && !strings.HasPrefix(b, "ipc://") {
			errs = append(errs, fmt.Errorf("bind: %q is not tcp://host:port or ipc://path", b))
		}
	}
	if c.Handlers == "" {
		errs = append(errs, errors.New("handlers: a file is needed"))
	}
	positive := map[string]int64{
		"workers": int64(c.Workers), "max_message_size": c.MaxMessageSize, "max_frames": int64(c.MaxFrames),
		"send_queue_bytes": c.SendQueueBytes,
		"queue_limit":      int64(c.QueueLimit), "send_queue": int64(c.SendQueue),
		"step_budget": int64(c.StepBudget), "handshake_timeout": int64(c.HandshakeTimeout),
	}
	for _, ck := range configKeys {
		if v, ok := positive[ck.key]; ok && v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be greater than zero", ck.key))
		}
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("shutdown_grace: must not be negative"))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		errs = append(errs, fmt.Errorf("log_format: %q is not text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

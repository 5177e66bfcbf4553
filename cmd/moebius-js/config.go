package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/transport"
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
	MaxPendingBytes  int64         `koanf:"max_pending_bytes"`
	SendHWM          int           `koanf:"send_hwm"`
	SendHWMBytes     int64         `koanf:"send_hwm_bytes"`
	SendQueueBytes   int64         `koanf:"send_queue_bytes"`
	MaxSendBytes     int64         `koanf:"max_send_bytes"`
	WriteTimeout     time.Duration `koanf:"write_timeout"`
	MaxConnections   int           `koanf:"max_connections"`
	MaxConnsPerAddr  int           `koanf:"max_connections_per_address"`
	MaxHandshakes    int           `koanf:"max_handshakes"`
	ReadTimeout      time.Duration `koanf:"read_timeout"`
	HeartbeatIvl     time.Duration `koanf:"heartbeat_interval"`
	HeartbeatTimeout time.Duration `koanf:"heartbeat_timeout"`
	MaxSpawned       int           `koanf:"max_spawned"`
	MaxSpawnedPerCli int           `koanf:"max_spawned_per_client"`
	StepBudget       time.Duration `koanf:"step_budget"`
	HandshakeTimeout time.Duration `koanf:"handshake_timeout"`
	ShutdownGrace    time.Duration `koanf:"shutdown_grace"`
	IdentityHandover bool          `koanf:"identity_handover"`
	Admin            string        `koanf:"admin"`
	AdminConsole     bool          `koanf:"admin_console"`
	Metrics          string        `koanf:"metrics"`
	CurveKey         string        `koanf:"curve_key"`
	CurveBind        []string      `koanf:"curve_bind"`
	CurveAllow       string        `koanf:"curve_allow"`
	CurveAllowKeys   []string      `koanf:"curve_allow_keys"`
	LameDuck         time.Duration `koanf:"lame_duck"`
	ClusterNATS      string        `koanf:"cluster_nats"`
	ClusterName      string        `koanf:"cluster_name"`
	InstanceName     string        `koanf:"instance_name"`
	ClusterCreds     string        `koanf:"cluster_nats_creds"`
	ClusterCA        string        `koanf:"cluster_nats_ca"`
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
	{"queue_limit", "100", "requests a client may have waiting; then its connection is not read until one starts"},
	{"max_pending_bytes", "134217728", "bytes of requests waiting across all clients; past it the clients holding some are not read"},
	{"send_hwm", "1000", "messages queued to one client above which its generators pause and broadcasts skip it"},
	{"send_hwm_bytes", "4194304", "bytes queued to one client above which its generators pause and broadcasts skip it"},
	{"send_queue_bytes", "16777216", "bytes queued to one client; a send past it drops the client"},
	{"max_send_bytes", "268435456", "bytes queued to all clients; past it the clients that do not read are dropped, largest first"},
	{"write_timeout", "10s", "a client that reads nothing for this long while replies wait is dropped"},
	{"max_connections", "10000", "open connections; more are closed at accept (lowered to fit the file descriptor limit)"},
	{"max_connections_per_address", "5000", "open connections from one IP address; more are closed at accept (0: no bound)"},
	{"max_handshakes", "1000", "connections in their handshake (half of it per address); more are closed at accept"},
	{"read_timeout", "30s", "a connection that stalls this long in the middle of a message is closed"},
	{"heartbeat_interval", "30s", "PING a client silent for this long (0: no server heartbeats)"},
	{"heartbeat_timeout", "30s", "close a connection when nothing arrives this long after a PING"},
	{"max_spawned", "10000", "tasks server.spawn may have running per worker; more throw"},
	{"max_spawned_per_client", "100", "tasks server.spawn may have running for one client; more throw"},
	{"step_budget", "1s", "longest one step of a handler may run before it is interrupted"},
	{"handshake_timeout", "5s", "time a new connection has to complete the ZMTP handshake"},
	{"shutdown_grace", "5s", "on SIGINT/SIGTERM, how long work in flight may finish before it is cancelled"},
	{"identity_handover", "false", "a client reusing a connected identity takes it over (default: it is refused)"},
	{"admin", "", "listen address of the admin HTTP endpoints (the dashboard at /, /metrics, /healthz, /readyz, /status, /clients), e.g. 127.0.0.1:9100 (empty: off); no authentication: keep it on loopback"},
	{"admin_console", "false", "the dashboard's console: send messages to handlers as a simulated client from the browser (needs admin; anyone who reaches the admin address can use it)"},
	{"metrics", "", "the old name of admin"},
	{"curve_key", "", "the server's CURVE secret key: a secret certificate (moebius-js keygen) or its Z85 text; with it every bind endpoint speaks CURVE, unless curve_bind names others"},
	{"curve_bind", "", "endpoints that speak CURVE beside the NULL bind ones (repeatable; env: comma-separated)"},
	{"curve_allow", "", "folder of the public certificates of the clients that may connect over CURVE; watched, a removed key is disconnected"},
	{"curve_allow_keys", "", "Z85 public keys of clients that may connect over CURVE, beside curve_allow (repeatable; env: comma-separated)"},
	{"lame_duck", "0s", "on SIGINT/SIGTERM, how long /readyz says 503 while the server still serves normally, before its drain begins (so a balancer stops sending first)"},
	{"cluster_nats", "", "NATS server URLs, comma-separated (nats://host:4222): run as one instance of a cluster (empty: alone)"},
	{"cluster_name", "moebius", "the cluster's name: instances with the same name and NATS act as one"},
	{"instance_name", "", "this instance's name in the cluster (default: host name and the port of the first bind endpoint)"},
	{"cluster_nats_creds", "", "a NATS credentials file, for a NATS server that asks for one"},
	{"cluster_nats_ca", "", "a file of CA certificates for tls:// NATS servers"},
}

// isList reports whether a key takes a list: a flag that repeats, a
// comma-separated environment variable, a default of comma-separated
// values.
func isList(key string) bool { return keyTypes[key] == reflect.TypeFor[[]string]() }

// listDefault is a list key's default, as its configKeys entry writes it.
func listDefault(def string) []string {
	if def == "" {
		return []string{}
	}
	return strings.Split(def, ",")
}

// serveFlags defines serve's flags on fs: one per key, of the key's type.
// A duration flag refuses a number without a unit as the file and the
// environment do.
func serveFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file (default ./"+defaultConfigFile+" when it exists)")
	bools := &boolArgs{fs: fs}
	for _, k := range configKeys {
		name := flagName(k.key)
		switch t := keyTypes[k.key]; {
		case t == reflect.TypeFor[[]string]():
			fs.StringArray(name, listDefault(k.def), k.help)
		case t == reflect.TypeFor[bool]():
			f := fs.VarPF(&boolValue{v: k.def == "true", args: bools}, name, "", k.help+" (off: --"+name+"=false or --"+name+" false)")
			f.NoOptDefVal = "true"
		case t == reflect.TypeFor[time.Duration]():
			d, err := time.ParseDuration(k.def)
			if err != nil {
				panic(fmt.Sprintf("default of %s: %v", k.key, err))
			}
			fs.Var((*durationValue)(&d), name, k.help)
		case t == reflect.TypeFor[int]():
			fs.Int(name, mustParseInt(k.key, k.def), k.help)
		case t == reflect.TypeFor[int64]():
			fs.Int64(name, int64(mustParseInt(k.key, k.def)), k.help)
		default:
			fs.String(name, k.def, k.help)
		}
	}
	for key, values := range keyChoices {
		_ = fs.SetAnnotation(flagName(key), choicesAnnotation, values)
	}
}

// flagName is the flag of a key: log_level is --log-level.
func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func mustParseInt(key, def string) int {
	n, err := strconv.Atoi(def)
	if err != nil {
		panic(fmt.Sprintf("default of %s: %v", key, err))
	}
	return n
}

// keyTypes is the Go type of each key's value in serveConfig.
var keyTypes = func() map[string]reflect.Type {
	types := map[string]reflect.Type{}
	t := reflect.TypeFor[serveConfig]()
	for i := range t.NumField() {
		types[t.Field(i).Tag.Get("koanf")] = t.Field(i).Type
	}
	return types
}()

// The values log_level and log_format may take.
var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

// keyChoices are the keys that take one of a few words; their flags carry
// them (as the annotation choicesAnnotation) for shell completion.
var keyChoices = map[string][]string{"log_level": logLevels, "log_format": logFormats}

const choicesAnnotation = "moebius-js/choices"

// durationValue is the value of a duration flag. Unlike pflag's own, it
// refuses a number without a unit with the same message as a file or the
// environment get (a bare 0 is 0 in any unit).
type durationValue time.Duration

func (d *durationValue) Type() string   { return "duration" }
func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(s string) error {
	if err := checkDuration(s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

// boolValue is the value of a bool flag (--watch, --identity-handover).
// pflag lets a bool flag stand alone (--watch means --watch=true), so
// `--watch false` would leave "false" as the handlers file; boolValue
// records where each flag was met among the positional arguments, so that
// takeBoolArgs can give a "true" or "false" right after it to the flag.
type boolValue struct {
	v    bool
	args *boolArgs
}

func (b *boolValue) Type() string     { return "bool" }
func (b *boolValue) IsBoolFlag() bool { return true }
func (b *boolValue) String() string   { return strconv.FormatBool(b.v) }

func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.v = v
	// pflag appends each positional argument to fs.Args() as it meets it:
	// its length now is the index the next positional argument will have.
	b.args.sets = append(b.args.sets, boolSet{b, v, len(b.args.fs.Args()), s == "true"})
	return nil
}

// boolArgs is what the bool flags of one FlagSet were set to, in order.
type boolArgs struct {
	fs   *pflag.FlagSet
	sets []boolSet
}

type boolSet struct {
	flag *boolValue
	v    bool
	at   int  // index in fs.Args() of the next positional argument
	bare bool // set to "true": --flag alone (or --flag=true)
}

// takeBoolArgs returns fs.Args() without the "true" and "false" that came
// right after a bool flag given alone, and sets that flag to them:
// `--watch false` is --watch=false. Arguments after "--" are left alone.
func takeBoolArgs(fs *pflag.FlagSet) []string {
	args := fs.Args()
	var rec *boolArgs
	fs.VisitAll(func(f *pflag.Flag) {
		if b, ok := f.Value.(*boolValue); ok {
			rec = b.args
		}
	})
	if rec == nil || len(rec.sets) == 0 {
		return args
	}
	// Only the last flag before a positional argument is right before it.
	last := map[int]int{}
	for i, s := range rec.sets {
		last[s.at] = i
	}
	taken := map[int]bool{}
	dash := fs.ArgsLenAtDash()
	for i, s := range rec.sets {
		if s.bare && last[s.at] == i && s.at < len(args) && (dash < 0 || s.at < dash) {
			switch args[s.at] {
			case "true":
				s.v, taken[s.at] = true, true
			case "false":
				s.v, taken[s.at] = false, true
			}
		}
		s.flag.v = s.v // the last setting of each flag wins
	}
	var rest []string
	for i, a := range args {
		if !taken[i] {
			rest = append(rest, a)
		}
	}
	return rest
}

// notSettings are MOEBIUS_ variables that are not settings but are set on
// purpose: the end-to-end tests (tests/main_test.go) read MOEBIUS_BIN and
// pass their whole environment to the server they start.
var notSettings = []string{"MOEBIUS_BIN"}

// loadServeConfig merges the defaults, the config file, the environment
// and the flags (already parsed into fs), then checks the result. fs may
// define only some of serve's flags (check defines --config alone).
//
// An unknown key in the file or an unknown MOEBIUS_* variable (but those in
// notSettings) is an error naming the closest key, as is a duration without
// a unit. warnings is for what should be said but does not stop the server.
func loadServeConfig(fs *pflag.FlagSet, environ func() []string) (cfg serveConfig, warnings []string, err error) {
	l, err := loadConfig(fs, environ)
	return l.cfg, l.warnings, err
}

// loadedConfig is what loadConfig read.
type loadedConfig struct {
	cfg      serveConfig
	warnings []string
	// sources says where each key's value came from: "default",
	// "file PATH", "env MOEBIUS_KEY", "flag --key" or "argument". It is
	// nil when reading stopped before every source was merged; otherwise
	// cfg holds the merged values even when they fail cfg.check().
	sources map[string]string
}

// loadConfig is loadServeConfig, also telling where each value came from
// (for `moebius-js config`).
func loadConfig(fs *pflag.FlagSet, environ func() []string) (l loadedConfig, err error) {
	sources := map[string]string{}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(configDefaults(), "."), nil); err != nil {
		return l, fmt.Errorf("defaults: %w", err)
	}
	for _, c := range configKeys {
		sources[c.key] = "default"
	}

	path := ""
	if fs.Lookup("config") != nil {
		path, _ = fs.GetString("config")
	}
	if path == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			path = defaultConfigFile
		}
	}
	if path != "" {
		where := "config file " + path
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			return l, fmt.Errorf("%s: %w", where, err)
		}
		if err := checkKeys(fk.Keys(), where); err != nil {
			return l, err
		}
		if err := checkDurations(fk.All(), func(key string) string { return where + ": " + key }); err != nil {
			return l, err
		}
		if err := k.Merge(fk); err != nil {
			return l, fmt.Errorf("%s: %w", where, err)
		}
		for _, key := range fk.Keys() {
			sources[key] = "file " + path
		}
	}

	var unknownEnv []error
	ek := koanf.New(".")
	ep := env.Provider(".", env.Opt{
		Prefix:      "MOEBIUS_",
		EnvironFunc: environ,
		TransformFunc: func(name, value string) (string, any) {
			key := strings.ToLower(strings.TrimPrefix(name, "MOEBIUS_"))
			if slices.Contains(notSettings, name) {
				return "", nil
			}
			if !isKey(key) {
				unknownEnv = append(unknownEnv, fmt.Errorf("environment variable %s is not a setting (did you mean MOEBIUS_%s? known keys: %s)",
					name, strings.ToUpper(closestKey(key)), knownKeys()))
				return "", nil
			}
			if isList(key) {
				return key, strings.Split(value, ",")
			}
			return key, value
		},
	})
	if err := ek.Load(ep, nil); err != nil {
		return l, fmt.Errorf("environment: %w", err)
	}
	if len(unknownEnv) > 0 {
		return l, errors.Join(unknownEnv...)
	}
	if err := checkDurations(ek.All(), func(key string) string {
		return "environment variable MOEBIUS_" + strings.ToUpper(key) + " (" + key + ")"
	}); err != nil {
		return l, err
	}
	if err := k.Merge(ek); err != nil {
		return l, fmt.Errorf("environment: %w", err)
	}
	for _, key := range ek.Keys() {
		sources[key] = "env MOEBIUS_" + strings.ToUpper(key)
	}

	args := takeBoolArgs(fs)
	flags := map[string]any{}
	fs.Visit(func(f *pflag.Flag) { // the flags given
		key := strings.ReplaceAll(f.Name, "-", "_")
		if !isKey(key) {
			return
		}
		switch v := f.Value.(type) {
		case pflag.SliceValue:
			flags[key] = v.GetSlice()
		case *boolValue:
			flags[key] = v.v
		default:
			flags[key] = f.Value.String()
		}
		sources[key] = "flag --" + f.Name
	})
	if err := checkDurations(flags, func(key string) string { return "flag --" + strings.ReplaceAll(key, "_", "-") }); err != nil {
		return l, err
	}
	if err := k.Load(confmap.Provider(flags, "."), nil); err != nil {
		return l, fmt.Errorf("flags: %w", err)
	}
	if len(args) > 0 {
		if len(args) > 1 {
			return l, fmt.Errorf("%s takes one handlers file, got %q", fs.Name(), args)
		}
		_ = k.Set("handlers", args[0])
		sources["handlers"] = "argument"
	}

	cfg, err := unmarshalConfig(k)
	if err != nil {
		return l, err
	}
	return loadedConfig{cfg: cfg, sources: sources}, cfg.check()
}

// configDefaults is every key's default value, as koanf reads them.
func configDefaults() map[string]any {
	defaults := map[string]any{}
	for _, c := range configKeys {
		if isList(c.key) {
			defaults[c.key] = listDefault(c.def)
		} else {
			defaults[c.key] = c.def
		}
	}
	return defaults
}

func unmarshalConfig(k *koanf.Koanf) (cfg serveConfig, err error) {
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf", FlatPaths: false}); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// defaultServeConfig is the configuration with every key at its default.
var defaultServeConfig = sync.OnceValue(func() serveConfig {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(configDefaults(), "."), nil); err != nil {
		panic(fmt.Sprintf("defaults: %v", err))
	}
	cfg, err := unmarshalConfig(k)
	if err != nil {
		panic(fmt.Sprintf("defaults: %v", err))
	}
	return cfg
})

// configValues is cfg's value of each key.
func configValues(cfg serveConfig) map[string]any {
	values := map[string]any{}
	v := reflect.ValueOf(cfg)
	for i := range v.NumField() {
		values[v.Type().Field(i).Tag.Get("koanf")] = v.Field(i).Interface()
	}
	return values
}

// sameValue reports whether two values of a key are the same (a nil
// list and an empty one are).
func sameValue(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs, _ := b.([]string)
		return slices.Equal(as, bs)
	}
	return a == b
}

// isDuration reports whether a key's value is a time.Duration.
func isDuration(key string) bool { return keyTypes[key] == reflect.TypeFor[time.Duration]() }

// checkDurations refuses a duration in values (one source's settings)
// that is not one: a number without a unit (YAML's `5`, or "5" from the
// environment or a flag) would be read as nanoseconds. A bare 0 is 0 in
// any unit, so it is allowed (check() refuses it where 0 cannot work).
// name says where a key's value came from.
func checkDurations(values map[string]any, name func(key string) string) error {
	var errs []error
	for _, c := range configKeys {
		v, ok := values[c.key]
		if !ok || !isDuration(c.key) {
			continue
		}
		if err := checkDuration(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name(c.key), err))
		}
	}
	return errors.Join(errs...)
}

func checkDuration(v any) error {
	number := ""
	switch v := v.(type) {
	case string:
		if _, err := time.ParseDuration(v); err == nil {
			return nil
		}
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("%q is not a duration (write one like \"5s\", \"250ms\" or \"1m30s\")", v)
		}
		number = v
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		if reflect.ValueOf(v).IsZero() {
			return nil
		}
		number = fmt.Sprint(v)
	default:
		return fmt.Errorf("%v is not a duration (write one like \"5s\", \"250ms\" or \"1m30s\")", v)
	}
	return fmt.Errorf("%s has no unit; a duration needs one, e.g. \"%ss\" or \"%sms\"", number, number, number)
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

// closestKey returns the known key nearest to key in edit distance.
func closestKey(key string) string {
	keys := make([]string, len(configKeys))
	for i, c := range configKeys {
		keys[i] = c.key
	}
	return closest(key, keys)
}

// closest returns the word of among nearest to s in edit distance.
func closest(s string, among []string) string {
	best, bestDist := "", -1
	for _, w := range among {
		if d := editDistance(s, w); bestDist < 0 || d < bestDist {
			best, bestDist = w, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func checkKeys(keys []string, where string) error {
	for _, key := range keys {
		if !isKey(key) {
			return fmt.Errorf("%s: unknown key %q (did you mean %q? known: %s)", where, key, closestKey(key), knownKeys())
		}
	}
	return nil
}

// adminAddr is where the admin endpoints listen: admin, or metrics (its
// old name); "" for nowhere.
func (c serveConfig) adminAddr() string {
	if c.Admin != "" {
		return c.Admin
	}
	return c.Metrics
}

// check reports the first setting that cannot work.
func (c serveConfig) check() error {
	var errs []error
	if len(c.Bind) == 0 {
		errs = append(errs, errors.New("bind: at least one endpoint is needed"))
	}
	for _, b := range c.Bind {
		if _, _, err := transport.ParseEndpoint(b); err != nil {
			errs = append(errs, fmt.Errorf("bind: %w", err))
		}
	}
	if c.Handlers == "" {
		errs = append(errs, errors.New("handlers: a file is needed"))
	}
	errs = append(errs, checkCurve(c)...)
	errs = append(errs, checkCluster(c)...)
	if c.AdminConsole && c.adminAddr() == "" {
		errs = append(errs, errors.New("admin_console: the console is part of the dashboard; set admin (e.g. 127.0.0.1:9100) too"))
	}
	if c.Admin != "" && c.Metrics != "" && c.Admin != c.Metrics {
		errs = append(errs, fmt.Errorf("admin (%q) and metrics (%q): metrics is the old name of admin; set one", c.Admin, c.Metrics))
	}
	positive := map[string]int64{
		"workers": int64(c.Workers), "max_message_size": c.MaxMessageSize, "max_frames": int64(c.MaxFrames),
		"queue_limit": int64(c.QueueLimit), "max_pending_bytes": c.MaxPendingBytes,
		"send_hwm": int64(c.SendHWM), "send_hwm_bytes": c.SendHWMBytes,
		"send_queue_bytes": c.SendQueueBytes, "max_send_bytes": c.MaxSendBytes,
		"write_timeout": int64(c.WriteTimeout), "max_connections": int64(c.MaxConnections),
		"max_handshakes": int64(c.MaxHandshakes), "read_timeout": int64(c.ReadTimeout),
		"heartbeat_timeout": int64(c.HeartbeatTimeout), "max_spawned": int64(c.MaxSpawned),
		"max_spawned_per_client": int64(c.MaxSpawnedPerCli),
		"step_budget":            int64(c.StepBudget), "handshake_timeout": int64(c.HandshakeTimeout),
	}
	for _, ck := range configKeys {
		if v, ok := positive[ck.key]; ok && v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be greater than zero", ck.key))
		}
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("shutdown_grace: must not be negative"))
	}
	if c.LameDuck < 0 {
		errs = append(errs, errors.New("lame_duck: must not be negative"))
	}
	if c.MaxConnsPerAddr < 0 {
		errs = append(errs, errors.New("max_connections_per_address: must not be negative (0: no bound)"))
	}
	if c.HeartbeatIvl < 0 {
		errs = append(errs, errors.New("heartbeat_interval: must not be negative (0: no server heartbeats)"))
	}
	if c.MaxMessageSize > 0 && c.MaxPendingBytes > 0 && c.MaxMessageSize > c.MaxPendingBytes {
		errs = append(errs, fmt.Errorf("max_message_size (%d) must not be larger than max_pending_bytes (%d)", c.MaxMessageSize, c.MaxPendingBytes))
	}
	if !slices.Contains(logLevels, c.LogLevel) {
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if !slices.Contains(logFormats, c.LogFormat) {
		errs = append(errs, fmt.Errorf("log_format: %q is not text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

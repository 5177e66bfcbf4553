package main

import (
	"io"
	"log/slog"
	"runtime"
)

// newLogger makes the server's logger from the log_level and log_format
// settings, writing to w. In JSON a duration is text ("1.5s"), as in the
// text format, rather than a number of nanoseconds.
func newLogger(cfg serveConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		opts.ReplaceAttr = durationsAsText
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationsAsText writes a duration the way time.Duration.String does.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// startupAttrs are the fields of the line serve logs as it starts: the
// version, what it serves and how, then every other setting that differs
// from its default. The CURVE secret key is never among them.
func startupAttrs(cfg serveConfig) []any {
	attrs := []any{
		"version", buildVersion(),
		"go", runtime.Version(),
		"handlers", cfg.Handlers,
		"workers", cfg.Workers,
		"bind", cfg.Bind,
	}
	shown := map[string]bool{"handlers": true, "workers": true, "bind": true, "curve_key": true, "curve_bind": true, "admin": true, "metrics": true}
	if cfg.CurveKey == "" {
		attrs = append(attrs, "curve", "off")
	} else {
		endpoints := cfg.CurveBind
		if len(endpoints) == 0 { // every bind endpoint speaks CURVE
			endpoints = cfg.Bind
		}
		attrs = append(attrs, "curve", endpoints, "curve_allow_list", cfg.CurveAllow != "" || len(cfg.CurveAllowKeys) > 0)
	}
	admin := cfg.adminAddr()
	if admin == "" {
		admin = "off"
	}
	attrs = append(attrs, "admin", admin)

	values, defaults := configValues(cfg), configValues(defaultServeConfig())
	for _, c := range configKeys {
		if !shown[c.key] && !sameValue(values[c.key], defaults[c.key]) {
			attrs = append(attrs, c.key, shownValue(c.key, values[c.key]))
		}
	}
	return attrs
}

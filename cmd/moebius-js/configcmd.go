package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/cluster"
	"github.com/moebius-js/moebius-js/curve"
)

// configFlags are config's flags: serve's, and --json.
func configFlags(fs *pflag.FlagSet) {
	serveFlags(fs)
	fs.Bool("json", false, "print a JSON object instead: {\"key\": {\"value\": …, \"source\": …}, …}")
}

// configCmd prints the configuration serve would run with, given the same
// flags, and where each value came from.
func configCmd(args []string, stdout, stderr io.Writer) int {
	return runConfig(args, stdout, stderr, os.Environ)
}

// runConfig is configCmd with the environment it reads. It prints what it
// could merge even when serve would refuse it (then exit 2, with the
// reasons on stderr), since that is when one wants to know where a value
// came from.
func runConfig(args []string, stdout, stderr io.Writer, environ func() []string) int {
	fs := pflag.NewFlagSet("config", pflag.ContinueOnError)
	configFlags(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	asJSON, _ := fs.GetBool("json")
	l, err := loadConfig(fs, environ)
	if l.sources == nil {
		fmt.Fprintf(stderr, "moebius-js config: bad configuration:\n%v\n", err)
		return 2
	}
	for _, w := range l.warnings {
		fmt.Fprintf(stderr, "moebius-js config: %s\n", w)
	}
	if asJSON {
		if werr := writeConfigJSON(stdout, l); werr != nil {
			fmt.Fprintf(stderr, "moebius-js config: %v\n", werr)
			return 1
		}
	} else {
		writeConfigText(stdout, l)
	}
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js config: serve would refuse this configuration:\n%v\n", err)
		return 2
	}
	return 0
}

// writeConfigText writes one line a key: the key, its value and where
// the value came from, in columns.
func writeConfigText(w io.Writer, l loadedConfig) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	values := configValues(l.cfg)
	for _, c := range configKeys {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.key, configText(c.key, values[c.key]), l.sources[c.key])
	}
	_ = tw.Flush()
}

// configText is a key's value as text: a list comma-separated (as the
// environment takes it), a duration as "1m30s", nothing as "".
func configText(key string, v any) string {
	var s string
	switch v := shownValue(key, v).(type) {
	case []string:
		s = strings.Join(v, ",")
	case string:
		s = v
	case time.Duration:
		s = v.String()
	default:
		s = fmt.Sprint(v)
	}
	if s == "" {
		return `""`
	}
	return s
}

// writeConfigJSON writes {"key": {"value": v, "source": s}, …} with the
// keys in the order --help lists them.
func writeConfigJSON(w io.Writer, l loadedConfig) error {
	type entry struct {
		Value  any    `json:"value"`
		Source string `json:"source"`
	}
	values := configValues(l.cfg)
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, c := range configKeys {
		e, err := json.Marshal(entry{shownValue(c.key, values[c.key]), l.sources[c.key]})
		if err != nil {
			return fmt.Errorf("%s: %w", c.key, err)
		}
		fmt.Fprintf(&b, "  %s: %s", strconv.Quote(c.key), e)
		if i < len(configKeys)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	_, err := w.Write(b.Bytes())
	return err
}

// shownValue is a key's value as it may be shown (config, the startup
// line, /status): curve_key given as a Z85 secret key is "(set)", never
// the key; cluster_nats without the passwords in its URLs; a duration as
// text ("5s").
func shownValue(key string, v any) any {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	switch key {
	case "curve_key":
		return shownCurveKey(v.(string))
	case "cluster_nats":
		return cluster.RedactURLs(v.(string))
	}
	if l, ok := v.([]string); ok && l == nil {
		return []string{}
	}
	return v
}

// shownCurveKey is curve_key as it may be shown: a certificate's path as
// it is, a key (anything that reads as 40 characters of Z85) as "(set)".
func shownCurveKey(v string) string {
	if _, err := curve.ParseKey(v); err == nil {
		return "(set)"
	}
	return v
}

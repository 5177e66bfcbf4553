package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/jsrt"
)

// check loads a handlers file the way serve would and reports whether it
// is valid: exit 0, or 1 with the error at file:line:col.
func check(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	path := jsrt.DefaultHandlers
	switch fs.NArg() {
	case 0:
	case 1:
		path = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "moebius-js check: give one handlers file")
		return 2
	}
	h, err := jsrt.New(jsrt.Config{Handlers: path, Logger: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d files)\n", path, len(h.Files()))
	return 0
}

package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/moebius-js/moebius-js/testkit"
)

const testAbout = "Runs *.test.js and *.test.ts files (the arguments: files or folders; default the current folder)\n" +
	"against their handlers file, in the real runtime on a virtual clock with simulated clients and no\n" +
	"sockets (package testkit). foo.test.js tests foo.js (or foo.ts) beside it; a test file with no\n" +
	"such neighbour tests the handlers file serve would load (--handlers, MOEBIUS_HANDLERS, handlers in\n" +
	"the config file, else handlers.js). Exit 0 when every test passed, 1 when one failed, 2 for bad\n" +
	"arguments or configuration."

// testCmd is `moebius-js test`.
func testCmd(args []string, stdout, stderr io.Writer) int {
	return runTests(args, stdout, stderr, os.Environ)
}

// testFlags are test's flags.
func testFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML config file (default ./"+defaultConfigFile+" when it exists)")
	fs.String("handlers", "", "the handlers file of test files with none beside them")
	fs.Bool("tap", false, "report as TAP version 13")
}

// runTests is testCmd with the environment it reads.
func runTests(args []string, stdout, stderr io.Writer, environ func() []string) int {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	testFlags(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	// The settings come as serve reads them; the arguments here are test
	// files, not a handlers file, so they are kept out of that reading.
	settings := pflag.NewFlagSet("test", pflag.ContinueOnError)
	testFlags(settings)
	var given []string
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != "tap" {
			given = append(given, "--"+f.Name+"="+f.Value.String())
		}
	})
	if err := settings.Parse(given); err != nil {
		return usageError(stderr, "test", "%v", err)
	}
	cfg, _, err := loadServeConfig(settings, environ)
	if err != nil {
		fmt.Fprintf(stderr, "moebius-js test: bad configuration:\n%v\n", err)
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	files, err := testkit.Find(paths)
	if err != nil {
		return usageError(stderr, "test", "%v", err)
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "moebius-js test: no *.test.js or *.test.ts files in %v\n", paths)
		return 1
	}
	tap, _ := fs.GetBool("tap")
	sum := testkit.Run(files, testkit.Options{
		Handlers:   cfg.Handlers,
		StepBudget: cfg.StepBudget,
		QueueLimit: cfg.QueueLimit,
		TAP:        tap,
		Out:        stdout,
	})
	if sum.Failed > 0 {
		return 1
	}
	return 0
}

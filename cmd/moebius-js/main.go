// Command moebius-js is a ZeroMQ server whose request handlers are
// JavaScript generator functions.
//
//	moebius-js [serve] [flags] [handlers.js]   serve handlers.js (the default)
//	moebius-js send [flags] MESSAGE [FRAME...]  send one message, print the replies
//	moebius-js bench [flags]                    load a server, print throughput and latency
//	moebius-js check [handlers.js]              validate a handlers file
//	moebius-js keygen PATH                      write a CURVE key pair (PATH, PATH_secret)
//	moebius-js version                          print the version
//
// Run any command with --help for its flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it comes from the module's build information.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands maps each subcommand to its entry point, which returns the exit
// code.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"serve":  serve,
	"send":   send,
	"bench":  bench,
	"check":  check,
	"keygen": keygen,
	"version": func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, "moebius-js", versionString())
		return 0
	},
}

func run(args []string, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && !strings.HasSuffix(args[0], ".js") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		fmt.Fprintln(stdout, usage)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "moebius-js: unknown command %q\n\n%s\n", name, usage)
		return 2
	}
	return cmd(args, stdout, stderr)
}

const usage = `usage:
  moebius-js [serve] [flags] [handlers.js]    serve handlers.js (default ./handlers.js on tcp://127.0.0.1:5555)
  moebius-js send [flags] MESSAGE [FRAME...]   send one message and print each reply as it arrives
  moebius-js bench [flags]                     drive N synchronous clients; print throughput and latency
  moebius-js check [handlers.js]               validate a handlers file (exit 1 with file:line:col)
  moebius-js keygen PATH                       write a CURVE key pair as certificates PATH and PATH_secret; print the public key
  moebius-js version                           print the version
Run a command with --help for its flags.`

// parseFlags parses args into fs, printing help or the error. It reports
// the exit code to return when parsing ended the command.
func parseFlags(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) (exit int, done bool) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0, true
		}
		fmt.Fprintf(stderr, "moebius-js %s: %v\n", fs.Name(), err)
		return 2, true
	}
	return 0, false
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v + " " + bi.GoVersion
	}
	return "unknown"
}

// Command moebius-js is a ZeroMQ server whose request handlers are
// JavaScript generator functions.
//
//	moebius-js [serve] [flags] [handlers.js]    serve handlers.js (the default)
//	moebius-js send [flags] MESSAGE [FRAME...]   send one message, print the replies
//	moebius-js bench [flags]                     load a server, print throughput and latency
//	moebius-js check [flags] [handlers.js]       validate a handlers file
//	moebius-js config [flags] [handlers.js]      print the configuration serve would use, and where each value came from
//	moebius-js keygen PATH                       write a CURVE key pair (PATH, PATH_secret)
//	moebius-js completion bash|zsh|fish          print a shell completion script
//	moebius-js version                           print the version (also --version, -v)
//	moebius-js help [COMMAND]                    print the commands, or one command's help
//
// Run any command with --help for its flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
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

// command is one subcommand: how it is called, what it does, its flags and
// its entry point. The command list, each command's --help and the shell
// completion scripts are all made from this table and the flags functions,
// so they cannot drift from what the commands accept.
type command struct {
	name    string
	args    string // what follows the name in its usage line
	summary string // one line, for the command list
	about   string // more, for the command's --help ("" for none)
	// flags defines the command's flags on fs, the same function the
	// command itself uses (nil: it takes none).
	flags func(fs *pflag.FlagSet)
	// words are what its arguments can be, for completion (nil: files).
	words func() []string
	run   func(args []string, stdout, stderr io.Writer) int // returns the exit code
}

// commands is every subcommand, in the order the command list shows them.
// It is filled in init: the help command reads it, which Go would
// otherwise call an initialization cycle.
var commands []command

func init() {
	commands = []command{
		{
			name: "serve", args: "[flags] [handlers.js]",
			summary: "serve handlers.js (the default command; ./handlers.js on tcp://127.0.0.1:5555)",
			about: "Serves the handlers file until SIGINT or SIGTERM, reloading it when it changes or on SIGHUP.\n" +
				"Each setting comes from, in increasing precedence: its default, moebius.yaml (or --config),\n" +
				"the environment variable MOEBIUS_<KEY>, the flag --<key-with-dashes>. `moebius-js config` shows\n" +
				"what they add up to.",
			flags: serveFlags, run: serve,
		},
		{
			name: "send", args: "[flags] MESSAGE [FRAME...]",
			summary: "send one message and print each reply as it arrives",
			about:   "Sends one message (each argument a frame) as a DEALER (or, with --req, a REQ socket) and prints\neach reply on a line, frames separated by \" | \". Exit 0 once --count replies came, 1 otherwise.",
			flags:   func(fs *pflag.FlagSet) { sendFlags(fs) }, run: send,
		},
		{
			name: "bench", args: "[flags]",
			summary: "drive N synchronous clients; print throughput and latency",
			flags:   func(fs *pflag.FlagSet) { benchFlags(fs) }, run: bench,
		},
		{
			name: "check", args: "[flags] [handlers.js]",
			summary: "validate a handlers file (exit 1 with file:line:col)",
			about:   "Loads the handlers file serve would load (the argument, else MOEBIUS_HANDLERS, else handlers in\nthe config file, else handlers.js) and checks the rest of the configuration as serve does.",
			flags:   checkFlags, run: check,
		},
		{
			name: "test", args: "[flags] [FILE|DIR...]",
			summary: "run *.test.js / *.test.ts files against the handlers, on a virtual clock, no sockets",
			about:   testAbout,
			flags:   testFlags, run: testCmd,
		},
		{
			name: "types", args: "[flags] [DIR]",
			summary: "write moebius.d.ts and jsconfig.json (tsconfig.json) for an editor",
			about:   typesAbout,
			flags:   typescriptFlag, run: typesCmd,
		},
		{
			name: "init", args: "[flags] [DIR]",
			summary: "write a starter handlers file, its tests, the types and moebius.yaml",
			about:   initAbout,
			flags:   typescriptFlag, run: initCmd,
		},
		{
			name: "config", args: "[flags] [handlers.js]",
			summary: "print the configuration serve would use and where each value came from",
			about: "Takes serve's flags and prints every setting serve would run with, one a line, with where its\n" +
				"value came from: default, file PATH, env MOEBIUS_<KEY>, flag --<key> or argument. The secret key\n" +
				"curve_key shows as (set) unless it names a file. Exit 2 when serve would refuse the configuration.",
			flags: configFlags, run: configCmd,
		},
		{
			name: "keygen", args: "PATH",
			summary: "write a CURVE key pair as certificates PATH and PATH_secret; print the public key",
			about:   keygenAbout, run: keygen,
		},
		{
			name: "completion", args: "bash|zsh|fish",
			summary: "print a shell completion script",
			about:   completionAbout,
			words:   func() []string { return shells }, run: completion,
		},
		{
			name: "version", summary: "print the version (also --version, -v)",
			run: versionCmd,
		},
		{
			name: "help", args: "[COMMAND]",
			summary: "print this list, or a command's help",
			words:   commandNames, run: helpCmd,
		},
	}
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func commandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}

// flagSet returns a fresh flag set with c's flags defined on it.
func (c *command) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	return fs
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-v", "--version":
			return versionCmd(args[1:], stdout, stderr)
		case "-h", "--help":
			return helpCmd(args[1:], stdout, stderr)
		}
	}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && !strings.HasSuffix(args[0], ".js") && !strings.HasSuffix(args[0], ".ts") {
		name, args = args[0], args[1:]
	}
	cmd := lookup(name)
	if cmd == nil {
		hint := ""
		if _, err := os.Stat(name); err == nil {
			hint = fmt.Sprintf(" (to serve the file %s, run `moebius-js serve %s`)", name, name)
		} else if near := closest(name, commandNames()); editDistance(name, near) <= 2 {
			hint = fmt.Sprintf(" (did you mean %q?)", near)
		}
		fmt.Fprintf(stderr, "moebius-js: unknown command %q%s\nRun 'moebius-js --help' for the commands.\n", name, hint)
		return 2
	}
	return cmd.run(args, stdout, stderr)
}

// writeUsage writes the command list.
func writeUsage(w io.Writer) {
	fmt.Fprintln(w, "moebius-js: a ZeroMQ server whose request handlers are JavaScript generator functions.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage:")
	lines := make([]string, len(commands))
	width := 0
	for i, c := range commands {
		lines[i] = strings.TrimSpace("moebius-js " + c.name + " " + c.args)
		if c.name == "serve" {
			lines[i] = "moebius-js [serve] " + c.args
		}
		width = max(width, len(lines[i]))
	}
	for i, c := range commands {
		fmt.Fprintf(w, "  %-*s   %s\n", width, lines[i], c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'moebius-js COMMAND --help' for a command's flags.")
}

// writeHelp writes the help of the command called name, with the flags
// of fs (the set the command parses).
func writeHelp(w io.Writer, name string, fs *pflag.FlagSet) {
	c := lookup(name)
	if c == nil {
		fs.SetOutput(w)
		fs.PrintDefaults()
		return
	}
	fmt.Fprintln(w, strings.TrimSpace("usage: moebius-js "+c.name+" "+c.args))
	fmt.Fprintln(w)
	about := c.about
	if about == "" {
		about = strings.ToUpper(c.summary[:1]) + c.summary[1:] + "."
	}
	fmt.Fprintln(w, about)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "flags:")
	fmt.Fprint(w, withHelpFlag(fs).FlagUsagesWrapped(110))
}

// withHelpFlag is fs with -h, --help listed too (pflag answers them
// without a definition, so that the commands need not look for them).
func withHelpFlag(fs *pflag.FlagSet) *pflag.FlagSet {
	shown := pflag.NewFlagSet(fs.Name(), pflag.ContinueOnError)
	shown.AddFlagSet(fs)
	if shown.Lookup("help") == nil && shown.ShorthandLookup("h") == nil {
		shown.BoolFuncP("help", "h", "print this help", func(string) error { return nil })
	}
	return shown
}

// parseFlags parses args into fs. --help (or -h) prints the command's
// help on stdout; a bad flag prints the error and a hint on stderr. It
// reports the exit code to return when parsing ended the command.
func parseFlags(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) (exit int, done bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // we print the help ourselves, once, on stdout
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			writeHelp(stdout, fs.Name(), fs)
			return 0, true
		}
		return usageError(stderr, fs.Name(), "%v", err), true
	}
	return 0, false
}

// usageError prints a usage error of the command called name, with a hint
// to its --help, and returns the exit code for it.
func usageError(stderr io.Writer, name, format string, a ...any) int {
	fmt.Fprintf(stderr, "moebius-js %s: %s\nRun 'moebius-js %s --help' for usage.\n", name, fmt.Sprintf(format, a...), name)
	return 2
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "version", "takes no arguments, got %q", fs.Args())
	}
	fmt.Fprintln(stdout, "moebius-js", versionString())
	return 0
}

func helpCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("help", pflag.ContinueOnError)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	switch fs.NArg() {
	case 0:
		writeUsage(stdout)
		return 0
	case 1:
		c := lookup(fs.Arg(0))
		if c == nil {
			return usageError(stderr, "help", "unknown command %q (commands: %s)", fs.Arg(0), strings.Join(commandNames(), ", "))
		}
		writeHelp(stdout, c.name, c.flagSet())
		return 0
	default:
		return usageError(stderr, "help", "give one command, got %q", fs.Args())
	}
}

// versionString is the version, the commit it was built from and the Go
// version that built it: what --version prints.
func versionString() string {
	return buildVersion() + " " + runtime.Version()
}

// buildVersion is the version and the commit it was built from, from
// -ldflags "-X main.version=…" or the build information.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	// Main.Version is a release (v1.2.3), "(devel)", or a pseudo-version
	// that already names the commit (Go 1.24 and later).
	v := bi.Main.Version
	rev, dirty := "", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty" // built from a tree with changes not committed
		}
	}
	if rev != "" && !strings.Contains(v, rev) {
		v += " " + rev + dirty
	}
	return v
}

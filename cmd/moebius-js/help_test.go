package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// runArgs runs the command line args and returns stdout, stderr and the
// exit code.
func runArgs(args ...string) (stdout, stderr string, code int) {
	var out, errOut strings.Builder
	code = run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestVersionFlagsAndCommandPrintTheSameLine(t *testing.T) {
	want := "moebius-js " + versionString() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		out, errOut, code := runArgs(args...)
		if code != 0 || out != want || errOut != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and %q", args, code, out, errOut, want)
		}
	}
}

// The command list names every command once, on stdout, whichever way it
// is asked for.
func TestHelpListsEveryCommandOnceOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, errOut, code := runArgs(args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errOut)
		}
		for _, c := range commands {
			name := c.name
			if name == "serve" {
				name = "[serve]"
			}
			if n := strings.Count(out, "moebius-js "+name+" "); n != 1 {
				t.Errorf("%q: %q appears %d times in:\n%s", args, "moebius-js "+name, n, out)
			}
		}
	}
}

// flagLine matches the line --help prints for the flag name.
func flagLine(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^(  -\w, |      )--` + regexp.QuoteMeta(name) + `[ \[]`)
}

// Each command's --help (and -h) prints its usage line and each of its
// flags once, on stdout only.
func TestCommandHelpPrintsEachFlagOnceOnStdout(t *testing.T) {
	for _, c := range commands {
		for _, h := range []string{"--help", "-h"} {
			t.Run(c.name+" "+h, func(t *testing.T) {
				out, errOut, code := runArgs(c.name, h)
				if code != 0 || errOut != "" {
					t.Fatalf("exit %d, stderr %q", code, errOut)
				}
				if !strings.HasPrefix(out, "usage: moebius-js "+c.name) {
					t.Fatalf("no usage line:\n%s", out)
				}
				names := []string{"help"}
				c.flagSet().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
				for _, name := range names {
					if n := len(flagLine(name).FindAllString(out, -1)); n != 1 {
						t.Errorf("--%s listed %d times in:\n%s", name, n, out)
					}
				}
			})
		}
	}
}

// serve's flags show the type of their value, as pflag's own types do.
func TestServeHelpShowsEachFlagsType(t *testing.T) {
	out, _, _ := runArgs("serve", "--help")
	for _, tc := range []struct{ flag, shown string }{
		{"workers", "--workers int "},
		{"max-message-size", "--max-message-size int "}, // int64: pflag says int
		{"step-budget", "--step-budget duration "},
		{"heartbeat-interval", "--heartbeat-interval duration "},
		{"bind", "--bind stringArray "},
		{"curve-allow-keys", "--curve-allow-keys stringArray "},
		{"watch", "--watch[=true|false] "},
		{"identity-handover", "--identity-handover[=true|false] "},
		{"log-level", "--log-level string "},
	} {
		if !strings.Contains(out, tc.shown) {
			t.Errorf("--%s: want %q in:\n%s", tc.flag, tc.shown, out)
		}
	}
}

func TestHelpCommandPrintsTheCommandsHelp(t *testing.T) {
	for _, c := range commands {
		want, _, _ := runArgs(c.name, "--help")
		got, errOut, code := runArgs("help", c.name)
		if code != 0 || got != want || errOut != "" {
			t.Errorf("help %s: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", c.name, code, errOut, got, want)
		}
	}
}

// A usage error says what is wrong and where the help is, on stderr
// only, and exits 2.
func TestUsageErrorsGoToStderrWithAHintAndExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // parts of stderr
	}{
		{[]string{"nosuch"}, []string{`unknown command "nosuch"`, "moebius-js --help"}},
		{[]string{"sned"}, []string{`did you mean "send"?`}},
		{[]string{"send", "--nope", "x"}, []string{"unknown flag: --nope", "moebius-js send --help"}},
		{[]string{"send"}, []string{"give the message", "moebius-js send --help"}},
		{[]string{"send", "--connect", "localhost:5555", "x"}, []string{"--connect", "tcp://host:port", "moebius-js send --help"}},
		{[]string{"send", "--timeout", "5", "x"}, []string{"--timeout", "moebius-js send --help"}},
		{[]string{"bench", "--clients", "0"}, []string{"--clients", "moebius-js bench --help"}},
		{[]string{"serve", "--workers", "two"}, []string{"--workers", "moebius-js serve --help"}},
		{[]string{"serve", "--step-budget", "2"}, []string{"--step-budget", `"2s"`, "moebius-js serve --help"}},
		{[]string{"check", "--nope"}, []string{"unknown flag: --nope", "moebius-js check --help"}},
		{[]string{"config", "--nope"}, []string{"unknown flag: --nope", "moebius-js config --help"}},
		{[]string{"keygen"}, []string{"give one PATH", "moebius-js keygen --help"}},
		{[]string{"completion"}, []string{"bash, zsh, fish", "moebius-js completion --help"}},
		{[]string{"completion", "tcsh"}, []string{"bash, zsh, fish"}},
		{[]string{"version", "extra"}, []string{"takes no arguments", "moebius-js version --help"}},
		{[]string{"help", "nosuch"}, []string{`unknown command "nosuch"`}},
	} {
		out, errOut, code := runArgs(tc.args...)
		if code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want exit 2 and nothing on stdout", tc.args, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q: stderr %q does not contain %q", tc.args, errOut, w)
			}
		}
	}
}

// Only a first argument ending in .js is taken for a handlers file; for
// another that names a file, the unknown-command error says how to serve it.
func TestAnUnknownCommandThatNamesAFileSaysHowToServeIt(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app.mjs", echoHandlers)
	t.Chdir(dir)
	_, errOut, code := runArgs("app.mjs")
	if code != 2 || !strings.Contains(errOut, "moebius-js serve app.mjs") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

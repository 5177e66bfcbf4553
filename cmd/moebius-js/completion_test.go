package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// completionScript writes `moebius-js completion shell` to a file and
// returns its path.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	out, errOut, code := runArgs("completion", shell)
	if code != 0 || errOut != "" || out == "" {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, code, errOut)
	}
	path := filepath.Join(t.TempDir(), "moebius-js."+shell)
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// needShell skips the test when shell is not installed.
func needShell(t *testing.T, shell string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s is not installed", shell)
	}
	return path
}

// runShell runs shell with args in an empty folder (so that no file names
// are offered) and returns its output.
func runShell(t *testing.T, shell string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needShell(t, shell), args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", shell, args, err, out)
	}
	return string(out)
}

// Every script parses, and names every command and every flag of every
// command (it is made from their flag sets).
func TestCompletionScriptsParseAndNameEveryCommandAndFlag(t *testing.T) {
	for _, tc := range []struct {
		shell string
		check []string // the shell's arguments to check a script's syntax, the path last
	}{
		{"bash", []string{"-n"}},
		{"zsh", []string{"-n"}},
		{"fish", []string{"--no-execute"}},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			path := completionScript(t, tc.shell)
			if _, err := exec.LookPath(tc.shell); err == nil {
				runShell(t, tc.shell, append(tc.check, path)...)
			} else {
				t.Logf("%s is not installed: its script's syntax is not checked", tc.shell)
			}
			script, _ := os.ReadFile(path)
			for _, c := range commands {
				if !strings.Contains(string(script), c.name) {
					t.Errorf("command %s missing", c.name)
				}
				c.flagSet().VisitAll(func(f *pflag.Flag) {
					// The flag as a whole word (bash and zsh --name, fish
					// -l name), not a part of another's (--write-timeout
					// holds timeout).
					spelled := regexp.MustCompile(`(^|[^-\w])(--|-l )` + regexp.QuoteMeta(f.Name) + `($|[^-\w])`)
					if !spelled.Match(script) {
						t.Errorf("%s --%s missing", c.name, f.Name)
					}
				})
			}
			if !strings.Contains(string(script), "curve-key") {
				t.Error("serve's --curve-key missing")
			}
		})
	}
}

// The bash script completes commands, each command's flags, the values of
// flags that take one of a few words, and a command's words.
func TestBashCompletionCompletes(t *testing.T) {
	script := completionScript(t, "bash")
	for _, tc := range []struct {
		line string // the words typed; the last is being completed
		want string // COMPREPLY
	}{
		{"moebius-js se", "serve send"},
		{"moebius-js c", "check config completion"},
		{"moebius-js app", ""}, // no command: file names (complete -o default)
		{"moebius-js --vers", "--version"},
		{"moebius-js --wor", "--workers"},
		{"moebius-js serve --vers", ""}, // --version is moebius-js's, not serve's
		{"moebius-js send --cu", "--curve-client-key --curve-server-key"},
		{"moebius-js bench --cl", "--clients"},
		{"moebius-js config --js", "--json"},
		{"moebius-js serve --curve-k", "--curve-key"},
		{"moebius-js --log-level ''", "debug info warn error"},
		{"moebius-js serve --log-level w", "warn"},
		{"moebius-js serve --log-format = j", "json"},
		{"moebius-js config --log-format =", "text json"},
		{"moebius-js serve --watch ap", ""},
		{"moebius-js completion ''", "bash zsh fish"},
		{"moebius-js help co", "config completion"},
		{"moebius-js send -c ''", ""}, // a flag's value: file names
	} {
		out := runShell(t, "bash", "-c", `source "$1"; eval "COMP_WORDS=($2)"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _moebius_js; echo "${COMPREPLY[*]}"`, "bash", script, tc.line)
		if got := strings.TrimSpace(out); got != tc.want {
			t.Errorf("%s<TAB>: %q, want %q", tc.line, got, tc.want)
		}
	}
}

// The zsh script hands _arguments the flags of the command being
// completed (the completion functions are stubs that print their
// arguments).
func TestZshCompletionOffersTheCommandsFlags(t *testing.T) {
	script := completionScript(t, "zsh")
	for _, tc := range []struct {
		words        string
		want, absent []string
	}{
		{"moebius-js se", []string{"describe", "serve:serve handlers.js", "files"}, nil},
		{"moebius-js send --cu", []string{"--curve-server-key=[", "-c+["}, []string{"--workers"}},
		{"moebius-js --wo", []string{"--workers=[", "--version[", "*--bind=["}, []string{"--curve-server-key"}},
		{"moebius-js serve --log-level ''", []string{":log-level:(debug info warn error)"}, []string{"--version"}},
		{"moebius-js completion ''", []string{"1:completion:(bash zsh fish)"}, nil},
	} {
		out := runShell(t, "zsh", "-c", `compdef() { :; }
_arguments() { print -l -- "$@"; }
_describe() { print describe; print -l -- "${(@P)4}"; }
_files() { print files; }
source "$1"
eval "words=($2)"
CURRENT=${#words}
_moebius_js`, "zsh", script, tc.words)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s<TAB>: no %q in:\n%s", tc.words, w, out)
			}
		}
		for _, n := range tc.absent {
			if strings.Contains(out, n) {
				t.Errorf("%s<TAB>: %q in:\n%s", tc.words, n, out)
			}
		}
	}
}

func TestFishCompletionCompletes(t *testing.T) {
	script := completionScript(t, "fish")
	for _, tc := range []struct{ line, want string }{
		{"moebius-js se", "send serve"},
		{"moebius-js send --cu", "--curve-client-key --curve-server-key"},
		{"moebius-js --wor", "--workers"},
		{"moebius-js serve --log-level ", "debug error info warn"},
		{"moebius-js completion ", "bash fish zsh"},
	} {
		out := runShell(t, "fish", "-c", `source $argv[1]; complete -C $argv[2] | string replace -r '\t.*' ''; true`, script, tc.line)
		if got := strings.Join(strings.Fields(out), " "); got != tc.want {
			t.Errorf("%s<TAB>: %q, want %q", tc.line, got, tc.want)
		}
	}
}

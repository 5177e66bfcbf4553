package tests

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The command line as a person meets it: --version, help on the right
// stream and once, usage errors, the config command, shell completion, the
// startup line, and send's errors.

func TestCLIVersionFlagsAndCommandPrintTheSameLine(t *testing.T) {
	want, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(want, "moebius-js ") || strings.Count(want, "\n") != 1 {
		t.Fatalf("version: exit %d, %q", code, want)
	}
	for _, flag := range []string{"--version", "-v"} {
		out, errOut, code := runCLI(t, flag)
		if code != 0 || out != want || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", flag, code, out, errOut, want)
		}
	}
}

// Help goes to stdout, once, and exits 0: the command list names every
// command once; a command's help lists each of its flags once, with its
// type.
func TestCLIHelpIsPrintedOnceOnStdout(t *testing.T) {
	var commands []string
	for _, c := range []string{"[serve]", "send", "bench", "check", "config", "keygen", "completion", "version", "help"} {
		commands = append(commands, "moebius-js "+c+" ")
	}
	for _, tc := range []struct {
		args []string
		once []string // each exactly once on stdout
	}{
		{[]string{"--help"}, commands},
		{[]string{"-h"}, commands},
		{[]string{"help"}, commands},
		{[]string{"serve", "--help"}, []string{"--curve-key string", "--workers int", "--max-message-size int", "--step-budget duration", "--bind stringArray", "--watch[=true|false]", "--help"}},
		{[]string{"--watch=false", "--help"}, []string{"usage: moebius-js serve", "--workers int"}}, // flags first: serve's help
		{[]string{"check", "-h"}, []string{"usage: moebius-js check", "--config string", "--help"}},
		{[]string{"send", "--help"}, []string{"--connect string", "--timeout duration", "--curve-server-key string"}},
		{[]string{"config", "--help"}, []string{"--json", "--queue-limit int"}},
		{[]string{"help", "keygen"}, []string{"usage: moebius-js keygen PATH"}},
	} {
		out, errOut, code := runCLI(t, tc.args...)
		if code != 0 || errOut != "" {
			t.Errorf("%q: exit %d, stderr %q", tc.args, code, errOut)
			continue
		}
		for _, s := range tc.once {
			if n := strings.Count(out, s); n != 1 {
				t.Errorf("%q: %q printed %d times:\n%s", tc.args, s, n, out)
			}
		}
	}
}

func TestCLIUsageErrorsPrintTheMessageAndAHintOnStderrAndExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--wrokers", "2"}, []string{"unknown flag: --wrokers", "moebius-js serve --help"}},
		{[]string{"--step-budget", "2", "app.js"}, []string{"--step-budget", "no unit", `"2s"`, "moebius-js serve --help"}},
		{[]string{"sned", "x"}, []string{`unknown command "sned"`, `did you mean "send"?`, "moebius-js --help"}},
		{[]string{"send"}, []string{"give the message", "moebius-js send --help"}},
		{[]string{"completion", "tcsh"}, []string{"bash, zsh, fish"}},
	} {
		out, errOut, code := runCLI(t, tc.args...)
		if code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q", tc.args, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q: stderr %q does not contain %q", tc.args, errOut, w)
			}
		}
	}
}

// config prints every setting with where it came from, and never a
// secret key.
func TestCLIConfigSaysWhereEachValueCameFrom(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "prod.yaml")
	if err := os.WriteFile(file, []byte("workers: 2\nread_timeout: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	t.Setenv("MOEBIUS_QUEUE_LIMIT", "8")
	t.Setenv("MOEBIUS_CURVE_KEY", secret)
	args := []string{"config", "--config", file, "--log-level", "debug", "--bind", "tcp://127.0.0.1:7001", "app.js"}

	out, errOut, code := runCLI(t, args...)
	if code != 0 || errOut != "" || strings.Contains(out, secret) {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	for _, line := range []string{
		`workers +2 +file ` + regexp.QuoteMeta(file),
		`read_timeout +1m0s +file ` + regexp.QuoteMeta(file),
		`queue_limit +8 +env MOEBIUS_QUEUE_LIMIT`,
		`curve_key +\(set\) +env MOEBIUS_CURVE_KEY`,
		`log_level +debug +flag --log-level`,
		`bind +tcp://127.0.0.1:7001 +flag --bind`,
		`handlers +app.js +argument`,
		`step_budget +1s +default`,
	} {
		if !regexp.MustCompile(`(?m)^` + line + `$`).MatchString(out) {
			t.Errorf("no line matching %q in:\n%s", line, out)
		}
	}

	out, _, code = runCLI(t, append([]string{"config", "--json"}, args[1:]...)...)
	var got map[string]struct {
		Value  any    `json:"value"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if e := got["read_timeout"]; e.Value != "1m0s" || e.Source != "file "+file {
		t.Errorf("read_timeout: %+v", e)
	}
	if e := got["queue_limit"]; e.Value != float64(8) || e.Source != "env MOEBIUS_QUEUE_LIMIT" {
		t.Errorf("queue_limit: %+v", e)
	}
	if strings.Contains(out, secret) {
		t.Errorf("--json printed the secret key:\n%s", out)
	}
}

func TestCLIBashCompletionParsesAndCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	out, _, code := runCLI(t, "completion", "bash")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	script := filepath.Join(t.TempDir(), "moebius-js.bash")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, msg)
	}
	for _, tc := range []struct{ line, want string }{
		{"moebius-js co", "config completion"},
		{"moebius-js serve --curve-k", "--curve-key"},
		{"moebius-js send --curve-s", "--curve-server-key"},
	} {
		got, err := exec.Command(bash, "-c", `source "$1"; COMP_WORDS=($2); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _moebius_js; echo "${COMPREPLY[*]}"`,
			"bash", script, tc.line).CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != tc.want {
			t.Errorf("%s<TAB>: %q (%v), want %q", tc.line, got, err, tc.want)
		}
	}
}

// serve logs one line as it starts with its version and the settings in
// force that differ from the defaults.
func TestCLIServeLogsAStartupLine(t *testing.T) {
	srv := startServer(t, "../handlers.js", "--workers", "2", "--queue-limit", "9", "--step-budget", "1500ms")
	line := srv.logs.waitFor(t, regexp.MustCompile(`msg="moebius-js starting".*`), 10*time.Second)[0]
	for _, want := range []string{"version=", "go=go1.", "handlers=../handlers.js", "workers=2", "bind=[tcp://127.0.0.1:0]", "curve=off", "admin=off",
		"queue_limit=9", "step_budget=1.5s", "watch=false", "log_level=debug"} {
		if !strings.Contains(line, want) {
			t.Errorf("startup line %q does not contain %q", line, want)
		}
	}
}

// freeAddr is a tcp endpoint nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr is a tcp endpoint that accepts connections and says nothing.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "tcp://" + ln.Addr().String()
}

// sendHandlers answer, say nothing, or say goodbye and close the client.
const sendHandlers = `module.exports = { rules: [
  { command: 'echo', handler: (c, d) => c.send(d) },
  { command: 'quiet', handler: function* () {} },
  { command: 'bye', handler: (c) => { c.send('bye'); c.close(); } },
] };`

// When send fails, it says what happened and what to check, on stderr.
func TestCLISendSaysWhatWentWrongAndWhatToCheck(t *testing.T) {
	handlers := writeHandlers(t, sendHandlers)
	plain := startServer(t, handlers)
	keys := t.TempDir()
	serverKey := runKeygen(t, filepath.Join(keys, "server"))
	otherKey := runKeygen(t, filepath.Join(keys, "other"))
	runKeygen(t, filepath.Join(keys, "client"))
	curveSrv := startServer(t, handlers, "--curve-key", filepath.Join(keys, "server_secret"), "--curve-allow-keys", otherKey)
	admin := startServer(t, handlers, "--admin", "127.0.0.1:0")
	adminAddr := "tcp://" + strings.TrimSuffix(strings.TrimPrefix(admin.admin, "http://"), "/")
	down := freeAddr(t)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"it works", []string{"-c", plain.addr, `{"command":"echo"}`}, 0, "{\"command\":\"echo\"}\n", nil},
		{"the server is down", []string{"-c", down, "x"}, 1, "",
			[]string{"cannot connect to " + down, "nothing is listening there", "Is the server running"}},
		{"the address is malformed", []string{"-c", "localhost:5555", "x"}, 2, "",
			[]string{"--connect", `"localhost:5555"`, "tcp://host:port", "moebius-js send --help"}},
		{"no socket file", []string{"-c", "ipc://" + filepath.Join(keys, "nothing.sock"), "x"}, 1, "",
			[]string{"no such socket file", "Is the server running"}},
		{"no reply comes", []string{"-c", plain.addr, "-t", "300ms", `{"command":"quiet"}`}, 1, "",
			[]string{"no reply from " + plain.addr + " within 300ms (0 of 1 received)", "handlers.js", "--timeout"}},
		{"the server closes the connection", []string{"-c", plain.addr, "-n", "2", `{"command":"bye"}`}, 1, "bye\n",
			[]string{"the server at " + plain.addr + " closed the connection after 1 of 2 replies", "server's log says why"}},
		{"the server closes the connection after the replies wanted", []string{"-c", plain.addr, "-n", "0", "-t", "10s", `{"command":"bye"}`}, 0, "bye\n", nil},
		{"a NULL client at a CURVE endpoint", []string{"-c", curveSrv.addr, "x"}, 1, "",
			[]string{"refused the ZeroMQ handshake", "the server speaks CURVE, this client NULL", "give the server's public key with --curve-server-key"}},
		{"a wrong server key", []string{"-c", curveSrv.addr, "--curve-server-key", otherKey, "x"}, 1, "",
			[]string{"refused the ZeroMQ handshake", "is the server key right?", "--curve-server-key"}},
		{"a client key not allowed", []string{"-c", curveSrv.addr, "--curve-server-key", serverKey, "--curve-client-key", filepath.Join(keys, "client_secret"), "x"}, 1, "",
			[]string{"refused the ZeroMQ handshake", "curve_allow", "authorize"}},
		{"CURVE at a NULL endpoint", []string{"-c", plain.addr, "--curve-server-key", serverKey, "x"}, 1, "",
			[]string{"refused the ZeroMQ handshake", "the server speaks NULL, this client CURVE", "drop --curve-server-key"}},
		{"the admin HTTP port", []string{"-c", adminAddr, "-t", "500ms", "x"}, 1, "",
			[]string{"no ZeroMQ handshake completed within 500ms", "admin HTTP port"}},
		{"a peer that says nothing", []string{"-c", silentAddr(t), "-t", "300ms", "x"}, 1, "",
			[]string{"no ZeroMQ handshake completed within 300ms", "is it a ZeroMQ endpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"send"}, tc.args...)...)
			if code != tc.code || out != tc.stdout {
				t.Fatalf("exit %d (want %d), stdout %q (want %q), stderr %q", code, tc.code, out, tc.stdout, errOut)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not contain %q", errOut, w)
				}
			}
			if tc.code != 0 && strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
				t.Errorf("more than the message and a hint on stderr:\n%s", errOut)
			}
		})
	}
}

package tests

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// whoamiHandlers answer with the key the client proved (null on NULL).
const whoamiHandlers = `
module.exports = { rules: [{ command: 'who', handler: (c) => c.send({ key: c.publicKey }) }] };`

// curveListening is the log line of a CURVE endpoint bound.
var curveListening = regexp.MustCompile(`msg=listening endpoint=(tcp://\S+) mechanism=CURVE`)

// send and bench are CURVE clients: with the client's secret certificate
// the server sees that key; without one, a fresh pair each run.
func TestSendAndBenchSpeakCURVE(t *testing.T) {
	dir := t.TempDir()
	runKeygen(t, filepath.Join(dir, "server"))
	clientKey := runKeygen(t, filepath.Join(dir, "client"))
	srv := startServer(t, writeHandlers(t, whoamiHandlers), "--curve-key", filepath.Join(dir, "server_secret"))
	server := filepath.Join(dir, "server") // a public certificate names the server key

	out, errOut, code := runCLI(t, "send", "-c", srv.addr, "--curve-server-key", server,
		"--curve-client-key", filepath.Join(dir, "client_secret"), `{"command":"who"}`)
	if code != 0 || strings.TrimSpace(out) != `{"key":"`+clientKey+`"}` {
		t.Fatalf("send with the client's key: exit %d, %q %s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "send", "-c", srv.addr, "--curve-server-key", server, `{"command":"who"}`)
	var reply struct{ Key *string }
	if code != 0 || json.Unmarshal([]byte(out), &reply) != nil || reply.Key == nil || *reply.Key == clientKey {
		t.Fatalf("send with a fresh pair: exit %d, %q %s", code, out, errOut)
	}

	out, errOut, code = runCLI(t, "bench", "-c", srv.addr, "--curve-server-key", server,
		"--curve-client-key", filepath.Join(dir, "client_secret"), "-n", "2", "-w", "0s", "-d", "500ms",
		"-m", `{"command":"who"}`, "--expect", `{"key":"`+clientKey+`"}`, "--json")
	var res struct {
		Replies, Errors, Timeouts int
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Replies == 0 || res.Errors != 0 || res.Timeouts != 0 {
		t.Fatalf("bench over CURVE: exit %d, %s %s", code, out, errOut)
	}
}

// curve_bind adds CURVE endpoints beside the NULL bind ones: each speaks
// its own mechanism and refuses the other.
func TestCurveBindSpeaksCURVEBesideANullBind(t *testing.T) {
	dir := t.TempDir()
	runKeygen(t, filepath.Join(dir, "server"))
	srv := startServer(t, writeHandlers(t, whoamiHandlers), "--curve-key", filepath.Join(dir, "server_secret"),
		"--curve-bind", "tcp://127.0.0.1:0")
	curveAddr := srv.logs.waitFor(t, curveListening, 10*time.Second)[1]
	server := filepath.Join(dir, "server")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"NULL at bind", []string{"-c", srv.addr}, 0, `{"key":null}`},
		{"CURVE at curve_bind", []string{"-c", curveAddr, "--curve-server-key", server}, 0, `{"key":"`},
		{"NULL at curve_bind", []string{"-c", curveAddr, "-t", "2s"}, 1, ""},
		{"CURVE at bind", []string{"-c", srv.addr, "--curve-server-key", server, "-t", "2s"}, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append(append([]string{"send"}, tc.args...), `{"command":"who"}`)...)
			if code != tc.code || !strings.HasPrefix(strings.TrimSpace(out), tc.want) {
				t.Fatalf("exit %d (want %d), stdout %q (want %q...), stderr %s", code, tc.code, out, tc.want, errOut)
			}
		})
	}
}

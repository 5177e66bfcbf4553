package tests

// HAProxy in front of two instances, configured by examples/haproxy.cfg
// itself (only its addresses, paths and check intervals are rewritten), with
// Lazy Pirate clients (interop/lazy_pirate.py) going through it while one
// instance is drained.

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// haproxyExample is the configuration the tests run.
const haproxyExample = "../examples/haproxy.cfg"

// haproxyBin is Debian's haproxy (in /usr/sbin, which a user's PATH may
// lack), else the one on PATH; the test skips without one unless
// REQUIRE_INTEROP=1.
func haproxyBin(t *testing.T) string {
	t.Helper()
	const debian = "/usr/sbin/haproxy"
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	return requireTool(t, "haproxy")
}

func TestHAProxyExampleConfigIsValid(t *testing.T) {
	out, err := exec.Command(haproxyBin(t), "-c", "-f", haproxyExample).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c -f %s: %v\n%s", haproxyExample, err, out)
	}
}

// haproxyInstance replies who served the request, after sleeping data.ms so
// that a drain finds requests in flight.
const haproxyInstance = `
const { sleep } = require('moebius');
const NAME = %q;
function* whoami(client, data) {
  if (data.ms) yield sleep(data.ms);
  client.send({ instance: NAME, seq: data.seq });
}
module.exports = { rules: [{ command: 'whoami', handler: whoami }] };
`

// haproxyBackend is one server line of the test's configuration.
type haproxyBackend struct {
	name string // the server's name in HAProxy and the instance's NAME
	addr string // host:port of its ZeroMQ endpoint
}

// haproxyConfig is examples/haproxy.cfg for this machine: it listens on
// listen, checks /readyz on adminPort, balances over backends, logs to
// stderr, has its stats socket at socket, and checks every 250ms instead of
// every 2s. Every rewrite must find its line, so the test fails when the
// example changes shape instead of testing something else.
func haproxyConfig(t *testing.T, listen string, adminPort int, socket string, backends []haproxyBackend) string {
	t.Helper()
	raw, err := os.ReadFile(haproxyExample)
	if err != nil {
		t.Fatal(err)
	}
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "    server %s %s check\n", b.name, b.addr)
	}
	cfg := string(raw)
	for _, r := range []struct{ what, pattern, replace string }{
		{"the frontend's bind", `(?m)^([ \t]+bind )\S+$`, "${1}" + listen},
		{"the admin port of the check", `(?m)^([ \t]+tcp-check connect port )9100( .*)?$`, fmt.Sprintf("${1}%d${2}", adminPort)},
		{"the stats socket", `(?m)^([ \t]+stats socket )\S+`, "${1}" + socket},
		{"the log target", `(?m)^([ \t]+log )/dev/log( .*)$`, "${1}stderr format raw${2}"},
		{"the check intervals", `(?m)^([ \t]+default-server .*)inter 2s fastinter 500ms`, "${1}inter 250ms fastinter 100ms"},
		{"the server lines", `(?m)(^[ \t]+server \S+ \S+ check\n)+`, servers.String()},
	} {
		re := regexp.MustCompile(r.pattern)
		if n := len(re.FindAllStringIndex(cfg, -1)); n != 1 {
			t.Fatalf("%s: %d matches of %s for %s, want 1 (did its shape change?)", haproxyExample, n, r.pattern, r.what)
		}
		cfg = re.ReplaceAllString(cfg, r.replace)
	}
	return cfg
}

// haproxy is a running haproxy.
type haproxy struct {
	t      *testing.T
	cmd    *exec.Cmd
	socket string
	logs   *logBuffer
}

// startHAProxy runs haproxy in the foreground with cfg; its stats socket
// must be at socket.
func startHAProxy(t *testing.T, cfg, socket string) *haproxy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &haproxy{t: t, cmd: exec.Command(haproxyBin(t), "-db", "-f", path), socket: socket, logs: &logBuffer{}}
	h.logs.cond = sync.NewCond(&h.logs.mu)
	h.cmd.Stdout = io.Discard
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			h.logs.mu.Lock()
			h.logs.b.WriteString(line)
			h.logs.eof = err != nil
			h.logs.cond.Broadcast()
			h.logs.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = h.cmd.Process.Kill()
			<-done
		}
		_ = h.cmd.Wait()
		if t.Failed() {
			// Its own lines, without the one per connection.
			var own []string
			for _, l := range strings.Split(h.logs.String(), "\n") {
				if !strings.Contains(l, " zeromq moebius/") {
					own = append(own, l)
				}
			}
			t.Logf("haproxy's log (but its connections):\n%s", strings.Join(own, "\n"))
		}
	})
	return h
}

// servers reads `show stat` from the stats socket: for each server of
// the backend, its status (UP, DOWN, ...) and the last check's status.
func (h *haproxy) servers() (map[string][2]string, error) {
	c, err := net.DialTimeout("unix", h.socket, time.Second)
	if err != nil {
		return nil, fmt.Errorf("stats socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return nil, fmt.Errorf("show stat: %w", err)
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		return nil, fmt.Errorf("show stat: %w", err)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(raw), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("show stat answered %q: %v", raw, err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	out := map[string][2]string{}
	for _, row := range rows[1:] {
		if len(row) < len(rows[0]) || row[col["pxname"]] != "moebius" || row[col["svname"]] == "BACKEND" {
			continue
		}
		out[row[col["svname"]]] = [2]string{row[col["status"]], row[col["check_status"]]}
	}
	return out, nil
}

// pirateLine is any line lazy_pirate.py prints.
type pirateLine struct {
	Event   string            `json:"event"`
	Clients map[string]string `json:"clients"`
	Client  int               `json:"client"`
	From    string            `json:"from"`
	To      string            `json:"to"`
	Seq     int               `json:"seq"`
	Reason  string            `json:"reason"`
	pirateCounts
	Last   string        `json:"last"`
	Totals *pirateCounts `json:"totals"`
}

// pirateCounts are a client's counts, or the totals; Servers counts the
// replies by instance (in the served event, the first replies).
type pirateCounts struct {
	Servers  map[string]int `json:"servers"`
	Sent     int            `json:"sent"`
	Replies  int            `json:"replies"`
	Retries  int            `json:"retries"`
	Failures int            `json:"failures"`
}

// pirates is a running lazy_pirate.py.
type pirates struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan pirateLine
	stderr *strings.Builder
}

// startPirates runs lazy_pirate.py against endpoint until its stdin closes.
func startPirates(t *testing.T, endpoint string, args ...string) *pirates {
	t.Helper()
	script, err := filepath.Abs("interop/lazy_pirate.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, interopPython, append([]string{"-E", script, endpoint, "--until-eof"}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	p := &pirates{cmd: cmd, lines: make(chan pirateLine, 1000), stderr: &strings.Builder{}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l pirateLine
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l); err != nil {
				l = pirateLine{Event: "unreadable", Reason: fmt.Sprintf("%s: %v", sc.Text(), err)}
			}
			p.lines <- l
		}
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		cancel()
		_ = cmd.Wait()
	})
	return p
}

// next waits for the next line, failing the test at the timeout or when
// the script ends.
func (p *pirates) next(t *testing.T, timeout time.Duration) pirateLine {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("lazy_pirate.py ended early: %v\nstderr:\n%s", p.cmd.Wait(), p.stderr)
		}
		if l.Event == "unreadable" {
			t.Fatalf("lazy_pirate.py printed %s", l.Reason)
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("lazy_pirate.py printed nothing for %v\nstderr:\n%s", timeout, p.stderr)
	}
	return pirateLine{}
}

// waitExit waits for a server sent SIGTERM to exit on its own, and checks
// that it exited 0 without a data race.
func waitExit(t *testing.T, s *server, timeout time.Duration) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatalf("server did not exit within %v of SIGTERM; log:\n%s", timeout, s.logs.String())
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("server exited with %v; log:\n%s", err, s.logs.String())
	}
	if strings.Contains(s.logs.String(), "DATA RACE") {
		t.Fatalf("the server reported a data race:\n%s", s.logs.String())
	}
}

// notOnB counts the clients last answered by another instance than B.
func notOnB(on map[string]string) int {
	n := 0
	for _, s := range on {
		if s != "B" {
			n++
		}
	}
	return n
}

// readyzStatus is the status code of an instance's /readyz, or 0 when it
// does not answer.
func readyzStatus(s *server) int {
	resp, err := http.Get(s.admin + "readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// 50 Lazy Pirate clients go through HAProxy to two instances, A and B; A
// is sent SIGTERM while they keep sending. With a lame duck period, A's
// /readyz fails first, HAProxy marks A DOWN on that check while A still
// serves, cuts A's tunnels, and A's clients reconnect to B: no request
// fails. Without one, A drains at once and the requests that reach it
// meanwhile get shutting_down (so this test fails if the lame duck does
// nothing; so does the example without on-marked-down shutdown-sessions,
// which leaves A's clients on A until it drains: both checked by hand).
// HAProxy reaches both instances' admin endpoints on one port,
// as in the example, so each instance has a loopback address of its own
// (127.0.0.2 and 127.0.0.3, which Linux routes to lo).
func TestHAProxyDrainsAnInstanceWithoutAFailedRequest(t *testing.T) {
	requireInterop(t)
	haproxyBin(t)
	const clients = 50
	for _, tc := range []struct {
		name     string
		lameDuck string
		// failures: requests are expected to fail, all with shutting_down
		failures bool
	}{
		{"a lame duck outlasting the checks loses no request", "2s", false},
		{"without a lame duck requests during the drain fail", "0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := func(name, host, adminPort string) *server {
				return startServer(t, writeHandlers(t, fmt.Sprintf(haproxyInstance, name)),
					"--bind", "tcp://"+host+":0", "--admin", host+":"+adminPort,
					"--lame-duck", tc.lameDuck, "--shutdown-grace", "5s")
			}
			a := start("A", "127.0.0.2", "0")
			_, adminPort, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(a.admin, "http://"), "/"))
			if err != nil {
				t.Fatalf("admin URL %q: %v", a.admin, err)
			}
			b := start("B", "127.0.0.3", adminPort)

			// A socket path short enough for sun_path, which a test's
			// TempDir may not be.
			dir, err := os.MkdirTemp("", "hap")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			socket := filepath.Join(dir, "stats.sock")
			listen := strings.TrimPrefix(freeAddr(t), "tcp://")
			port, err := strconv.Atoi(adminPort)
			if err != nil {
				t.Fatal(err)
			}
			h := startHAProxy(t, haproxyConfig(t, listen, port, socket, []haproxyBackend{
				{"A", strings.TrimPrefix(a.addr, "tcp://")},
				{"B", strings.TrimPrefix(b.addr, "tcp://")},
			}), socket)
			// No event says a check passed: ask until both are UP on a
			// check of their own.
			eventually(t, 10*time.Second, "haproxy to see A and B UP", func() bool {
				s, err := h.servers()
				return err == nil && s["A"] == [2]string{"UP", "L7OK"} && s["B"] == [2]string{"UP", "L7OK"}
			})

			p := startPirates(t, "tcp://"+listen, "--clients", fmt.Sprint(clients),
				"--fields", `{"ms": 100}`, "--interval-ms", "10", "--timeout-ms", "1000", "--retries", "3",
				"--heartbeat-ms", "1000")
			served := p.next(t, 30*time.Second)
			if served.Event != "served" {
				t.Fatalf("first line %+v, want the served event", served)
			}
			if served.Servers["A"] < clients/4 || served.Servers["B"] < clients/4 {
				t.Fatalf("first replies came from %v: not spread over A and B", served.Servers)
			}
			on := served.Clients // who last answered each client

			if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if !tc.failures {
				eventually(t, 2*time.Second, "A's /readyz to turn 503", func() bool { return readyzStatus(a) == http.StatusServiceUnavailable })
				down := h.logs.waitFor(t, regexp.MustCompile(`Server moebius/A is DOWN, reason: [^,]*, info: "([^"]*)"`), 10*time.Second)
				if !strings.Contains(down[1], "/readyz did not answer 200") {
					t.Errorf("HAProxy marked A DOWN for %q, want the /readyz check", down[1])
				}
				if strings.Contains(a.logs.String(), `msg="draining`) {
					t.Errorf("A began to drain before HAProxy marked it DOWN; A's log:\n%s", a.logs.String())
				}
			}
			waitExit(t, a, 20*time.Second)

			// A's clients are served by B from now on.
			var failed []pirateLine
			for notOnB(on) > 0 {
				switch l := p.next(t, 30*time.Second); l.Event {
				case "moved":
					on[strconv.Itoa(l.Client)] = l.To
				case "failure":
					failed = append(failed, l)
				default:
					t.Fatalf("unexpected line %+v while A's clients move", l)
				}
			}
			p.stdin.Close()
			var totals *pirateCounts
			for totals == nil {
				switch l := p.next(t, 30*time.Second); {
				case l.Event == "failure":
					failed = append(failed, l)
				case l.Event == "moved":
					t.Errorf("client %d moved from %s to %s after A had gone", l.Client, l.From, l.To)
				case l.Totals != nil:
					totals = l.Totals
					if totals.Servers["A"] == 0 || totals.Servers["B"] == 0 {
						t.Errorf("replies by instance %v: not spread over A and B", totals.Servers)
					}
				case l.Last != "B":
					t.Errorf("client %d was last answered by %q, want B", l.Client, l.Last)
				}
			}
			t.Logf("%d requests, %d replies (by instance %v), %d retries, %d failures",
				totals.Sent, totals.Replies, totals.Servers, totals.Retries, totals.Failures)
			if totals.Sent != totals.Replies+totals.Failures || totals.Failures != len(failed) {
				t.Errorf("totals %+v do not add up (%d failure lines)", totals, len(failed))
			}
			switch {
			case !tc.failures && len(failed) > 0:
				t.Errorf("%d requests failed, the first (request %d of client %d) with %s; A's log:\n%s",
					len(failed), failed[0].Seq, failed[0].Client, failed[0].Reason, a.logs.String())
			case tc.failures && len(failed) == 0:
				t.Errorf("no request failed without a lame duck: the test cannot tell whether the lame duck works")
			}
			for _, f := range failed {
				if tc.failures && f.Reason != "shutting_down" {
					t.Errorf("request %d of client %d failed with %s, want shutting_down", f.Seq, f.Client, f.Reason)
				}
			}
			// The greeting probe closes cleanly: B never logged it as a
			// failed handshake above DEBUG (without linger, HAProxy resets
			// the connection, and B logs a failed handshake at INFO).
			if strings.Contains(b.logs.String(), `level=INFO msg="handshake failed"`) {
				t.Errorf("B logged a health check as a failed handshake:\n%s", b.logs.String())
			}
		})
	}
}

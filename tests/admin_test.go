package tests

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// adminHandlers park, answer at once, or sleep a little, so that clients
// can be seen in every state.
const adminHandlers = `
const { sleep } = require('moebius');
module.exports = { rules: [
  { command: 'park', handler: function* (c) { c.send('parked'); yield sleep(3600000); } },
  { command: 'quick', handler: (c) => c.send('done') },
]};`

// get fetches an admin path and returns its status code and body.
func (s *server) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.admin + strings.TrimPrefix(path, "/"))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func (s *server) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body := s.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

func TestAdminHealthAndReadinessFollowTheDrain(t *testing.T) {
	srv := startServer(t, writeHandlers(t, adminHandlers), "--admin", "127.0.0.1:0", "--shutdown-grace", "30s")
	if code, body := srv.get(t, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, _ := srv.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz while serving: %d", code)
	}
	// A parked handler holds the drain open.
	c := dial(t, srv.addr, "parker", false)
	if got := c.roundTrip(`{"command":"park"}`); got != "parked" {
		t.Fatalf("got %q", got)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`msg="shutting down"`), 10*time.Second)
	if code, body := srv.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz during the drain: %d %q, want 503", code, body)
	}
	if code, _ := srv.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz during the drain: %d", code)
	}
	// A second signal ends the drain at once, long before its 30 s.
	began := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not exit on a second SIGTERM")
	}
	err := srv.cmd.Wait()
	if err == nil {
		t.Fatal("a drain cut short exited 0")
	}
	t.Logf("exited %v, %v after the second signal", err, time.Since(began).Round(time.Millisecond))
	if !strings.Contains(srv.logs.String(), "second signal") {
		t.Fatalf("no log line for the second signal:\n%s", srv.logs.String())
	}
}

func TestAdminStatusAndClientsShowTheLiveServer(t *testing.T) {
	dir := t.TempDir()
	runKeygen(t, dir+"/server")
	srv := startServer(t, writeHandlers(t, adminHandlers), "--admin", "127.0.0.1:0", "--workers", "2",
		"--curve-bind", "tcp://127.0.0.1:0", "--curve-key", mustReadZ85Secret(t, dir+"/server_secret"))
	idle := dial(t, srv.addr, "idle", false)
	if got := idle.roundTrip(`{"command":"quick"}`); got != "done" {
		t.Fatalf("got %q", got)
	}
	parker := dial(t, srv.addr, "parker", false)
	if got := parker.roundTrip(`{"command":"park"}`); got != "parked" {
		t.Fatalf("got %q", got)
	}
	parker.send(`{"command":"quick"}`)
	parker.send(`{"command":"quick"}`)

	var clients []struct {
		ID, State, Command, Remote string
		Since                      *time.Time
		Queued                     int
		Worker                     int
	}
	// The two queued requests arrive on the server's own time.
	eventually(t, 10*time.Second, "both requests queued", func() bool {
		srv.getJSON(t, "/clients", &clients)
		return len(clients) == 2 && clients[1].Queued == 2
	})
	if len(clients) != 2 {
		t.Fatalf("/clients: %+v", clients)
	}
	i, p := clients[0], clients[1]
	if i.ID != "idle" || i.State != "idle" || i.Command != "" || i.Queued != 0 || !strings.HasPrefix(i.Remote, "127.0.0.1:") {
		t.Errorf("idle client: %+v", i)
	}
	if p.ID != "parker" || p.State != "waiting" || p.Command != "park" || p.Queued != 2 || p.Since == nil {
		t.Errorf("parked client: %+v", p)
	}

	var st struct {
		Version    string
		Ready      bool
		Generation int
		Workers    []struct{ Answered bool }
		Commands   map[string]struct{ Running, Queued int }
		Counts     struct{ Clients int }
		Settings   map[string]any
	}
	srv.getJSON(t, "/status", &st)
	if st.Version == "" || !st.Ready || st.Generation != 1 || len(st.Workers) != 2 || st.Counts.Clients != 2 {
		t.Errorf("/status: %+v", st)
	}
	if c := st.Commands["park"]; c.Running != 1 {
		t.Errorf("/status commands: %+v", st.Commands)
	}
	if c := st.Commands["quick"]; c.Queued != 2 {
		t.Errorf("/status commands: %+v", st.Commands)
	}
	if st.Settings["workers"] != float64(2) || st.Settings["shutdown_grace"] != "5s" || st.Settings["curve_key"] != "(set)" {
		t.Errorf("/status settings: workers %v, shutdown_grace %v, curve_key %v", st.Settings["workers"], st.Settings["shutdown_grace"], st.Settings["curve_key"])
	}
	if _, body := srv.get(t, "/status"); strings.Contains(body, mustReadZ85Secret(t, dir+"/server_secret")) {
		t.Error("/status shows the server's secret key")
	}
}

func TestAdminMetricsCountRequestsByCommand(t *testing.T) {
	srv := startServer(t, writeHandlers(t, adminHandlers), "--admin", "127.0.0.1:0")
	c := dial(t, srv.addr, "c", false)
	const n = 7
	for range n {
		if got := c.roundTrip(`{"command":"quick"}`); got != "done" {
			t.Fatalf("got %q", got)
		}
	}
	c.roundTrip(`{"command":"nope"}`)
	if got := srv.metricLabelled("moebius_request_duration_seconds_count", `command="quick"`); got != n {
		t.Errorf("quick requests counted: %v, want %d", got, n)
	}
	if got := srv.metricLabelled("moebius_request_duration_seconds_count", `command="(refused)"`); got != 1 {
		t.Errorf("refused requests counted: %v, want 1", got)
	}
	_, body := srv.get(t, "/metrics")
	if !regexp.MustCompile(`(?m)^moebius_build_info\{goversion="go[^"]+",version="[^"]+"\} 1$`).MatchString(body) {
		t.Errorf("no moebius_build_info in /metrics")
	}
}

func TestABadAdminAddressStopsTheStartBeforeAnythingListens(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, flag := range []string{"--admin", "--metrics"} {
		_, errOut, code := runCLI(t, "serve", "--watch=false", "--bind", "tcp://127.0.0.1:0", flag, taken.Addr().String(),
			writeHandlers(t, adminHandlers))
		if code != 1 || !strings.Contains(errOut, "admin listen") {
			t.Errorf("%s on a taken address: exit %d, stderr:\n%s", flag, code, errOut)
		}
		if strings.Contains(errOut, "msg=listening") || strings.Contains(errOut, "handlers loaded") {
			t.Errorf("%s on a taken address: the server got as far as listening or loading:\n%s", flag, errOut)
		}
	}
}

// adminListening is the log line of the admin listener bound, before the
// server runs (adminURL's is once it runs).
var adminListening = regexp.MustCompile(`msg="admin listening" url=(\S+)`)

// mustReadZ85Secret reads the Z85 secret key of a secret certificate.
func mustReadZ85Secret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`secret-key = "(.{40})"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no secret-key in %s", path)
	}
	return string(m[1])
}

func TestAdminSaysNotReadyWhileHandlersLoad(t *testing.T) {
	handlers := writeHandlers(t, `
const end = Date.now() + 1500; while (Date.now() < end) {} // a slow top level
module.exports = { rules: [{ command: 'quick', handler: (c) => c.send('done') }] };`)
	cmd := exec.Command(moebiusBin, "serve", "--watch=false", "--bind", "tcp://127.0.0.1:0", "--admin", "127.0.0.1:0", handlers)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stderr)
	var url string
	for url == "" && lines.Scan() {
		if m := adminListening.FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
		}
	}
	s := &server{admin: url}
	if code, body := s.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while handlers.js loads: %d %q", code, body)
	}
	if code, body := s.get(t, "/status"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("/status while handlers.js loads: %d %q", code, body)
	}
	if code, _ := s.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz while handlers.js loads: %d", code)
	}
	for lines.Scan() && !listening.MatchString(lines.Text()) {
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	eventually(t, 10*time.Second, "ready once listening", func() bool { code, _ := s.get(t, "/readyz"); return code == 200 })
}

// During a lame duck the server is not ready but serves as usual; a second
// signal ends it at once.
func TestALameDuckServesWhileNotReadyAndASecondSignalEndsIt(t *testing.T) {
	srv := startServer(t, writeHandlers(t, adminHandlers), "--admin", "127.0.0.1:0", "--lame-duck", "60s")
	c := dial(t, srv.addr, "c", false)
	if got := c.roundTrip(`{"command":"quick"}`); got != "done" {
		t.Fatalf("got %q", got)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	srv.logs.waitFor(t, regexp.MustCompile(`msg="lame duck: /readyz says 503`), 10*time.Second)
	if code, _ := srv.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz in the lame duck: %d, want 503", code)
	}
	if got := c.roundTrip(`{"command":"quick"}`); got != "done" {
		t.Fatalf("a request in the lame duck got %q, want it served as usual", got)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGTERM did not end the lame duck")
	}
	if err := srv.cmd.Wait(); err == nil {
		t.Fatal("a lame duck cut short exited 0")
	}
}

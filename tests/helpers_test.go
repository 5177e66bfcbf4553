package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/moebius-js/moebius-js/internal/waitfor"
)

// server is a running moebius-js process.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string // the bound tcp endpoint
	admin   string // the admin listener's URL (ending in /), when started with --admin or --metrics
	metrics string // its /metrics URL
	logs    *logBuffer
	done    chan struct{}
}

// logBuffer collects the server's log and lets tests wait for a line.
type logBuffer struct {
	mu   sync.Mutex
	cond *sync.Cond
	b    strings.Builder
	eof  bool
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count is how many times re matches the log so far.
func (l *logBuffer) count(re *regexp.Regexp) int {
	return len(re.FindAllStringIndex(l.String(), -1))
}

// waitFor returns the first match of re in the log, waiting up to timeout.
func (l *logBuffer) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var m []string
	waitfor.Cond(&l.mu, l.cond, timeout, func() bool {
		m = re.FindStringSubmatch(l.b.String())
		return m != nil || l.eof
	})
	if m == nil {
		t.Fatalf("server log never matched %q:\n%s", re, l.b.String())
	}
	return m
}

var listening = regexp.MustCompile(`msg=listening endpoint=(tcp://\S+)`)

// startServer runs `moebius-js serve` on a free port (unless flags name a
// --bind) with the given handlers file (a path under testdata/ or the repo)
// and extra flags, and waits until it listens. The server is stopped with SIGTERM at cleanup and
// must exit 0.
func startServer(t *testing.T, handlers string, flags ...string) *server {
	t.Helper()
	return startBinary(t, moebiusBin, handlers, flags...)
}

// startPlain is startServer with the binary built without the race
// detector (plainBin).
func startPlain(t *testing.T, handlers string, flags ...string) *server {
	t.Helper()
	bin, err := plainBin()
	if err != nil {
		t.Fatalf("build moebius-js without the race detector: %v", err)
	}
	return startBinary(t, bin, handlers, flags...)
}

func startBinary(t *testing.T, bin, handlers string, flags ...string) *server {
	t.Helper()
	args := []string{"serve", "--watch=false", "--log-level", "debug"}
	if !slices.Contains(flags, "--bind") {
		args = append(args, "--bind", "tcp://127.0.0.1:0")
	}
	args = append(args, flags...)
	args = append(args, handlers)
	cmd := exec.Command(bin, args...)
	// A race-enabled binary sleeps a second at exit unless told not to.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logs: &logBuffer{}, done: make(chan struct{})}
	s.logs.cond = sync.NewCond(&s.logs.mu)
	go func() {
		defer close(s.done)
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			s.logs.mu.Lock()
			s.logs.b.WriteString(line)
			if err != nil {
				s.logs.eof = true
			}
			s.logs.cond.Broadcast()
			s.logs.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(s.stop)
	s.addr = s.logs.waitFor(t, listening, 30*time.Second)[1]
	if slices.Contains(flags, "--metrics") || slices.Contains(flags, "--admin") {
		s.admin = s.logs.waitFor(t, adminURL, 10*time.Second)[1]
		s.metrics = s.admin + "metrics"
	}
	return s
}

var adminURL = regexp.MustCompile(`msg=admin url=(\S+)`)

// metric reads one unlabelled sample from the server's /metrics.
func (s *server) metric(name string) float64 {
	s.t.Helper()
	return s.metricLabelled(name, "")
}

// metricLabelled reads the sample of name with exactly the labels given
// as Prometheus writes them (`code="queue_full"`; "" for none).
func (s *server) metricLabelled(name, labels string) float64 {
	s.t.Helper()
	resp, err := http.Get(s.metrics)
	if err != nil {
		s.t.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read metrics: %v", err)
	}
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				s.t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	s.t.Fatalf("no metric %s{%s} in:\n%s", name, labels, body)
	return 0
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// openFDs counts the server process's open file descriptors.
func (s *server) openFDs() int {
	s.t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatalf("list fds: %v", err)
	}
	return len(entries)
}

// rssBytes is the server process's resident memory.
func (s *server) rssBytes() int64 {
	s.t.Helper()
	n, err := rss(s.cmd.Process.Pid)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// rss reads a process's resident memory from /proc.
func rss(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// alive reports whether the server process is still running.
func (s *server) alive() bool {
	return s.cmd.Process.Signal(syscall.Signal(0)) == nil
}

// eventually polls cond until it holds, failing after timeout. Only for
// states that no event announces (gauges, counts of goroutines).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server with SIGTERM and checks that it exits cleanly.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { <-s.done; waited <- s.cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			s.t.Errorf("server exited with %v; log:\n%s", err, s.logs.String())
		}
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		s.t.Errorf("server did not exit within 15s of SIGTERM; log:\n%s", s.logs.String())
	}
	if strings.Contains(s.logs.String(), "DATA RACE") {
		s.t.Errorf("the server reported a data race:\n%s", s.logs.String())
	}
}

// client is a ZeroMQ DEALER or REQ socket with a receive queue, so tests
// can wait for a reply with a timeout.
type client struct {
	t    *testing.T
	id   string
	sock zmq4.Socket
	in   chan [][]byte
	errs chan error
	sent chan struct{} // REQ only: a zmq4 REQ socket may receive only after a send
}

// dial connects a DEALER (or, with req, a REQ socket) with identity id
// (empty: the server assigns one).
func dial(t *testing.T, addr, id string, req bool) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var opts []zmq4.Option
	if id != "" {
		opts = append(opts, zmq4.WithID(zmq4.SocketIdentity(id)))
	}
	sock := zmq4.NewDealer(ctx, opts...)
	if req {
		sock = zmq4.NewReq(ctx, opts...)
	}
	if err := sock.Dial(addr); err != nil {
		cancel()
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &client{t: t, id: id, sock: sock, in: make(chan [][]byte, 100_000), errs: make(chan error, 1)}
	if req {
		c.sent = make(chan struct{}, 1)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if c.sent != nil {
				select {
				case <-c.sent:
				case <-ctx.Done():
					return
				}
			}
			m, err := sock.Recv()
			if err != nil {
				if !errors.Is(err, context.Canceled) && ctx.Err() == nil {
					c.errs <- err
				}
				return
			}
			c.in <- m.Frames
		}
	}()
	t.Cleanup(func() {
		cancel()
		sock.Close()
		<-done
	})
	return c
}

// send sends one message, each argument a frame.
func (c *client) send(frames ...string) {
	c.t.Helper()
	raw := make([][]byte, len(frames))
	for i, f := range frames {
		raw[i] = []byte(f)
	}
	c.sendBytes(raw...)
}

// zmqMsg builds a message of text frames, for goroutines that cannot use
// client.send (it may fail the test).
func zmqMsg(frames ...string) zmq4.Msg { return zmq4.NewMsgFromString(frames) }

func (c *client) sendBytes(frames ...[]byte) {
	c.t.Helper()
	if err := c.sock.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		c.t.Fatalf("%s: send: %v", c.id, err)
	}
	if c.sent != nil {
		c.sent <- struct{}{}
	}
}

// recv waits for the next message.
func (c *client) recv() [][]byte {
	c.t.Helper()
	select {
	case m := <-c.in:
		return m
	case err := <-c.errs:
		c.t.Fatalf("%s: recv: %v", c.id, err)
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no reply within 10s", c.id)
	}
	return nil
}

// recvText waits for the next message and returns its first frame.
func (c *client) recvText() string {
	c.t.Helper()
	return string(c.recv()[0])
}

// roundTrip sends a one-frame request and returns the first frame of the
// reply.
func (c *client) roundTrip(request string) string {
	c.t.Helper()
	c.send(request)
	return c.recvText()
}

// pending returns how many messages have arrived but not been read.
func (c *client) pending() int { return len(c.in) }

// writeHandlers writes a handlers file into a temp dir and returns its path.
func writeHandlers(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "handlers.js")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCLI runs the binary with args and returns stdout, stderr and the exit
// code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(moebiusBin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

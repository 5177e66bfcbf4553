//go:build linux

package sdnotify

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests play systemd: a unix datagram socket bound where
// NOTIFY_SOCKET points, reading what arrives and, as systemd does with
// NotifyAccess=main, which process sent it (SO_PASSCRED).

// receiveTimeout bounds each wait for a datagram that must come.
const receiveTimeout = 5 * time.Second

// manager is a fake service manager's notification socket.
type manager struct {
	t    *testing.T
	addr string
	c    *net.UnixConn
}

// listen binds a notification socket at addr (a path, or '@' and an
// abstract name) that records its senders' credentials.
func listen(t *testing.T, addr string) *manager {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	return &manager{t: t, addr: addr, c: c}
}

// pathSocket is a manager on a socket file in a fresh directory.
func pathSocket(t *testing.T) *manager {
	return listen(t, filepath.Join(t.TempDir(), "notify"))
}

var abstractSeq atomic.Int64

// abstractSocket is a manager on an abstract socket name, unique to this
// process and test.
func abstractSocket(t *testing.T) *manager {
	return listen(t, fmt.Sprintf("@moebius-js/sdnotify-test/%d/%d", os.Getpid(), abstractSeq.Add(1)))
}

// next returns the next datagram, failing unless it comes within
// receiveTimeout from this very process.
func (m *manager) next() string {
	m.t.Helper()
	if err := m.c.SetReadDeadline(time.Now().Add(receiveTimeout)); err != nil {
		m.t.Fatal(err)
	}
	buf, oob := make([]byte, 4096), make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	n, oobn, _, _, err := m.c.ReadMsgUnix(buf, oob)
	if err != nil {
		m.t.Fatalf("no notification arrived: %v", err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		m.t.Fatalf("no credentials with the datagram (%d messages, %v)", len(msgs), err)
	}
	cred, err := syscall.ParseUnixCredentials(&msgs[0])
	if err != nil {
		m.t.Fatal(err)
	}
	if int(cred.Pid) != os.Getpid() {
		m.t.Fatalf("datagram sent by pid %d, want this process (%d): systemd would ignore it", cred.Pid, os.Getpid())
	}
	return string(buf[:n])
}

// empty fails if a datagram is waiting; it does not wait.
func (m *manager) empty() {
	m.t.Helper()
	rc, err := m.c.SyscallConn()
	if err != nil {
		m.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		m.t.Fatal(err)
	}
	if !errors.Is(rerr, syscall.EAGAIN) {
		m.t.Fatalf("an unexpected notification is waiting: %q (err %v)", buf[:max(n, 0)], rerr)
	}
}

func TestWithoutNotifySocketEveryCallDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New()
	if n != nil || n.Enabled() {
		t.Fatalf("New() = %+v without NOTIFY_SOCKET, want nil", n)
	}
	for name, call := range map[string]func() error{
		"Ready":    func() error { return n.Ready("serving") },
		"Stopping": func() error { return n.Stopping("draining") },
		"Status":   func() error { return n.Status("x") },
		"Watchdog": n.Watchdog,
	} {
		if err := call(); err != nil {
			t.Errorf("%s on a nil Notifier: %v", name, err)
		}
	}
	var calls atomic.Int64
	stop := n.StartWatchdog(time.Second, func() bool { calls.Add(1); return true }, nil)
	stop()
	stop()
	// A started watchdog checks health before anything else, and stop
	// waits for it: no call means nothing was started.
	if c := calls.Load(); c != 0 {
		t.Fatalf("a nil Notifier's watchdog ran (healthy called %d times)", c)
	}
}

func TestNotificationsArriveAsSystemdReadsThem(t *testing.T) {
	cases := []struct {
		name string
		send func(*Notifier) error
		want string
	}{
		{"ready with a status", func(n *Notifier) error { return n.Ready("serving handlers.js gen=1") },
			"READY=1\nSTATUS=serving handlers.js gen=1"},
		{"ready alone", func(n *Notifier) error { return n.Ready("") }, "READY=1"},
		{"stopping", func(n *Notifier) error { return n.Stopping("draining for 5s") },
			"STOPPING=1\nSTATUS=draining for 5s"},
		{"status", func(n *Notifier) error { return n.Status("reloading") }, "STATUS=reloading"},
		{"a status cannot set other keys", func(n *Notifier) error {
			return n.Status("reload failed: handlers.js:3:1\nREADY=1\r\nMAINPID=1\x00")
		}, "STATUS=reload failed: handlers.js:3:1 READY=1 MAINPID=1"},
		{"watchdog", (*Notifier).Watchdog, "WATCHDOG=1"},
	}
	for _, socket := range []struct {
		name   string
		listen func(*testing.T) *manager
	}{{"path", pathSocket}, {"abstract", abstractSocket}} {
		t.Run(socket.name, func(t *testing.T) {
			m := socket.listen(t)
			t.Setenv("NOTIFY_SOCKET", m.addr)
			n := New()
			if !n.Enabled() {
				t.Fatalf("New() = nil with NOTIFY_SOCKET=%s", m.addr)
			}
			for _, tc := range cases {
				if err := tc.send(n); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if got := m.next(); got != tc.want {
					t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
				}
				m.empty() // one datagram per notification
			}
			if err := n.Status(""); err != nil {
				t.Fatal(err)
			}
			m.empty() // an empty status sends nothing
		})
	}
}

func TestAnUnusableNotifySocketFailsEveryNotification(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "nobody-listens")
	for _, tc := range []struct {
		addr, want string
	}{
		{"run/notify", "not a unix socket path"}, // relative
		{"@", "not a unix socket path"},
		{"vsock:2:1234", "not a unix socket path"},
		{gone, "no such file"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tc.addr)
			n := New()
			if !n.Enabled() {
				t.Fatal("New() = nil although NOTIFY_SOCKET is set")
			}
			for _, err := range []error{n.Ready("serving"), n.Watchdog(), n.Stopping("")} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got %v, want an error saying %q", err, tc.want)
				}
			}
		})
	}
}

func TestWatchdogIntervalIsWatchdogUsecForThisProcessOnly(t *testing.T) {
	const self = 4242
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{"no watchdog", nil, 0, false},
		{"interval", map[string]string{"WATCHDOG_USEC": "30000000"}, 30 * time.Second, false},
		{"interval for this pid", map[string]string{"WATCHDOG_USEC": "1500", "WATCHDOG_PID": strconv.Itoa(self)}, 1500 * time.Microsecond, false},
		{"meant for another process", map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, 0, false},
		{"pid without interval", map[string]string{"WATCHDOG_PID": strconv.Itoa(self)}, 0, false},
		{"not a number", map[string]string{"WATCHDOG_USEC": "30s"}, 0, true},
		{"zero", map[string]string{"WATCHDOG_USEC": "0"}, 0, true},
		{"negative", map[string]string{"WATCHDOG_USEC": "-5"}, 0, true},
		{"overflows a Duration", map[string]string{"WATCHDOG_USEC": "9223372036854776"}, 0, true},
		{"overflows int64", map[string]string{"WATCHDOG_USEC": "99999999999999999999"}, 0, true},
		{"bad pid", map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "me"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := watchdogInterval(func(k string) string { return tc.env[k] }, self)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %v, %v; want %v (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestWatchdogIntervalReadsTheEnvironment(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "20000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if got, err := WatchdogInterval(); err != nil || got != 20*time.Second {
		t.Fatalf("WatchdogInterval() = %v, %v; want 20s", got, err)
	}
	if got := PingPeriod(20 * time.Second); got != 10*time.Second {
		t.Fatalf("PingPeriod(20s) = %v, want half of it", got)
	}
}

// syncBuffer is a log destination written by the watchdog goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stopWithin calls stop and fails if it does not return in time.
func stopWithin(t *testing.T, stop func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(receiveTimeout):
		t.Fatal("stop did not return: the watchdog goroutine did not end")
	}
}

func TestWatchdogPingsWhileHealthyAndWithholdsThePingWhenNot(t *testing.T) {
	m := pathSocket(t)
	n := newNotifier(m.addr)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// Checks 1-3 healthy, 4-5 not, 6 healthy but held until the test has
	// counted the pings so far, then healthy.
	var calls atomic.Int64
	sixth, release := make(chan struct{}), make(chan struct{})
	healthy := func() bool {
		switch c := calls.Add(1); {
		case c <= 3:
			return true
		case c <= 5:
			return false
		case c == 6:
			close(sixth)
			<-release
		}
		return true
	}
	stop := n.StartWatchdog(20*time.Millisecond, healthy, log)
	defer stopWithin(t, stop)
	select {
	case <-sixth:
	case <-time.After(receiveTimeout):
		t.Fatalf("the watchdog checked health %d times, want 6", calls.Load())
	}
	// Each ping is sent before the next check, so every ping of checks
	// 1-5 is queued by now: three, none for the unhealthy two.
	for i := range 3 {
		if got := m.next(); got != "WATCHDOG=1" {
			t.Fatalf("ping %d: got %q", i+1, got)
		}
	}
	m.empty()
	close(release)
	if got := m.next(); got != "WATCHDOG=1" {
		t.Fatalf("once healthy again: got %q, want WATCHDOG=1", got)
	}
	stopWithin(t, stop)
	stopWithin(t, stop) // again: a no-op

	out := logs.String()
	for _, want := range []string{"withholding the ping", "healthy again"} {
		if c := strings.Count(out, want); c != 1 {
			t.Errorf("log says %q %d times, want once per change:\n%s", want, c, out)
		}
	}
}

func TestWatchdogPingsAtHalfTheIntervalAndNoFaster(t *testing.T) {
	m := abstractSocket(t)
	n := newNotifier(m.addr)
	const interval = 200 * time.Millisecond
	start := time.Now()
	stop := n.StartWatchdog(interval, nil, nil)
	defer stopWithin(t, stop)
	const pings = 4
	for range pings {
		if got := m.next(); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	// The first ping goes at once, each next one a period after the one
	// before (a ticker never fires early).
	if took, least := time.Since(start), (pings-1)*interval/2; took < least {
		t.Fatalf("%d pings took %v, want at least %v: pinging faster than half the interval", pings, took, least)
	}
}

func TestWatchdogLogsAFailingPingOnceNotAtEveryPeriod(t *testing.T) {
	n := newNotifier(filepath.Join(t.TempDir(), "nobody-listens"))
	var logs syncBuffer
	var calls atomic.Int64
	fourth := make(chan struct{})
	stop := n.StartWatchdog(2*time.Millisecond, func() bool {
		if calls.Add(1) == 4 {
			close(fourth)
		}
		return true
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	select {
	case <-fourth:
	case <-time.After(receiveTimeout):
		t.Fatal("the watchdog stopped checking")
	}
	stopWithin(t, stop)
	if c := strings.Count(logs.String(), "ping to systemd failed"); c != 1 {
		t.Fatalf("a failing ping was logged %d times over %d periods, want once:\n%s", c, calls.Load(), logs.String())
	}
}

func TestWatchdogWithoutAnIntervalStartsNothing(t *testing.T) {
	m := pathSocket(t)
	n := newNotifier(m.addr)
	var calls atomic.Int64
	stop := n.StartWatchdog(0, func() bool { calls.Add(1); return true }, nil)
	stopWithin(t, stop)
	if c := calls.Load(); c != 0 {
		t.Fatalf("healthy called %d times with the watchdog off", c)
	}
	m.empty()
}

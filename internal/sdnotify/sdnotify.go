// Package sdnotify tells systemd how the service is doing, as a unit of
// Type=notify expects (sd_notify(3)), without libsystemd: each
// notification is one datagram of "KEY=value" lines sent to the unix
// datagram socket that NOTIFY_SOCKET names (a path, or an abstract name
// written with a leading '@').
//
// Without NOTIFY_SOCKET, New returns nil and every method of a nil
// *Notifier does nothing and returns nil, so a server calls it the same
// way whether or not systemd started it.
//
// The watchdog: when the unit sets WatchdogSec=, systemd passes
// WATCHDOG_USEC (and WATCHDOG_PID) and kills the service when no
// WATCHDOG=1 arrives within that interval. WatchdogInterval reads it, and
// StartWatchdog pings at half of it while a health check holds.
//
// Goroutines: this package starts one, the watchdog's, in StartWatchdog;
// the stop function StartWatchdog returns ends it and waits for it. A
// Notifier holds nothing mutable (each notification opens, uses and closes
// its own socket), so every method may be called from any goroutine.
package sdnotify

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sendTimeout bounds one notification: a datagram to a receiver whose
// queue is full would otherwise wait for room, and a server shutting down
// must not hang on its service manager.
const sendTimeout = 2 * time.Second

// Notifier sends notifications to the service manager. Its methods may
// be called on a nil *Notifier: they do nothing.
type Notifier struct {
	addr string // NOTIFY_SOCKET as given
	err  error  // why addr cannot be used; returned by every send
}

// New returns a Notifier for the socket NOTIFY_SOCKET names, or nil when
// it is not set (the process was not started by systemd as Type=notify).
// A NOTIFY_SOCKET that is neither an absolute path nor an abstract name
// ('@' and at least one more character; systemd's vsock: addresses
// included) gives a Notifier whose every notification fails, saying why,
// so that the caller logs it once at Ready. Any goroutine.
func New() *Notifier { return newNotifier(os.Getenv("NOTIFY_SOCKET")) }

func newNotifier(addr string) *Notifier {
	if addr == "" {
		return nil
	}
	n := &Notifier{addr: addr}
	if !(strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") && len(addr) > 1) {
		n.err = fmt.Errorf("sdnotify: NOTIFY_SOCKET=%q is not a unix socket path or an abstract socket name", addr)
	}
	return n
}

// Enabled reports whether there is a service manager to notify. Any
// goroutine.
func (n *Notifier) Enabled() bool { return n != nil }

// Ready says that start-up is complete (READY=1): systemd then considers
// the service started, and its watchdog begins. status, when not empty,
// is shown by systemctl status (STATUS=). Any goroutine.
func (n *Notifier) Ready(status string) error { return n.send("READY=1", status) }

// Stopping says that the service has begun to shut down (STOPPING=1):
// systemd shows it as deactivating, and its stop timeout runs from now.
// status as for Ready. Any goroutine.
func (n *Notifier) Stopping(status string) error { return n.send("STOPPING=1", status) }

// Status sets the one-line status systemctl status shows (STATUS=). Any
// goroutine.
func (n *Notifier) Status(status string) error { return n.send("", status) }

// Watchdog sends one keep-alive (WATCHDOG=1). StartWatchdog calls it
// periodically. Any goroutine.
func (n *Notifier) Watchdog() error { return n.send("WATCHDOG=1", "") }

// send sends one datagram: state (a KEY=value line, or "") and, when
// status is not empty, a STATUS= line. A status is one line: its line
// breaks (and NUL bytes) become spaces, so that no text in it (a file
// name, an error message) can set another key.
func (n *Notifier) send(state, status string) error {
	if n == nil {
		return nil
	}
	if n.err != nil {
		return n.err
	}
	var lines []string
	if state != "" {
		lines = append(lines, state)
	}
	if status != "" {
		lines = append(lines, "STATUS="+strings.Join(strings.FieldsFunc(status, breaksLine), " "))
	}
	if len(lines) == 0 {
		return nil
	}
	// A fresh socket for each datagram, as sd_notify does: a socket kept
	// connected would stay tied to the receiver it first reached, and
	// fail once systemd re-executes itself and binds the path anew.
	// Go maps a leading '@' to the abstract namespace.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := c.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

func breaksLine(r rune) bool { return r == '\n' || r == '\r' || r == 0 }

// WatchdogInterval returns how often systemd expects WATCHDOG=1: the
// unit's WatchdogSec=, from WATCHDOG_USEC. It returns 0 when the watchdog
// is off: WATCHDOG_USEC is not set, or WATCHDOG_PID names another process
// (the variables were inherited from a parent). A malformed value is an
// error. Any goroutine.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv, os.Getpid())
}

func watchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID=%q is not a process id", p)
		}
		if n != pid {
			return 0, nil // meant for another process
		}
	}
	us, err := strconv.ParseInt(usec, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q: %w", usec, err)
	}
	if us <= 0 || us > int64(time.Duration(1<<63-1)/time.Microsecond) {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q: %w", usec, errOutOfRange)
	}
	return time.Duration(us) * time.Microsecond, nil
}

var errOutOfRange = errors.New("out of range")

// PingPeriod is how often StartWatchdog pings for a watchdog interval:
// half of it, as sd_watchdog_enabled(3) advises, so that one late ping
// does not get the service killed.
func PingPeriod(interval time.Duration) time.Duration {
	return max(interval/2, time.Millisecond)
}

// StartWatchdog starts the watchdog goroutine: it sends WATCHDOG=1 at
// once and then every PingPeriod(interval), each time healthy (which may
// be nil: always healthy) returns true, and withholds the ping when it
// returns false, so that a service that stays unhealthy for the whole
// interval is killed (and restarted, with Restart=) by systemd. healthy
// runs on the watchdog goroutine; it must be safe to call from there and
// should return well within the period. A failed ping, and the turn from
// healthy to unhealthy and back, are logged on log (nil: slog.Default()),
// once per change rather than at every period.
//
// It returns stop, which ends the goroutine and waits until it has ended
// (so it also waits for a healthy call under way); stop may be called
// more than once, from any goroutine. On a nil Notifier or with interval
// <= 0 (no watchdog), nothing is started and stop does nothing.
func (n *Notifier) StartWatchdog(interval time.Duration, healthy func() bool, log *slog.Logger) (stop func()) {
	if n == nil || interval <= 0 {
		return func() {}
	}
	if log == nil {
		log = slog.Default()
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go n.watchdog(PingPeriod(interval), healthy, log, quit, done)
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// watchdog is the watchdog goroutine: started by StartWatchdog, ended by
// closing quit; it closes done as it returns.
func (n *Notifier) watchdog(period time.Duration, healthy func() bool, log *slog.Logger, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(period)
	defer tick.Stop()
	wasHealthy, pingFailed := true, false
	for {
		ok := healthy == nil || healthy()
		if ok != wasHealthy {
			if ok {
				log.Info("watchdog: healthy again; pinging systemd")
			} else {
				log.Warn("watchdog: not healthy; withholding the ping to systemd", "period", period)
			}
			wasHealthy = ok
		}
		if ok {
			err := n.Watchdog()
			if err != nil && !pingFailed {
				log.Warn("watchdog: ping to systemd failed", "error", err.Error())
			}
			pingFailed = err != nil
		}
		select {
		case <-quit:
			return
		case <-tick.C:
		}
	}
}

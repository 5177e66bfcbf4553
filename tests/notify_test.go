package tests

import (
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A server started by systemd (Type=notify) says when it is ready, pings
// the watchdog while its workers answer, says when it reloads, and says
// when it stops.
func TestSystemdHearsReadyWatchdogReloadAndStopping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "400000")
	next := func(want *regexp.Regexp) string {
		t.Helper()
		buf := make([]byte, 4096)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_ = sock.SetReadDeadline(deadline)
			n, err := sock.Read(buf)
			if err != nil {
				t.Fatalf("no notification matching %q: %v", want, err)
			}
			if msg := string(buf[:n]); want.MatchString(msg) {
				return msg
			}
		}
	}
	srv := startServer(t, writeHandlers(t, adminHandlers))
	ready := next(regexp.MustCompile(`(?m)^READY=1$`))
	if !strings.Contains(ready, "STATUS=serving gen=1 on "+srv.addr) {
		t.Errorf("READY says %q", ready)
	}
	next(regexp.MustCompile(`^WATCHDOG=1$`))
	next(regexp.MustCompile(`^WATCHDOG=1$`))

	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	next(regexp.MustCompile(`^STATUS=reloading `))
	next(regexp.MustCompile(`^STATUS=serving gen=2 `))

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next(regexp.MustCompile(`(?m)^STOPPING=1$`))
	srv.stop()
}

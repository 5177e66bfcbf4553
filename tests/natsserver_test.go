package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// natsServer is a nats-server process (Debian's package) listening on a
// loopback port, for the cluster tests. It can be stopped and started again
// on the same port, as an outage the instances must ride out; it is killed
// at cleanup whatever state it is in.
type natsServer struct {
	t    *testing.T
	bin  string
	port int    // 0 until the first run has bound one
	url  string // nats://127.0.0.1:port
	runs int

	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{} // closed when the run's log has been read to its end
	past []string      // the logs of earlier runs, for failure messages
}

// natsBin is the nats-server executable: Debian installs it in /usr/sbin,
// which a user's PATH may not hold.
func natsBin(t *testing.T) string {
	t.Helper()
	const debian = "/usr/sbin/nats-server"
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	return requireTool(t, "nats-server")
}

// startNATS runs nats-server on a loopback port it picks itself (-p -1, so
// no other process can take the port between choosing and binding it),
// without JetStream, and waits until it accepts clients.
func startNATS(t *testing.T) *natsServer {
	t.Helper()
	n := &natsServer{t: t, bin: natsBin(t)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nats-server's log:\n%s", n.log())
		}
		n.kill()
	})
	n.run()
	return n
}

var (
	natsListening = regexp.MustCompile(`Listening for client connections on 127\.0\.0\.1:(\d+)`)
	natsReady     = regexp.MustCompile(`Server is ready`)
)

// run starts a nats-server process on n.port (a port of its choosing the
// first time) and waits for its "Server is ready" line.
func (n *natsServer) run() {
	n.t.Helper()
	port := "-1"
	if n.port != 0 {
		port = strconv.Itoa(n.port)
	}
	n.runs++
	// -a/-p: loopback only; -n: a name that says which run logged what;
	// JetStream stays off (no -js), so nothing is written to disk.
	cmd := exec.Command(n.bin, "-a", "127.0.0.1", "-p", port, "-n", fmt.Sprintf("moebius-test-%d", n.runs))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	n.cmd, n.logs, n.done = cmd, readLog(stderr), make(chan struct{})
	go func(logs *logBuffer, done chan struct{}) {
		logs.waitEOF()
		close(done)
	}(n.logs, n.done)
	m := n.logs.waitFor(n.t, natsListening, 15*time.Second)
	if n.port == 0 {
		n.port, _ = strconv.Atoi(m[1])
		n.url = fmt.Sprintf("nats://127.0.0.1:%d", n.port)
	} else if m[1] != strconv.Itoa(n.port) {
		n.t.Fatalf("nats-server restarted on port %s, not %d", m[1], n.port)
	}
	n.logs.waitFor(n.t, natsReady, 15*time.Second)
}

// stop ends nats-server with sig (SIGTERM: it closes its clients'
// connections itself; SIGKILL: the kernel does, as in a crash) and waits
// until it has exited, so the port is free for restart.
func (n *natsServer) stop(sig syscall.Signal) {
	n.t.Helper()
	if n.cmd == nil {
		n.t.Fatal("nats-server is not running")
	}
	_ = n.cmd.Process.Signal(sig)
	if !n.wait(15 * time.Second) {
		_ = n.cmd.Process.Kill()
		n.wait(5 * time.Second)
		n.t.Fatalf("nats-server did not exit within 15s of %v:\n%s", sig, n.log())
	}
}

// restart starts nats-server again on the port of its first run.
func (n *natsServer) restart() {
	n.t.Helper()
	if n.cmd != nil {
		n.t.Fatal("nats-server is still running")
	}
	n.run()
}

// wait waits for the running process to exit and reaps it, reporting
// whether it did within timeout.
func (n *natsServer) wait(timeout time.Duration) bool {
	select {
	case <-n.done:
	case <-time.After(timeout):
		return false
	}
	_ = n.cmd.Wait()
	n.past = append(n.past, n.logs.String())
	n.cmd, n.logs, n.done = nil, nil, nil
	return true
}

// kill is the cleanup: whatever runs is killed and reaped.
func (n *natsServer) kill() {
	if n.cmd == nil {
		return
	}
	pid := n.cmd.Process.Pid
	_ = n.cmd.Process.Kill()
	if !n.wait(10 * time.Second) {
		n.t.Errorf("nats-server (pid %d) did not exit after SIGKILL", pid)
	}
}

// log is everything nats-server printed, over all its runs.
func (n *natsServer) log() string {
	s := ""
	for i, l := range n.past {
		s += fmt.Sprintf("--- nats-server run %d ---\n%s", i+1, l)
	}
	if n.logs != nil {
		s += fmt.Sprintf("--- nats-server run %d (running) ---\n%s", len(n.past)+1, n.logs.String())
	}
	return s
}

// readLog collects what r yields, line by line, into a logBuffer that
// tests can wait on.
func readLog(r io.Reader) *logBuffer {
	l := &logBuffer{}
	l.cond = sync.NewCond(&l.mu)
	go func() {
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			l.mu.Lock()
			l.b.WriteString(line)
			l.eof = err != nil
			l.cond.Broadcast()
			l.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return l
}

// waitEOF blocks until the writer of the log has closed it.
func (l *logBuffer) waitEOF() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.eof {
		l.cond.Wait()
	}
}

// count is how many times re matches the log so far.
func (l *logBuffer) count(re *regexp.Regexp) int {
	return len(re.FindAllStringIndex(l.String(), -1))
}

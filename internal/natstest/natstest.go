// Package natstest runs a real NATS server (Debian's nats-server) on a
// loopback port for tests, and can stop it and start it again on the same
// port. It holds no state of its own between tests.
package natstest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is one nats-server process (or, once stopped, the port it had).
type Server struct {
	t    testing.TB
	bin  string
	Port int
	URL  string // nats://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of nats-server, or "" when it is not installed.
func Binary() string {
	for _, p := range []string{"nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// Start runs nats-server on a free loopback port until the test ends. It
// skips the test when nats-server is not installed, or fails it when
// REQUIRE_INTEROP is set.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("REQUIRE_INTEROP") != "" {
			t.Fatal("nats-server is not installed (apt-get install nats-server)")
		}
		t.Skip("nats-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, bin: bin, Port: port, URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again on its port (after Stop) and waits
// until it is ready.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", fmt.Sprint(s.Port))
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.done = make(chan struct{})
	ready := make(chan struct{})
	var log strings.Builder
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !said && strings.Contains(sc.Text(), "Server is ready") {
				said = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-s.done:
		s.t.Fatalf("nats-server exited before it was ready:\n%s", log.String())
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done // its log is whole, and no longer written
		s.t.Fatalf("nats-server not ready within 10s:\n%s", log.String())
	}
}

// Pause stops the server's process without ending it (SIGSTOP): its
// connections stay open and nothing answers, as in a partition. Resume
// undoes it.
func (s *Server) Pause()  { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *Server) Resume() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// Stop kills the server and waits for it to exit. Idempotent.
func (s *Server) Stop() { s.StopWith(os.Kill) }

// StopWith stops the server with sig (SIGTERM: it closes its clients'
// connections; SIGKILL: they just break) and waits for it to exit.
// Idempotent.
func (s *Server) StopWith(sig os.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	<-s.done
	_ = s.cmd.Wait()
	s.cmd = nil
}

package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/internal/zmtptest"
)

// requireTool returns the path of an external program the test needs. It
// skips the test when the program is missing, unless REQUIRE_INTEROP=1 (as
// in CI, which installs it), when it fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("REQUIRE_INTEROP") == "1" {
			t.Fatalf("%s is required (REQUIRE_INTEROP=1) but not installed", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return path
}

// mirrorHandlers reply to each message with its frames reversed.
const mirrorHandlers = `
module.exports = { route: () => ({ handler: (c, d, m) => c.send(...m.frames.slice().reverse()) }) };
`

var socketCall = regexp.MustCompile(`^\d+\s+(read|write|writev)\(\d+<socket:`)

func TestEachReplyIsOneVectoredWriteAndReadsAreBuffered(t *testing.T) {
	straceBin := requireTool(t, "strace")
	srv := startServer(t, writeHandlers(t, mirrorHandlers), "--queue-limit", "1000")

	out := filepath.Join(t.TempDir(), "strace.txt")
	tracer := exec.Command(straceBin, "-f", "-y", "-e", "trace=read,write,writev", "-o", out, "-p", fmt.Sprint(srv.cmd.Process.Pid))
	stderr, err := tracer.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tracer.Start(); err != nil {
		t.Fatal(err)
	}
	attached := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var all strings.Builder
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "attached") {
				attached <- nil
				for sc.Scan() {
				}
				return
			}
		}
		attached <- fmt.Errorf("strace could not attach: %s", all.String())
	}()
	select {
	case err := <-attached:
		if err != nil {
			_ = tracer.Wait()
			t.Skip(err) // no ptrace permission on this machine
		}
	case <-time.After(10 * time.Second):
		_ = tracer.Process.Kill()
		t.Fatal("strace did not attach")
	}

	// One client pipelines 300 four-frame requests in a single write, then
	// reads the 300 replies: the same four frames, reversed.
	const requests = 300
	c := zmtptest.Dial(t, srv.addr)
	c.Handshake("DEALER", zmtptest.Str("traced"))
	var burst []byte
	for i := 0; i < requests; i++ {
		burst = append(burst, zmtptest.Message([]byte(fmt.Sprintf("request %d", i)), []byte("b"), []byte("c"), []byte("d"))...)
	}
	c.Write(burst)
	for i := 0; i < requests; i++ {
		if got := c.Recv(); len(got) != 4 || string(got[3]) != fmt.Sprintf("request %d", i) {
			t.Fatalf("reply %d: %q", i, got)
		}
	}
	_ = c.C.Close()
	srv.logs.waitFor(t, regexp.MustCompile(`peer disconnected.*traced|peer closed the connection`), 10*time.Second)

	_ = tracer.Process.Signal(syscall.SIGINT) // detach
	_ = tracer.Wait()
	trace, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, line := range strings.Split(string(trace), "\n") {
		if m := socketCall.FindStringSubmatch(line); m != nil {
			calls[m[1]]++
		}
	}
	t.Logf("socket syscalls for %d requests of 4 frames and %d replies of 4 frames: %v", requests, requests, calls)
	// The handshake is zmq4's: one write for the greeting, two for READY.
	if calls["write"] > 3 {
		t.Errorf("%d plain writes on the socket: replies must go out as one writev each (or fewer, batched)", calls["write"])
	}
	if calls["writev"] == 0 || calls["writev"] > requests {
		t.Errorf("%d writevs for %d replies: want at least one and at most one per reply", calls["writev"], requests)
	}
	// 1,200 frames arrived; unbuffered reading takes two reads a frame.
	if calls["read"] > 60 {
		t.Errorf("%d reads for %d frames: reads must go through a buffer", calls["read"], 4*requests)
	}
}

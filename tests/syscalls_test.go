package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

const burstRequests = 300

// mirrorBurst connects a client that pipelines burstRequests four-frame
// requests in a single write, then reads the replies (the same frames,
// reversed) and leaves, and waits until the server has seen it go.
func mirrorBurst(t *testing.T, srv *server) {
	t.Helper()
	c := zmtptest.Dial(t, srv.addr)
	c.Handshake("DEALER", zmtptest.Str("burst"))
	var burst []byte
	for i := 0; i < burstRequests; i++ {
		burst = append(burst, zmtptest.Message([]byte(fmt.Sprintf("request %d", i)), []byte("b"), []byte("c"), []byte("d"))...)
	}
	c.Write(burst)
	for i := 0; i < burstRequests; i++ {
		if got := c.Recv(); len(got) != 4 || string(got[3]) != fmt.Sprintf("request %d", i) {
			t.Fatalf("reply %d: %q", i, got)
		}
	}
	_ = c.C.Close()
	srv.logs.waitFor(t, regexp.MustCompile(`peer disconnected.*burst|peer closed the connection`), 10*time.Second)
}

// syscallCounts reads the process's read and write system call counts
// (syscr, syscw: every read- and write-family call) from /proc/PID/io.
func syscallCounts(t *testing.T, pid int) (reads, writes int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/io: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			reads, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return reads, writes
}

// Unbuffered reading takes at least two reads a frame (header, body) and
// unbatched writing two writes a frame; 1,200 frames come and go here.
func TestRepliesTakeAtMostOneWriteEachAndReadsAreBuffered(t *testing.T) {
	srv := startServer(t, writeHandlers(t, mirrorHandlers), "--queue-limit", "1000")
	pid := srv.cmd.Process.Pid
	r0, w0 := syscallCounts(t, pid)
	mirrorBurst(t, srv)
	r1, w1 := syscallCounts(t, pid)
	reads, writes := r1-r0, w1-w0
	t.Logf("%d requests of 4 frames, %d replies of 4 frames: %d read and %d write system calls", burstRequests, burstRequests, reads, writes)
	// Writes: the handshake's 3, at most one a reply, a few log lines.
	if writes > burstRequests+10 {
		t.Errorf("%d write calls for %d replies: each reply must go out in one vectored write (or fewer, batched)", writes, burstRequests)
	}
	if reads > 60 {
		t.Errorf("%d read calls for %d frames: reads must go through a buffer", reads, 4*burstRequests)
	}
}

// With strace, the same burst shows that what goes out after the handshake
// is writev, never write.
func TestRepliesAreWrittenWithWritev(t *testing.T) {
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
			// No ptrace permission here; the /proc test above still runs.
			t.Skip(err)
		}
	case <-time.After(10 * time.Second):
		_ = tracer.Process.Kill()
		t.Fatal("strace did not attach")
	}

	mirrorBurst(t, srv)

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
	t.Logf("socket system calls: %v", calls)
	// The handshake is zmq4's: one write for the greeting, two for READY.
	if calls["write"] > 3 {
		t.Errorf("%d plain writes on the socket: replies must go out as writev", calls["write"])
	}
	if calls["writev"] == 0 || calls["writev"] > burstRequests {
		t.Errorf("%d writevs for %d replies: want at least one and at most one per reply", calls["writev"], burstRequests)
	}
}

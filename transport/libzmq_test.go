package transport_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/transport"
)

// libzmqPython is Debian's interpreter, which python3-zmq installs pyzmq
// for; the python3 on PATH may be another one (pyenv) without it. The
// end-to-end suite (tests/interop_test.go) drives libzmq the same way.
const libzmqPython = "/usr/bin/python3"

// requireLibzmq skips the test when pyzmq is not available, or fails it if
// REQUIRE_INTEROP=1 (as in CI, where a skip would hide the test).
func requireLibzmq(t *testing.T) {
	t.Helper()
	out, err := exec.Command(libzmqPython, "-E", "-c", "import zmq").CombinedOutput()
	if err == nil {
		return
	}
	err = fmt.Errorf("%s cannot import zmq: %s", libzmqPython, pythonFailure(err, out))
	if os.Getenv("REQUIRE_INTEROP") == "1" {
		t.Fatalf("libzmq interop test cannot run and REQUIRE_INTEROP=1: %v (install Debian's python3-zmq)", err)
	}
	t.Skipf("skipping libzmq interop test: %v (install Debian's python3-zmq; REQUIRE_INTEROP=1 turns this skip into a failure)", err)
}

// pythonFailure is the gist of a failed python run: the last line it
// printed (the exception), else the exec error.
func pythonFailure(err error, out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return last
	}
	return err.Error()
}

// libzmqClient drives libzmq through pyzmq: a DEALER with ZMQ_PROBE_ROUTER
// and ZMTP heartbeats that idles past its heartbeat timeout between two
// round trips, then a REQ. argv[1] is the endpoint. It prints the replies
// as one JSON array of messages, each an array of hex frames; it exits 1
// if a reply does not come within 5 s.
const libzmqClient = `
import json, sys, time
import zmq

ctx = zmq.Context()

def socket(kind, identity, options=()):
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    s.setsockopt(zmq.SNDTIMEO, 5000)
    s.setsockopt(zmq.ROUTING_ID, identity)
    for opt, value in options:
        s.setsockopt(opt, value)
    s.connect(sys.argv[1])
    return s

def round_trip(s, *frames):
    try:
        s.send_multipart(frames)
        return [f.hex() for f in s.recv_multipart()]
    except zmq.Again:
        sys.exit("no reply to %r within 5 s" % (frames,))

try:
    d = socket(zmq.DEALER, b"libzmq-dealer", [
        (zmq.PROBE_ROUTER, 1), (zmq.HEARTBEAT_IVL, 50), (zmq.HEARTBEAT_TIMEOUT, 200)])
    replies = [round_trip(d, b"hello", b"\x00bin")]
    time.sleep(1.0)  # idle for 5 heartbeat timeouts: only our PONGs keep it open
    replies.append(round_trip(d, b"again"))
    r = socket(zmq.REQ, b"libzmq-req")
    replies.append(round_trip(r, b"ping"))
    print(json.dumps(replies))
finally:
    ctx.destroy(linger=0)
`

func TestLibzmqClientsInteroperate(t *testing.T) {
	requireLibzmq(t)
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "echo")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, libzmqPython, "-E", "-c", libzmqClient, tcpAddr(t, srv))
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("libzmq client: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.Bytes(), out)
	}
	var replies [][]string
	if err := json.Unmarshal(out, &replies); err != nil {
		t.Fatalf("libzmq client printed %q: %v", out, err)
	}
	want := [][][]byte{
		{[]byte("echo"), []byte("hello"), []byte("\x00bin")},
		{[]byte("echo"), []byte("again")},
		{[]byte("echo"), []byte("ping")}, // the REQ got its delimiter back, or it would have dropped this
	}
	if got := unhexMessages(t, replies); !eqMessages(got, want) {
		t.Errorf("libzmq clients received %q, want %q", got, want)
	}

	evs := rec.waitFor(t, "every connection to end", func(evs []event) bool {
		return count(evs, evDisconnected, "libzmq-req") == 1 &&
			count(evs, evConnected, "libzmq-dealer") == count(evs, evDisconnected, "libzmq-dealer")
	})
	if c := count(evs, evConnected, "libzmq-dealer"); c != 1 {
		t.Errorf("libzmq DEALER connected %d times, want 1 (heartbeat timeouts would reconnect it)", c)
	}
	// The probe is not a message, and the REQ's delimiter is not a frame.
	delivered := [][][]byte{{[]byte("hello"), []byte("\x00bin")}, {[]byte("again")}, {[]byte("ping")}}
	if got := messages(evs); !eqMessages(got, delivered) {
		t.Errorf("handler received %q, want %q", got, delivered)
	}
}

func unhexMessages(t *testing.T, msgs [][]string) [][][]byte {
	t.Helper()
	out := make([][][]byte, len(msgs))
	for i, m := range msgs {
		for _, h := range m {
			f, err := hex.DecodeString(h)
			if err != nil {
				t.Fatalf("bad hex frame %q: %v", h, err)
			}
			out[i] = append(out[i], f)
		}
	}
	return out
}

func eqMessages(a, b [][][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !eqFrames(a[i], b[i]) {
			return false
		}
	}
	return true
}

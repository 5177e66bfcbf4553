package transport_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moebius-js/moebius-js/transport"
)

// libzmqClient drives the system's libzmq through Python's ctypes (no
// bindings needed): a DEALER with ZMQ_PROBE_ROUTER and ZMTP heartbeats that
// idles past its heartbeat timeout between two round trips, then a REQ.
// argv[1] is the endpoint. Prints OK on success.
const libzmqClient = `
import ctypes, sys, time
z = ctypes.CDLL("libzmq.so.5")
z.zmq_ctx_new.restype = ctypes.c_void_p
z.zmq_socket.restype = ctypes.c_void_p
z.zmq_socket.argtypes = [ctypes.c_void_p, ctypes.c_int]
z.zmq_setsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
z.zmq_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
z.zmq_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
z.zmq_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
z.zmq_getsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
z.zmq_close.argtypes = [ctypes.c_void_p]
z.zmq_ctx_term.argtypes = [ctypes.c_void_p]
DEALER, REQ = 5, 3
ROUTING_ID, LINGER, RCVTIMEO, SNDMORE, RCVMORE = 5, 17, 27, 2, 13
PROBE_ROUTER, HEARTBEAT_IVL, HEARTBEAT_TIMEOUT = 51, 75, 77

def setint(s, opt, v):
    x = ctypes.c_int(v)
    assert z.zmq_setsockopt(s, opt, ctypes.byref(x), 4) == 0, opt

def socket(ctx, kind, ident):
    s = z.zmq_socket(ctx, kind)
    assert z.zmq_setsockopt(s, ROUTING_ID, ident, len(ident)) == 0
    setint(s, LINGER, 0)
    setint(s, RCVTIMEO, 5000)
    return s

def send(s, *frames):
    for i, f in enumerate(frames):
        assert z.zmq_send(s, f, len(f), SNDMORE if i < len(frames) - 1 else 0) == len(f)

def recv(s):
    frames = []
    while True:
        buf = ctypes.create_string_buffer(4096)
        n = z.zmq_recv(s, buf, 4096, 0)
        assert n >= 0, "recv timed out"
        frames.append(buf.raw[:n])
        more, size = ctypes.c_int(0), ctypes.c_size_t(4)
        z.zmq_getsockopt(s, RCVMORE, ctypes.byref(more), ctypes.byref(size))
        if not more.value:
            return frames

ctx = z.zmq_ctx_new()
d = socket(ctx, DEALER, b"libzmq-dealer")
setint(d, PROBE_ROUTER, 1)
setint(d, HEARTBEAT_IVL, 50)
setint(d, HEARTBEAT_TIMEOUT, 200)
assert z.zmq_connect(d, sys.argv[1].encode()) == 0
send(d, b"hello", b"\x00bin")
assert recv(d) == [b"echo", b"hello", b"\x00bin"]
time.sleep(1.0)  # idle for 5 heartbeat timeouts: only our PONGs keep it open
send(d, b"again")
assert recv(d) == [b"echo", b"again"]

r = socket(ctx, REQ, b"libzmq-req")
assert z.zmq_connect(r, sys.argv[1].encode()) == 0
send(r, b"ping")
assert recv(r) == [b"echo", b"ping"]

z.zmq_close(d); z.zmq_close(r); z.zmq_ctx_term(ctx)
print("OK")
`

func TestLibzmqClientsInteroperate(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	if out, err := exec.Command(python, "-c", `import ctypes; ctypes.CDLL("libzmq.so.5")`).CombinedOutput(); err != nil {
		t.Skipf("libzmq.so.5 not loadable: %s", strings.TrimSpace(string(out)))
	}
	srv, rec := startServer(t, transport.Config{})
	echo(srv, rec, "echo")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", libzmqClient, tcpAddr(t, srv)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("libzmq client: %v\n%s", err, out)
	}

	evs := rec.waitFor(t, "every connection to end", func(evs []event) bool {
		return count(evs, evDisconnected, "libzmq-req") == 1 &&
			count(evs, evConnected, "libzmq-dealer") == count(evs, evDisconnected, "libzmq-dealer")
	})
	if c := count(evs, evConnected, "libzmq-dealer"); c != 1 {
		t.Errorf("libzmq DEALER connected %d times, want 1 (heartbeat timeouts would reconnect it)", c)
	}
	if got := len(messages(evs)); got != 3 {
		t.Errorf("%d messages delivered, want 3 (the probe is not one)", got)
	}
}

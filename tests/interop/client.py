"""libzmq clients for the interoperability tests (tests/interop_test.go).

Run with Debian's pyzmq: /usr/bin/python3 client.py SCENARIO ENDPOINT [options].
Each scenario prints what it observed as JSON lines on stdout and leaves the
judging to the Go test. It exits 1 with a message on stderr when it cannot
finish (a receive timed out, a frame was not UTF-8 where text was expected).
Every receive has a timeout and every socket LINGER 0, so it never hangs.

Scenarios:
  roundtrips  one DEALER or REQ socket; per request one line
              {"request": r, "reply": [frame, ...]} (frames as text)
  multipart   one multipart message of hex-given frames; prints
              {"reply": [hex, ...]}
  heartbeat   a DEALER with ZMTP heartbeats and a socket monitor: a round
              trip, an idle period, a round trip; prints {"reply": [...]}
              per round trip, then {"events": [name, ...]}
  many        N DEALERs with their own identities, one request each, all
              sent before any reply is read; one line per client
              {"identity": id, "replies": [text, ...]}
"""

import argparse
import json
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

TIMEOUT_MS = 5000  # longest wait for any one reply


def fail(msg):
    print(f"client.py: {msg}", file=sys.stderr)
    sys.exit(1)


def emit(**fields):
    print(json.dumps(fields), flush=True)


def new_socket(ctx, kind, identity=None, options=(), timeout_ms=TIMEOUT_MS):
    """A socket with LINGER 0, send and receive timeouts (timeout_ms), the
    identity (if any) and options, (option, value) pairs, set; not yet
    connected. The other scripts here (envelope.py, flow.py) use it too."""
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, timeout_ms)
    s.setsockopt(zmq.SNDTIMEO, timeout_ms)
    if identity:
        s.setsockopt(zmq.ROUTING_ID, identity.encode())
    for opt, value in options:
        s.setsockopt(opt, value)
    return s


def open_socket(ctx, kind, endpoint, identity=None, options=()):
    s = new_socket(ctx, kind, identity, options)
    s.connect(endpoint)
    return s


def recv(sock, what):
    try:
        return sock.recv_multipart()
    except zmq.Again:
        fail(f"no {what} within {TIMEOUT_MS} ms")


def send(sock, frames, what):
    try:
        sock.send_multipart(frames)
    except zmq.Again:
        fail(f"could not send {what} within {TIMEOUT_MS} ms")


def as_text(frames, what):
    try:
        return [f.decode("utf-8") for f in frames]
    except UnicodeDecodeError:
        fail(f"{what} is not UTF-8: {frames!r}")


def roundtrips(ctx, args):
    kind = zmq.REQ if args.socket == "req" else zmq.DEALER
    options = [(zmq.PROBE_ROUTER, 1)] if args.probe else []
    s = open_socket(ctx, kind, args.endpoint, args.identity, options)
    for request in args.requests:
        send(s, [request.encode()], f"request {request!r}")
        reply = recv(s, f"reply to {request!r}")
        emit(request=request, reply=as_text(reply, f"reply to {request!r}"))


def multipart(ctx, args):
    kind = zmq.REQ if args.socket == "req" else zmq.DEALER
    s = open_socket(ctx, kind, args.endpoint, args.identity)
    send(s, [bytes.fromhex(f) for f in args.frames], "the multipart message")
    emit(reply=[f.hex() for f in recv(s, "reply to the multipart message")])


def heartbeat(ctx, args):
    s = new_socket(ctx, zmq.DEALER, args.identity, [
        (zmq.HEARTBEAT_IVL, args.ivl),
        (zmq.HEARTBEAT_TIMEOUT, args.timeout),
        (zmq.HEARTBEAT_TTL, args.ttl),
    ])
    # The monitor exists before connect, so it sees the first connection.
    monitor = s.get_monitor_socket()
    monitor.setsockopt(zmq.LINGER, 0)
    s.connect(args.endpoint)

    events = []

    def watch(until):
        """Collect monitor events until the monotonic time until."""
        while True:
            left = until - time.monotonic()
            if left <= 0 or not monitor.poll(int(left * 1000) + 1):
                return
            ev = recv_monitor_message(monitor)["event"]
            try:
                events.append(zmq.Event(ev).name)
            except ValueError:  # an event this pyzmq has no name for
                events.append(str(int(ev)))

    def round_trip(request):
        send(s, [request.encode()], f"request {request!r}")
        emit(reply=as_text(recv(s, f"reply to {request!r}"), "reply"))

    if args.requests:
        round_trip("first")
    # The idle period is the test: only heartbeats cross the connection.
    watch(time.monotonic() + args.idle)
    if args.requests:
        round_trip("second")
    # Events already queued (a late reconnect, say), but not those of our
    # own close below.
    watch(time.monotonic() + 0.05)
    s.disable_monitor()
    emit(events=events)


def many(ctx, args):
    ids = [f"{args.prefix}{i:02d}" for i in range(args.clients)]
    socks = {i: open_socket(ctx, zmq.DEALER, args.endpoint, i) for i in ids}
    for i, s in socks.items():
        send(s, [args.request.encode()], f"request of {i}")
    replies = {i: [] for i in ids}
    poller = zmq.Poller()
    for s in socks.values():
        poller.register(s, zmq.POLLIN)
    by_socket = {s: i for i, s in socks.items()}
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    # Read until every client has a reply, then a little longer so that a
    # reply delivered twice or to the wrong client shows up too.
    grace = None
    while True:
        now = time.monotonic()
        if grace is None and all(replies.values()):
            grace = now + 0.1
        until = grace if grace is not None else deadline
        if now >= until:
            break
        for s, _ in poller.poll(int((until - now) * 1000) + 1):
            i = by_socket[s]
            replies[i].append(as_text(recv(s, f"reply of {i}"), f"reply of {i}"))
    if not all(replies.values()):
        missing = [i for i, r in replies.items() if not r]
        fail(f"no reply within {TIMEOUT_MS} ms for {len(missing)} clients: {missing}")
    for i in ids:
        emit(identity=i, replies=replies[i])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="scenario", required=True)

    r = sub.add_parser("roundtrips")
    r.add_argument("endpoint")
    r.add_argument("requests", nargs="+")
    r.add_argument("--socket", choices=["dealer", "req"], default="dealer")
    r.add_argument("--identity", help="ROUTING_ID (default: none, the server makes one up)")
    r.add_argument("--probe", action="store_true", help="set ZMQ_PROBE_ROUTER")
    r.set_defaults(run=roundtrips)

    m = sub.add_parser("multipart")
    m.add_argument("endpoint")
    m.add_argument("frames", nargs="+", help="frames in hex ('' for an empty frame)")
    m.add_argument("--socket", choices=["dealer", "req"], default="dealer")
    m.add_argument("--identity")
    m.set_defaults(run=multipart)

    h = sub.add_parser("heartbeat")
    h.add_argument("endpoint")
    h.add_argument("--identity", default="py-heartbeat")
    h.add_argument("--idle", type=float, default=3.0, help="seconds between the round trips")
    h.add_argument("--ivl", type=int, default=100, help="ZMQ_HEARTBEAT_IVL, ms")
    h.add_argument("--timeout", type=int, default=300, help="ZMQ_HEARTBEAT_TIMEOUT, ms")
    h.add_argument("--ttl", type=int, default=1000, help="ZMQ_HEARTBEAT_TTL, ms")
    h.add_argument("--no-requests", dest="requests", action="store_false",
                   help="only idle and report monitor events (for a peer that never replies)")
    h.set_defaults(run=heartbeat)

    n = sub.add_parser("many")
    n.add_argument("endpoint")
    n.add_argument("--clients", type=int, default=50)
    n.add_argument("--prefix", default="py-many-")
    n.add_argument("--request", required=True)
    n.set_defaults(run=many)

    run(p)


def run(parser):
    """Parses the command line and runs the chosen scenario, run(ctx, args),
    with a context destroyed after it."""
    args = parser.parse_args()
    ctx = zmq.Context()
    try:
        args.run(ctx, args)
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    main()

"""libzmq clients whose requests carry envelopes (tests/envelope_test.go).

Run with Debian's pyzmq: /usr/bin/python3 envelope.py SCENARIO ENDPOINT N.
Each scenario sends N echo requests {"command":"echo","n":i} and prints one
JSON line per reply: {"reply": [frame, ...]} with frames as hex, so the Go
test sees the exact envelope the server wrote back. It exits 1 with a
message on stderr when a reply does not come within TIMEOUT_MS.

Scenarios:
  correlate  a REQ socket with ZMQ_REQ_CORRELATE and ZMQ_REQ_RELAXED: libzmq
             sends [request id, "", payload] and keeps only the reply that
             carries the id back
  proxy      a REQ socket behind a ROUTER/DEALER proxy (the guide's extended
             request-reply): the server sees [proxy's id for the REQ, "",
             payload]
  mixed      one DEALER pipelining all N requests, the even ones with an
             empty delimiter frame first and the odd ones without, then
             reading every reply
"""

import json
import sys
import threading

import zmq

from client import fail, recv, new_socket  # this folder's helpers

TIMEOUT_MS = 5000


def emit(frames):
    print(json.dumps({"reply": [f.hex() for f in frames]}), flush=True)


def sock(ctx, kind):
    return new_socket(ctx, kind, timeout_ms=TIMEOUT_MS)


def request(i):
    return json.dumps({"command": "echo", "n": i}).encode()


def req_round_trips(s, n):
    for i in range(n):
        s.send(request(i))
        emit(recv(s, f"request {i}"))


def correlate(ctx, endpoint, n):
    s = sock(ctx, zmq.REQ)
    s.setsockopt(zmq.REQ_CORRELATE, 1)
    s.setsockopt(zmq.REQ_RELAXED, 1)
    s.connect(endpoint)
    req_round_trips(s, n)


def proxy(ctx, endpoint, n):
    front = sock(ctx, zmq.ROUTER)
    port = front.bind_to_random_port("tcp://127.0.0.1")
    back = sock(ctx, zmq.DEALER)
    back.connect(endpoint)
    # zmq.proxy runs until the context is terminated; a daemon thread dies
    # with the script.
    threading.Thread(target=zmq.proxy, args=(front, back), daemon=True).start()
    s = sock(ctx, zmq.REQ)
    s.connect(f"tcp://127.0.0.1:{port}")
    req_round_trips(s, n)
    sys.stdout.flush()
    # The proxy thread holds its sockets: leave without terminating ctx.
    import os
    os._exit(0)


def mixed(ctx, endpoint, n):
    s = sock(ctx, zmq.DEALER)
    s.connect(endpoint)
    for i in range(n):
        s.send_multipart([b"", request(i)] if i % 2 == 0 else [request(i)])
    for i in range(n):
        emit(recv(s, f"pipelined request {i}"))


def main():
    scenario, endpoint, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = {"correlate": correlate, "proxy": proxy, "mixed": mixed}.get(scenario)
    if run is None:
        fail(f"unknown scenario {scenario!r}")
    run(zmq.Context(), endpoint, n)


if __name__ == "__main__":
    main()

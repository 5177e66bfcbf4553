"""libzmq clients that load the server as the flow-control tests need
(tests/flow_test.go).

Run with Debian's pyzmq: /usr/bin/python3 flow.py SCENARIO ENDPOINT [options].
Each scenario prints one JSON object on stdout with what it observed and
leaves the judging to the Go test. Every receive has a timeout and every
socket LINGER 0, so it never hangs.

Scenarios:
  majordomo  the ZeroMQ guide's mdclient2 against a Majordomo broker, with
             an mdworker ("echo") in a process of its own: N requests sent
             on one DEALER before any reply is read, then N replies read.
             Prints {"received": n, "in_order": bool, "bad": [first bad
             replies], "worker_served": n}
  mdworker   the worker majordomo starts: prints "ready" once registered,
             serves until its stdin closes, then prints how many it served
  pipeline   one DEALER pipelining N echo requests and reading replies as
             fast as it can (a poll loop), RUNS times; a socket monitor
             counts disconnects. Prints {"runs": [{"received", "in_order",
             "errors"}...], "disconnects": n}
"""

import argparse
import json
import subprocess
import sys

import zmq

from client import fail, new_socket  # this folder's helpers

TIMEOUT_MS = 30000  # longest wait for any one reply


def socket(ctx, kind):
    return new_socket(ctx, kind, timeout_ms=TIMEOUT_MS)


def mdworker(ctx, args):
    """An MDP/0.1 worker offering "echo": READY, then REPLY to each
    REQUEST with its body; heartbeats are ignored. It stops when its stdin
    closes."""
    w = socket(ctx, zmq.DEALER)
    w.connect(args.endpoint)
    w.send_multipart([b"", b"MDPW01", b"\x01", b"echo"])
    print("ready", flush=True)
    poller = zmq.Poller()
    poller.register(w, zmq.POLLIN)
    poller.register(sys.stdin, zmq.POLLIN)
    served = 0
    while True:
        events = dict(poller.poll())
        if sys.stdin.fileno() in events:
            break
        while True:
            try:
                msg = w.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            # ["", "MDPW01", command, ...]
            if len(msg) >= 6 and msg[2] == b"\x02":
                w.send_multipart([b"", b"MDPW01", b"\x03", msg[3], b""] + msg[5:])
                served += 1
    print(served, flush=True)


def majordomo(ctx, args):
    worker = subprocess.Popen([sys.executable, "-E", __file__, "mdworker", args.endpoint],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if worker.stdout.readline().strip() != "ready":
            fail("the worker did not start")
        c = socket(ctx, zmq.DEALER)
        c.connect(args.endpoint)
        for i in range(args.requests):  # mdclient2: send them all first
            try:
                c.send_multipart([b"", b"MDPC01", b"echo", str(i).encode()])
            except zmq.Again:
                fail(f"could not send request {i} within {TIMEOUT_MS} ms")
        received, in_order, bad = 0, True, []
        for i in range(args.requests):
            try:
                reply = c.recv_multipart()
            except zmq.Again:
                break
            received += 1
            if reply != [b"", b"MDPC01", b"echo", str(i).encode()]:
                in_order = False
                if len(bad) < 5:
                    bad.append([f.decode("utf-8", "replace") for f in reply])
    finally:
        worker.stdin.close()
        served = int(worker.stdout.readline() or -1)
        worker.wait()
    print(json.dumps({"received": received, "in_order": in_order, "bad": bad, "worker_served": served}), flush=True)


def pipeline(ctx, args):
    s = socket(ctx, zmq.DEALER)
    monitor = s.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    monitor.setsockopt(zmq.LINGER, 0)
    s.connect(args.endpoint)
    poller = zmq.Poller()
    runs = []
    for run in range(args.runs):
        sent = received = errors = 0
        in_order = True
        while received < args.requests:
            poller.register(s, zmq.POLLIN | (zmq.POLLOUT if sent < args.requests else 0))
            events = dict(poller.poll(TIMEOUT_MS))
            if not events:
                fail(f"run {run}: nothing happened for {TIMEOUT_MS} ms ({sent} sent, {received} received)")
            if events.get(s, 0) & zmq.POLLIN:
                while True:
                    try:
                        reply = s.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if b'"error"' in reply:
                        errors += 1
                    elif reply != b'{"command":"echo","i":%d}' % received:
                        in_order = False
                    received += 1
            if events.get(s, 0) & zmq.POLLOUT and sent < args.requests:
                while sent < args.requests:
                    try:
                        s.send(b'{"command":"echo","i":%d}' % sent, zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    sent += 1
        runs.append({"received": received, "in_order": in_order, "errors": errors})
    disconnects = 0
    while monitor.poll(100):
        monitor.recv_multipart()
        disconnects += 1
    print(json.dumps({"runs": runs, "disconnects": disconnects}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["majordomo", "mdworker", "pipeline"])
    p.add_argument("endpoint")
    p.add_argument("--requests", type=int, default=100000)
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    ctx = zmq.Context()
    try:
        {"majordomo": majordomo, "mdworker": mdworker, "pipeline": pipeline}[args.scenario](ctx, args)
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    main()

"""Lazy Pirate clients (the ZeroMQ guide's reliable request-reply on the
client side) for the HAProxy test (tests/haproxy_test.go).

Run with Debian's pyzmq: /usr/bin/python3 lazy_pirate.py ENDPOINT [options].

Each of --clients clients, on a thread of its own, sends requests one at a
time over a REQ or DEALER socket: {"command": C, "client": i, "seq": n}
plus the --fields given.
When no reply comes within --timeout-ms it closes the socket (LINGER 0),
opens a new one and sends the same request again, up to --retries times.
A request fails when it gets an error reply ({"error": ...}) or exhausts
its retries. A reply that names its server ({"instance": name}) is counted
for that server. Clients stop after --requests requests each, or, with
--until-eof, once stdin closes (each finishes the request it is on).

It prints JSON lines on stdout as things happen:
  {"event": "served", "clients": {i: server}, "servers": {server: n}}
      once every client has had its first reply (who answered each)
  {"event": "moved", "client": i, "from": server, "to": server}
      when another server answers a client than the one before
  {"event": "failure", "client": i, "seq": n, "reason": code or "timeout"}
and at the end one line per client and the totals:
  {"client": i, "sent", "replies", "retries", "failures", "servers", "last"}
  {"totals": {"sent", "replies", "retries", "failures", "servers"}}
It exits 1 with a message on stderr when it cannot run at all.
"""

import argparse
import json
import sys
import threading
import time

import zmq

from client import fail, new_socket

output = threading.Lock()


def emit(**fields):
    with output:
        print(json.dumps(fields), flush=True)


class Served:
    """Waits for every client's first reply and reports who answered."""

    def __init__(self, clients):
        self.lock = threading.Lock()
        self.left = clients
        self.first = {}

    def first_reply(self, client, server):
        with self.lock:
            self.first[client] = server
            self.left -= 1
            if self.left > 0:
                return
            counts = {}
            for s in self.first.values():
                counts[s] = counts.get(s, 0) + 1
            first = {str(c): s for c, s in sorted(self.first.items())}
        emit(event="served", clients=first, servers=counts)


class Client:
    """One Lazy Pirate client and its counts; run() is its thread."""

    def __init__(self, index, ctx, args, stop, served):
        self.i, self.ctx, self.args = index, ctx, args
        self.stop, self.served = stop, served
        self.kind = zmq.REQ if args.socket == "req" else zmq.DEALER
        self.sent = self.replies = self.retries = self.failures = 0
        self.servers = {}
        self.last = None

    def connect(self):
        options = []
        if self.args.heartbeat_ms:
            options = [
                (zmq.HEARTBEAT_IVL, self.args.heartbeat_ms),
                (zmq.HEARTBEAT_TIMEOUT, 3 * self.args.heartbeat_ms),
            ]
        s = new_socket(self.ctx, self.kind, options=options, timeout_ms=self.args.timeout_ms)
        s.connect(self.args.endpoint)
        return s

    def wait_reply(self, sock, seq):
        """The reply to request seq, or None after the timeout. A reply to
        another request (none should come, as every retry has a fresh
        socket) is skipped."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        deadline = time.monotonic() + self.args.timeout_ms / 1000
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(int(left * 1000) + 1):
                return None
            frames = sock.recv_multipart()
            try:
                reply = json.loads(frames[-1])
            except ValueError:
                return {"error": {"code": "not_json", "message": repr(frames)}}
            if isinstance(reply, dict) and "error" not in reply and reply.get("seq") not in (None, seq):
                continue
            return reply

    def request(self, sock, seq):
        """Sends request seq until it is answered or out of retries; returns
        the socket to go on with."""
        request = json.dumps({**self.args.fields, "command": self.args.command, "client": self.i, "seq": seq}).encode()
        self.sent += 1
        attempt = 0
        while True:
            reply = None
            try:
                sock.send(request)
                reply = self.wait_reply(sock, seq)
            except zmq.Again:  # the send timed out: nowhere to send to
                pass
            if reply is not None:
                self.answered(seq, reply)
                return sock
            sock.close(linger=0)
            sock = self.connect()
            if attempt == self.args.retries:
                self.failed(seq, "timeout")
                return sock
            attempt += 1
            self.retries += 1

    def answered(self, seq, reply):
        if isinstance(reply, dict) and "error" in reply:
            error = reply["error"]
            self.failed(seq, error.get("code", "error") if isinstance(error, dict) else str(error))
            return
        self.replies += 1
        server = reply.get("instance") if isinstance(reply, dict) else None
        if server is None:
            return
        self.servers[server] = self.servers.get(server, 0) + 1
        if self.last is None:
            self.served.first_reply(self.i, server)
        elif server != self.last:
            emit(event="moved", client=self.i, **{"from": self.last, "to": server})
        self.last = server

    def failed(self, seq, reason):
        self.failures += 1
        emit(event="failure", client=self.i, seq=seq, reason=reason)

    def run(self):
        sock = self.connect()
        seq = 0
        while not self.stop.is_set() and (self.args.requests == 0 or seq < self.args.requests):
            seq += 1
            sock = self.request(sock, seq)
            if self.args.interval_ms:
                self.stop.wait(self.args.interval_ms / 1000)
        sock.close(linger=0)

    def summary(self):
        return {
            "client": self.i, "sent": self.sent, "replies": self.replies,
            "retries": self.retries, "failures": self.failures,
            "servers": self.servers, "last": self.last,
        }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("endpoint")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--socket", choices=["req", "dealer"], default="req")
    p.add_argument("--command", default="whoami", help="the request's command")
    p.add_argument("--fields", type=json.loads, default={}, help="more fields of every request, a JSON object")
    p.add_argument("--requests", type=int, default=0, help="requests per client (0: until --until-eof)")
    p.add_argument("--until-eof", action="store_true", help="stop once stdin closes")
    p.add_argument("--timeout-ms", type=int, default=2500, help="wait for a reply before retrying")
    p.add_argument("--retries", type=int, default=3, help="retries of one request before it fails")
    p.add_argument("--interval-ms", type=int, default=0, help="pause between a client's requests")
    p.add_argument("--heartbeat-ms", type=int, default=0, help="ZMQ_HEARTBEAT_IVL (0: none)")
    args = p.parse_args()
    if args.requests == 0 and not args.until_eof:
        fail("give --requests or --until-eof")

    ctx = zmq.Context()
    stop = threading.Event()
    served = Served(args.clients)
    clients = [Client(i, ctx, args, stop, served) for i in range(args.clients)]
    threads = [threading.Thread(target=c.run) for c in clients]
    for t in threads:
        t.start()
    if args.until_eof:
        sys.stdin.read()
        stop.set()
    for t in threads:
        t.join()

    totals = {"sent": 0, "replies": 0, "retries": 0, "failures": 0, "servers": {}}
    for c in clients:
        s = c.summary()
        emit(**s)
        for k in ("sent", "replies", "retries", "failures"):
            totals[k] += s[k]
        for server, n in s["servers"].items():
            totals["servers"][server] = totals["servers"].get(server, 0) + n
    emit(totals=totals)
    ctx.term()


if __name__ == "__main__":
    main()

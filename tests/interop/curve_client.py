"""libzmq CURVE clients and a CURVE server for tests/curve_interop_test.go.

Run with Debian's pyzmq: /usr/bin/python3 curve_client.py SCENARIO [args].
Each scenario prints what it observed as JSON lines on stdout and leaves the
judging to the Go test; it exits 1 with a message on stderr when it cannot
finish. Every socket has LINGER 0 and every wait a timeout.

Client key options (request, revoke):
  --server-key Z85     the server's public key
  --client-cert PATH   a secret certificate (zcert) to take the client's
                       keys from; without it a fresh key pair is made
  --null               no CURVE at all: a NULL client

Scenarios:
  loadcert PATH...     zmq.auth.load_certificate on each path; one line per
                       path {"path", "public", "secret" (null if none),
                       "derived_public" (curve_public(secret), or null)}
  certs DIR NAME...    zmq.auth.create_certificates(DIR, NAME) for each name;
                       one line per name {"name", "public", "secret",
                       "public_file", "secret_file"}
  request ENDPOINT SPEC...
                       one DEALER (or REQ) sends one message whose frames the
                       specs give ("text:abc", "size:N" for N bytes of the
                       pattern (i*7+N) mod 256) and waits --timeout-ms for the
                       reply (with --retry, on a new connection every
                       RETRY_MS); prints {"client_key", "reply": [hex...] or
                       null, "events": [monitor event names], "attempts"}
  many ENDPOINT CERT...
                       one DEALER per secret certificate, identities
                       PREFIXnn, each sends --request, all before any reply
                       is read; one line per client {"identity",
                       "client_key", "replies": [[text...]...]}
  revoke ENDPOINT --keep CERT --drop CERT
                       two clients with monitors each make a round trip
                       ("whoami") and it prints {"keep": [text...],
                       "drop": [text...]}; then it waits for a line on stdin
                       (the test removes drop's key), waits up to --timeout-ms
                       for drop's DISCONNECTED, makes a round trip with keep,
                       tries one with drop, and prints {"drop_events",
                       "keep_events", "keep_reply", "drop_reply"}
  router --allow DIR   binds a CURVE ROUTER on a free loopback port, with
                       pyzmq's authenticator allowing the client keys of the
                       certificates in DIR; prints {"endpoint",
                       "server_key"}, then answers each message [id, frames]
                       with [id, {"user": its User-Id, "frames": [text...]}]
                       until stdin closes
"""

import argparse
import json
import os
import sys
import threading
import time

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from client import fail, new_socket, run  # this folder's helpers

TIMEOUT_MS = 5000
RETRY_MS = 500  # how long one attempt of request --retry waits


def emit(**fields):
    print(json.dumps(fields), flush=True)


def text(b):
    return b.decode() if b is not None else None


def frame_from_spec(spec):
    kind, _, value = spec.partition(":")
    if kind == "text":
        return value.encode()
    if kind == "size":
        n = int(value)
        return bytes((i * 7 + n) % 256 for i in range(n))
    fail(f"bad frame spec {spec!r} (want text:... or size:N)")


def curve_options(args):
    """The socket options of a CURVE (or, with --null, NULL) client, and
    the client's public key (None for NULL)."""
    if args.null:
        return [], None
    if not args.server_key:
        fail("--server-key is required unless --null")
    if args.client_cert:
        public, secret = zmq.auth.load_certificate(args.client_cert)
        if secret is None:
            fail(f"{args.client_cert} holds no secret key")
    else:
        public, secret = zmq.curve_keypair()
    return [
        (zmq.CURVE_SERVERKEY, args.server_key.encode()),
        (zmq.CURVE_PUBLICKEY, public),
        (zmq.CURVE_SECRETKEY, secret),
    ], public.decode()


class Monitored:
    """A socket with a monitor attached before it connects."""

    def __init__(self, ctx, kind, endpoint, options, identity=None, timeout_ms=TIMEOUT_MS):
        self.sock = new_socket(ctx, kind, identity, options, timeout_ms)
        self.monitor = self.sock.get_monitor_socket()
        self.monitor.setsockopt(zmq.LINGER, 0)
        self.events = []
        self.sock.connect(endpoint)

    def drain(self, wait_ms=0, until_event=None):
        """Collect monitor events for up to wait_ms, returning early once
        until_event (a name) has been seen."""
        deadline = time.monotonic() + wait_ms / 1000
        while True:
            if until_event is not None and until_event in self.events:
                return
            left = deadline - time.monotonic()
            if not self.monitor.poll(max(0, int(left * 1000)) + 1):
                if left <= 0:
                    return
                continue
            ev = recv_monitor_message(self.monitor)["event"]
            try:
                self.events.append(zmq.Event(ev).name)
            except ValueError:
                self.events.append(str(int(ev)))

    def reply(self, wait_ms):
        """The next message within wait_ms, or None."""
        if not self.sock.poll(wait_ms):
            return None
        return self.sock.recv_multipart()

    def round_trip(self, request, wait_ms):
        """The reply to request as text frames, or None if it could not be
        sent (a DEALER with no connection blocks, up to SNDTIMEO) or no
        reply came within wait_ms."""
        try:
            self.sock.send(request)
        except zmq.Again:
            return None
        reply = self.reply(wait_ms)
        return [f.decode() for f in reply] if reply is not None else None

    def close(self):
        self.sock.disable_monitor()
        self.monitor.close()
        self.sock.close()


def loadcert(ctx, args):
    for path in args.paths:
        public, secret = zmq.auth.load_certificate(path)
        emit(path=path, public=text(public), secret=text(secret),
             derived_public=text(zmq.curve_public(secret)) if secret else None)


def certs(ctx, args):
    os.makedirs(args.dir, exist_ok=True)
    for name in args.names:
        public_file, secret_file = zmq.auth.create_certificates(args.dir, name)
        public, secret = zmq.auth.load_certificate(secret_file)
        emit(name=name, public=text(public), secret=text(secret),
             public_file=public_file, secret_file=secret_file)


def request(ctx, args):
    options, client_key = curve_options(args)
    kind = zmq.REQ if args.socket == "req" else zmq.DEALER
    frames = [frame_from_spec(s) for s in args.specs]
    deadline = time.monotonic() + args.timeout_ms / 1000
    events, attempts, reply = [], 0, None
    while reply is None:
        # With --retry, each attempt is a new connection that waits at most
        # RETRY_MS: libzmq may not reconnect after a refusal.
        left = int((deadline - time.monotonic()) * 1000)
        if attempts and (not args.retry or left <= 0):
            break
        wait = min(left, RETRY_MS) if args.retry else left
        attempts += 1
        m = Monitored(ctx, kind, args.endpoint, options, args.identity)
        m.sock.send_multipart(frames)
        reply = m.reply(max(wait, 0))
        m.drain(50)
        m.close()
        events += m.events
    emit(client_key=client_key, reply=[f.hex() for f in reply] if reply is not None else None,
         events=events, attempts=attempts)


def many(ctx, args):
    socks = {}
    keys = {}
    for n, cert in enumerate(args.certs):
        identity = f"{args.prefix}{n:02d}"
        args.client_cert = cert
        options, keys[identity] = curve_options(args)
        socks[identity] = new_socket(ctx, zmq.DEALER, identity, options)
        socks[identity].connect(args.endpoint)
    for identity, s in socks.items():
        s.send(args.request.encode())
    replies = {i: [] for i in socks}
    poller = zmq.Poller()
    for s in socks.values():
        poller.register(s, zmq.POLLIN)
    by_socket = {s: i for i, s in socks.items()}
    deadline = time.monotonic() + args.timeout_ms / 1000
    grace = None  # after every client has a reply, a little longer for strays
    while True:
        now = time.monotonic()
        if grace is None and all(replies.values()):
            grace = now + 0.1
        until = grace if grace is not None else deadline
        if now >= until:
            break
        for s, _ in poller.poll(int((until - now) * 1000) + 1):
            replies[by_socket[s]].append([f.decode() for f in s.recv_multipart()])
    for identity in socks:
        emit(identity=identity, client_key=keys[identity], replies=replies[identity])


def revoke(ctx, args):
    clients = {}
    for name, cert in (("keep", args.keep), ("drop", args.drop)):
        args.client_cert = cert
        options, _ = curve_options(args)
        clients[name] = Monitored(ctx, zmq.DEALER, args.endpoint, options, f"py-{name}")
    first = {}
    for name, m in clients.items():
        first[name] = m.round_trip(b"whoami", args.timeout_ms)
        if first[name] is None:
            fail(f"{name}: no reply to whoami within {args.timeout_ms} ms")
    emit(**first)
    if not sys.stdin.readline():
        fail("stdin closed before the go-ahead")
    drop, keep = clients["drop"], clients["keep"]
    drop.drain(args.timeout_ms, until_event="DISCONNECTED")
    keep_reply = keep.round_trip(b"whoami", args.timeout_ms)
    drop_reply = drop.round_trip(b"whoami", args.silence_ms)
    keep.drain(50)
    drop.drain(50)
    emit(drop_events=drop.events, keep_events=keep.events, keep_reply=keep_reply, drop_reply=drop_reply)
    for m in clients.values():
        m.close()


def router(ctx, args):
    auth = ThreadAuthenticator(ctx)
    auth.start()
    try:
        auth.configure_curve(domain="*", location=args.allow)
        public, secret = zmq.curve_keypair()
        s = new_socket(ctx, zmq.ROUTER)
        s.curve_server = True
        s.curve_publickey = public
        s.curve_secretkey = secret
        s.bind("tcp://127.0.0.1:*")
        emit(endpoint=s.getsockopt_string(zmq.LAST_ENDPOINT), server_key=public.decode())
        stop = threading.Event()

        def watch_stdin():
            sys.stdin.read()
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        while not stop.is_set():
            if not s.poll(100):
                continue
            frames = s.recv_multipart(copy=False)
            ident, body = frames[0], frames[1:]
            user = body[0].get("User-Id") if body else None
            answer = {"user": user, "frames": [f.bytes.decode("utf-8", "replace") for f in body]}
            s.send_multipart([ident.bytes, json.dumps(answer).encode()])
        s.close()
    finally:
        auth.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="scenario", required=True)

    def client_flags(sp):
        sp.add_argument("--server-key")
        sp.add_argument("--client-cert")
        sp.add_argument("--null", action="store_true")
        sp.add_argument("--timeout-ms", type=int, default=TIMEOUT_MS)

    lc = sub.add_parser("loadcert")
    lc.add_argument("paths", nargs="+")
    lc.set_defaults(run=loadcert)

    c = sub.add_parser("certs")
    c.add_argument("dir")
    c.add_argument("names", nargs="+")
    c.set_defaults(run=certs)

    r = sub.add_parser("request")
    r.add_argument("endpoint")
    r.add_argument("specs", nargs="+")
    r.add_argument("--socket", choices=["dealer", "req"], default="dealer")
    r.add_argument("--identity")
    r.add_argument("--retry", action="store_true",
                   help=f"until --timeout-ms, try again on a new connection every {RETRY_MS} ms")
    client_flags(r)
    r.set_defaults(run=request)

    m = sub.add_parser("many")
    m.add_argument("endpoint")
    m.add_argument("certs", nargs="+")
    m.add_argument("--prefix", default="py-curve-")
    m.add_argument("--request", default="whoami")
    client_flags(m)
    m.set_defaults(run=many)

    v = sub.add_parser("revoke")
    v.add_argument("endpoint")
    v.add_argument("--keep", required=True)
    v.add_argument("--drop", required=True)
    v.add_argument("--silence-ms", type=int, default=1000,
                   help="how long the revoked client waits for a reply it must not get")
    client_flags(v)
    v.set_defaults(run=revoke)

    ro = sub.add_parser("router")
    ro.add_argument("--allow", required=True)
    ro.set_defaults(run=router)

    run(p)


if __name__ == "__main__":
    main()

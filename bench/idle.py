# Holds N idle DEALER connections to a server until killed: python3 bench/idle.py ENDPOINT N [NAME_PREFIX]
import sys, time, zmq
ep, n = sys.argv[1], int(sys.argv[2])
prefix = sys.argv[3] if len(sys.argv) > 3 else "idle-"
ctx = zmq.Context(io_threads=1)
ctx.set(zmq.MAX_SOCKETS, n + 100)
socks = []
for i in range(n):
    s = ctx.socket(zmq.DEALER); s.setsockopt_string(zmq.IDENTITY, prefix + "%05d" % i); s.setsockopt(zmq.LINGER, 0); s.connect(ep); socks.append(s)
print("connected", n, flush=True)
while True:
    time.sleep(3600)

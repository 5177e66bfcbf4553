#!/usr/bin/env bash
# Throughput of moebius-js with its dashboard closed, polled (curl asking what
# the page asks, once a second) and open in headless Chromium, side by side, with IDLE idle clients connected (the dashboard's
# client list and status walk grow with them). Interleaved repetitions.
set -euo pipefail
ulimit -n 20000
cd "$(dirname "$0")/.."
B=${BUILD:-/tmp/moebius-bench}
mkdir -p $B
REPS=${REPS:-3} DUR=${DUR:-10} IDLE=${IDLE:-2000} CLIENTS=${CLIENTS:-12}
go build -o $B/mj ./cmd/moebius-js
cc -O2 -Wall -o $B/zload bench/zload.c -lzmq -pthread
free() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
PORT=$(free); ADMIN=$(free)
$B/mj serve --watch=false --log-level warn --bind tcp://127.0.0.1:$PORT --admin 127.0.0.1:$ADMIN --max-connections-per-address 0 bench/handlers.js 2>$B/server.log &
SPID=$!
trap 'kill $SPID $IPID 2>/dev/null; pkill -f "remote-debugging-port=0.*$ADMIN" 2>/dev/null || true' EXIT
until curl -sf http://127.0.0.1:$ADMIN/readyz >/dev/null; do sleep 0.1; done
/usr/bin/python3 bench/idle.py tcp://127.0.0.1:$PORT $IDLE >$B/idle.log 2>&1 &
IPID=$!
until [ "$(curl -s http://127.0.0.1:$ADMIN/dashboard/api/state?limit=1 | python3 -c 'import json,sys;print(json.load(sys.stdin)["totals"]["clients"])')" -ge "$IDLE" ]; do sleep 0.5; done
echo "server pid $SPID, $IDLE idle clients connected; $CLIENTS echo clients, $DUR s a run"
run() {
  $B/zload -e tcp://127.0.0.1:$PORT -c $CLIENTS -d $DUR -w 1 -p $SPID -l "$1"
}
for rep in $(seq $REPS); do
  run closed
  # polled: what the page asks of the server, without a browser on the same two cores
  ( while :; do curl -s -o /dev/null "http://127.0.0.1:$ADMIN/dashboard/api/state?sort=id&offset=0&limit=50"; sleep 1; done ) &
  PPID_=$!
  run polled
  kill $PPID_; wait $PPID_ 2>/dev/null || true
  chromium --headless --no-sandbox --disable-gpu --remote-debugging-port=0 --window-size=1400,900 "http://127.0.0.1:$ADMIN/" >$B/chromium.log 2>&1 &
  CPID=$!
  sleep 5 # the page loads and starts polling
  run open
  kill $CPID; wait $CPID 2>/dev/null || true
done

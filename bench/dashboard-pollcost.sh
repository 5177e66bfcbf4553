#!/usr/bin/env bash
# Server CPU per dashboard poll, with IDLE idle clients: the server's
# utime+stime (/proc/PID/stat) over WIN seconds without polls and with one
# poll a second (what an open dashboard asks), interleaved REPS times.
set -euo pipefail
ulimit -n 20000
cd "$(dirname "$0")/.."
B=${BUILD:-/tmp/moebius-bench}
mkdir -p $B
go build -o $B/mj ./cmd/moebius-js
IDLE=${IDLE:-10000} WIN=${WIN:-20} REPS=${REPS:-3}
free() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
PORT=$(free); ADMIN=$(free)
$B/mj serve --watch=false --log-level warn --bind tcp://127.0.0.1:$PORT --admin 127.0.0.1:$ADMIN --max-connections-per-address 0 --max-connections 20000 bench/handlers.js 2>$B/server.log &
SPID=$!
pids=()
trap 'kill $SPID "${pids[@]}" 2>/dev/null || true' EXIT
until curl -sf http://127.0.0.1:$ADMIN/readyz >/dev/null; do sleep 0.1; done
for i in $(seq 0 $((IDLE / 5000 - 1))); do # 5,000 a process: libzmq's own socket limit per context
  /usr/bin/python3 bench/idle.py tcp://127.0.0.1:$PORT 5000 "idle-$i-" >>$B/idle.log 2>&1 &
  pids+=($!)
done
clients() { curl -s "http://127.0.0.1:$ADMIN/dashboard/api/state?limit=1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["totals"]["clients"])'; }
until [ "$(clients)" -ge "$IDLE" ]; do sleep 1; done
sleep 5
cpu() { awk '{print $14+$15}' /proc/$SPID/stat; }
tck=$(getconf CLK_TCK)
echo "$IDLE idle clients; $WIN s windows"
for rep in $(seq $REPS); do
  a=$(cpu); sleep $WIN; b=$(cpu)
  echo "quiet  cpu_ms=$(( (b - a) * 1000 / tck ))"
  a=$(cpu); t0=$(date +%s.%N)
  for i in $(seq $WIN); do curl -s -o /dev/null "http://127.0.0.1:$ADMIN/dashboard/api/state?sort=id&offset=0&limit=50"; sleep 1; done
  b=$(cpu); t1=$(date +%s.%N)
  echo "polled cpu_ms=$(( (b - a) * 1000 / tck )) polls=$WIN secs=$(python3 -c "print(round($t1-$t0,1))")"
done
t0=$(date +%s%N); curl -s -o /dev/null "http://127.0.0.1:$ADMIN/dashboard/api/state?sort=id&offset=0&limit=50"; t1=$(date +%s%N)
echo "one poll took $(( (t1 - t0) / 1000000 )) ms wall"

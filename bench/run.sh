#!/usr/bin/env bash
# bench/run.sh: measure moebius-js side by side with the reference servers
# (raw libzmq C and Node.js + zeromq.js) on the contract of bench/handlers.js.
#
#   bench/run.sh [libzmq] [node] [moebius-js]      (default: all three)
#
# Environment (defaults in brackets):
#   REPS [2]            repetitions, interleaved: rep 1 of every server, then rep 2
#   PHASES ["echo pipeline mixed curve"]
#   CLIENTS ["1 12 100"] closed-loop clients of the echo phase
#   DUR [4] WARM [1]    measured and warm-up seconds of every zload echo run
#   PIPE_COUNT [100000] requests of the pipeline phase
#   SLEEPERS [1000] MIXED_CLIENTS [12] SETTLE [2]
#                       mixed phase: SLEEPERS clients hold sleeping handlers; SETTLE s
#                       later MIXED_CLIENTS echo clients are measured meanwhile
#   CURVE_CLIENTS [12]  curve phase: closed-loop clients of each CURVE and NULL echo run
#   MJS_ARGS []         extra `serve` arguments for moebius-js, e.g. "--workers 2"
#   MJS_BIN []          a moebius-js binary to use instead of building the repo's
#   WORK [/tmp/moebius-bench]  BUILD [$WORK/build]  RESULTS [$WORK/results-<time>.txt]
#   ZLOAD_IO_THREADS [1] libzmq I/O threads of the load client
#
# Every server runs as a fresh process on a free loopback port for each
# (rep, phase). The RESULT lines go to $RESULTS; a summary table is printed
# at the end (bench/README.md explains it).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/moebius-bench}
BUILD=${BUILD:-$WORK/build}
LOGS=${LOGS:-$WORK/logs}
RESULTS=${RESULTS:-$WORK/results-$(date +%Y%m%d-%H%M%S).txt}
REPS=${REPS:-2}
PHASES=${PHASES:-"echo pipeline mixed curve"}
CLIENTS=${CLIENTS:-"1 12 100"}
DUR=${DUR:-4}
WARM=${WARM:-1}
PIPE_COUNT=${PIPE_COUNT:-100000}
SLEEPERS=${SLEEPERS:-1000}
MIXED_CLIENTS=${MIXED_CLIENTS:-12}
SETTLE=${SETTLE:-2}
CURVE_CLIENTS=${CURVE_CLIENTS:-12}
MJS_ARGS=${MJS_ARGS:-}
MJS_BIN=${MJS_BIN:-}
ZLOAD_IO_THREADS=${ZLOAD_IO_THREADS:-1}
CC=${CC:-cc}

log() { printf '[run.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
fsum() { awk "BEGIN { printf \"%.3f\", ($*) }"; } # float arithmetic

if [ $# -gt 0 ]; then SERVERS=("$@"); else SERVERS=(libzmq node moebius-js); fi
for s in "${SERVERS[@]}"; do
    case $s in libzmq | node | moebius-js) ;; *) die "unknown server '$s' (libzmq, node, moebius-js)" ;; esac
done
for p in $PHASES; do
    case $p in echo | pipeline | mixed | curve) ;; *) die "unknown phase '$p' (echo, pipeline, mixed, curve)" ;; esac
done
want_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }
command -v python3 >/dev/null || die "python3 is needed (free ports, summary)"
command -v "$CC" >/dev/null || die "no C compiler ($CC)"

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * SLEEPERS + 200)) ]; then
    log "warning: ulimit -n is $(ulimit -n); the mixed phase needs about $((2 * SLEEPERS + 200))"
fi

mkdir -p "$BUILD" "$LOGS" "$(dirname "$RESULTS")"
cd "$REPO"

# ---- build ----
log "building the C programs into $BUILD"
$CC -O2 -Wall -o "$BUILD/zload" bench/zload.c -lzmq -pthread || die "zload does not build (apt-get install libzmq3-dev)"
$CC -O2 -Wall -o "$BUILD/echo" bench/ref/echo.c -lzmq
$CC -O2 -Wall -o "$BUILD/pipeline" bench/pipeline.c -lzmq

want() { local s; for s in "${SERVERS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
drop() { local s out=(); for s in "${SERVERS[@]}"; do [ "$s" = "$1" ] || out+=("$s"); done; SERVERS=("${out[@]}"); }

if want node; then
    if command -v node >/dev/null && command -v npm >/dev/null; then
        log "installing the Node reference into $BUILD/node"
        mkdir -p "$BUILD/node"
        cp bench/ref/node/server.js bench/ref/node/package.json "$BUILD/node/"
        if ! (cd "$BUILD/node" && npm install --no-audit --no-fund --loglevel=error >"$LOGS/npm-install.log" 2>&1 &&
            node -e 'require("zeromq")'); then
            log "warning: npm install of zeromq failed (see $LOGS/npm-install.log): skipping node"
            drop node
        fi
    else
        log "warning: node or npm not found: skipping the Node reference"
        drop node
    fi
fi

# The curve phase makes its keys with `moebius-js keygen`, so it needs the
# binary even when moebius-js is not measured.
if want moebius-js || want_phase curve; then
    if [ -z "$MJS_BIN" ]; then
        log "building moebius-js (go build ./cmd/moebius-js)"
        go build -o "$BUILD/moebius-js" ./cmd/moebius-js || die "go build failed"
        MJS_BIN=$BUILD/moebius-js
    fi
fi
[ ${#SERVERS[@]} -gt 0 ] || die "no server left to measure"

# ---- CURVE keys (curve phase) ----
# One server and one client key pair, fresh for every run, as CZMQ
# certificates: the server's secret certificate is moebius-js's --curve-key,
# the Z85 keys read from the certificates go to echo (CURVE_SECRET) and zload
# (-k server public, -K client secret). All the clients share the client key.
CURVE_DIR=$BUILD/curve
SERVER_PUBLIC= SERVER_SECRET= CLIENT_SECRET=
zcert_key() { sed -n "s/^[[:space:]]*$1 = \"\(.*\)\"[[:space:]]*\$/\1/p" "$2"; } # key-name file
if want_phase curve; then
    log "making the CURVE key pairs in $CURVE_DIR (moebius-js keygen)"
    mkdir -p "$CURVE_DIR"
    rm -f "$CURVE_DIR/server" "$CURVE_DIR/server_secret" "$CURVE_DIR/client" "$CURVE_DIR/client_secret"
    for k in server client; do
        "$MJS_BIN" keygen "$CURVE_DIR/$k" >/dev/null 2>>"$LOGS/keygen.log" || die "moebius-js keygen failed (see $LOGS/keygen.log)"
    done
    SERVER_PUBLIC=$(zcert_key public-key "$CURVE_DIR/server")
    SERVER_SECRET=$(zcert_key secret-key "$CURVE_DIR/server_secret")
    CLIENT_SECRET=$(zcert_key secret-key "$CURVE_DIR/client_secret")
    for k in "$SERVER_PUBLIC" "$SERVER_SECRET" "$CLIENT_SECRET"; do
        [ ${#k} -eq 40 ] || die "no Z85 key read from the certificates in $CURVE_DIR"
    done
fi

# ---- servers ----
free_port() { # a free loopback port outside 5555-5600
    python3 - <<'EOF'
import socket
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    if not 5555 <= p <= 5600:
        print(p)
        break
EOF
}

listening() { # is something listening on 127.0.0.1:$1?
    if command -v ss >/dev/null; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        python3 - "$1" <<'EOF'
import sys
port = "%04X" % int(sys.argv[1])
for line in open("/proc/net/tcp"):
    f = line.split()
    if f[1].endswith(":" + port) and f[3] == "0A":
        sys.exit(0)
sys.exit(1)
EOF
    fi
}

SPID= PORT=
SEC=null # null or curve: the security of the next server started
start_server() { # name logfile -> SPID, PORT
    local name=$1 logf=$2 try curve_secret= mjs_curve=()
    if [ "$SEC" = curve ]; then
        curve_secret=$SERVER_SECRET
        mjs_curve=(--curve-key "$CURVE_DIR/server_secret")
    fi
    for try in 1 2 3; do
        PORT=$(free_port)
        case $name in
        libzmq) CURVE_SECRET=$curve_secret "$BUILD/echo" "$PORT" >"$logf" 2>&1 & ;;
        node) node "$BUILD/node/server.js" "$PORT" >"$logf" 2>&1 & ;;
        # shellcheck disable=SC2086 # MJS_ARGS is split on purpose
        moebius-js) "$MJS_BIN" serve --bind "tcp://127.0.0.1:$PORT" --watch=false "${mjs_curve[@]}" $MJS_ARGS bench/handlers.js >"$logf" 2>&1 & ;;
        esac
        SPID=$!
        local i
        for i in $(seq 200); do
            if ! kill -0 "$SPID" 2>/dev/null; then break; fi
            if listening "$PORT"; then return 0; fi
            sleep 0.05
        done
        log "warning: $name did not come up on port $PORT (try $try, see $logf)"
        stop_server
    done
    die "$name does not start"
}

stop_server() {
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    local i
    for i in $(seq 100); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo -1; }
CLK_TCK=$(getconf CLK_TCK)

record() { # prefix result-line...: append "RESULT <prefix> <fields>" to $RESULTS
    local prefix=$1 line
    shift
    for line in "$@"; do
        line="RESULT $prefix ${line#RESULT }"
        echo "$line" >>"$RESULTS"
        echo "  $line" >&2
    done
}

zload() { # runs the load client; prints its RESULT line (also on failure)
    local out rc=0
    out=$(timeout "$(fsum "$WARM + $DUR + 40")" "$BUILD/zload" -t "$ZLOAD_IO_THREADS" "$@") || rc=$?
    out=$(grep '^RESULT ' <<<"$out" || true)
    [ -n "$out" ] || out="RESULT label=- mode=- replies=0 qps=0"
    echo "$out rc=$rc"
}

# ---- phases ----
phase_echo() { # server rep
    local c
    for c in $CLIENTS; do
        record "phase=echo server=$1 rep=$2" \
            "$(zload -e "tcp://127.0.0.1:$PORT" -c "$c" -d "$DUR" -w "$WARM" -p "$SPID" -l "$1")"
        sleep 0.5 # the clients' connections close before the next run
    done
}

phase_pipeline() { # server rep
    local t0 t1 c0 c1 out rc=0
    c0=$(cpu_ticks "$SPID")
    out=$(timeout 120 "$BUILD/pipeline" "tcp://127.0.0.1:$PORT" "$PIPE_COUNT" 2>&1) || rc=$?
    c1=$(cpu_ticks "$SPID")
    out=$(grep '^RESULT ' <<<"$out" || echo "RESULT mode=pipeline count=$PIPE_COUNT qps=0 failed=1")
    local secs cpu
    secs=$(sed -n 's/.* secs=\([0-9.]*\).*/\1/p' <<<"$out")
    if [ "$c0" -ge 0 ] && [ "$c1" -ge 0 ] && [ -n "$secs" ]; then
        cpu="cpu_us_per_req=$(fsum "($c1 - $c0) / $CLK_TCK * 1e6 / $PIPE_COUNT") server_cores=$(fsum "($c1 - $c0) / $CLK_TCK / $secs")"
    else
        cpu="cpu_us_per_req=- server_cores=-"
    fi
    record "phase=pipeline server=$1 rep=$2" "${out#RESULT } clients=1 $cpu rc=$rc"
}

phase_mixed() { # server rep
    if [ "$(fsum "$SETTLE + $WARM + $DUR < 9.5")" != 1.000 ]; then
        log "warning: SETTLE+WARM+DUR >= 9.5 s: the echo window outlasts the 10 s sleeps"
    fi
    local sleepout=$WORK/.sleep.$$ t_sleep t_echo sl rc=0
    t_sleep=$(date +%s.%N)
    timeout 60 "$BUILD/zload" -m sleep -e "tcp://127.0.0.1:$PORT" -c "$SLEEPERS" -d 30 -l "$1" >"$sleepout" 2>&1 &
    local zpid=$!
    sleep "$SETTLE"
    t_echo=$(date +%s.%N)
    record "phase=mixed server=$1 rep=$2 sleepers=$SLEEPERS" \
        "$(zload -e "tcp://127.0.0.1:$PORT" -c "$MIXED_CLIENTS" -d "$DUR" -w "$WARM" -o 100000 -p "$SPID" -l "$1")"
    wait "$zpid" || rc=$?
    sl=$(grep '^RESULT ' "$sleepout" || echo "RESULT mode=sleep clients=$SLEEPERS replies=0")
    rm -f "$sleepout"
    # Were all the sleepers held through the echo window? They were sent from
    # 0 s on (zload start) and replied from first_s to last_s, 10 s after.
    local w0 w1 first last held
    w0=$(fsum "$t_echo - $t_sleep + $WARM")
    w1=$(fsum "$w0 + $DUR")
    first=$(sed -n 's/.* first_s=\([0-9.]*\).*/\1/p' <<<"$sl")
    last=$(sed -n 's/.* last_s=\([0-9.]*\).*/\1/p' <<<"$sl")
    held=no
    if [ -n "$first" ] && [ -n "$last" ] && [ "$(fsum "$last - 10 <= $w0 && $first >= $w1")" = 1.000 ]; then held=yes; fi
    record "phase=mixed-sleep server=$1 rep=$2" "${sl#RESULT } window_s=$w0-$w1 held=$held rc=$rc"
}

phase_curve() { # server rep; SEC says whether the server and the clients speak CURVE
    local keys=() out
    [ "$SEC" = curve ] && keys=(-k "$SERVER_PUBLIC" -K "$CLIENT_SECRET")
    out=$(zload -e "tcp://127.0.0.1:$PORT" -c "$CURVE_CLIENTS" -d "$DUR" -w "$WARM" -p "$SPID" -l "$1-$SEC" "${keys[@]}")
    [[ $out == *" sec="* ]] || out="sec=$SEC clients=$CURVE_CLIENTS ${out#RESULT }" # zload printed nothing
    record "phase=curve server=$1 rep=$2" "$out"
}

# ---- run ----
{
    echo "# moebius-js side-by-side benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# host: $(uname -srm), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# repo: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -n "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] && echo ' (with local changes)')"
    echo "# libzmq $(pkg-config --modversion libzmq 2>/dev/null || echo '?'), node $(node --version 2>/dev/null || echo -), $(go version 2>/dev/null || echo 'go ?')"
    echo "# servers: ${SERVERS[*]}; phases: $PHASES; REPS=$REPS CLIENTS=\"$CLIENTS\" DUR=$DUR WARM=$WARM PIPE_COUNT=$PIPE_COUNT SLEEPERS=$SLEEPERS MIXED_CLIENTS=$MIXED_CLIENTS CURVE_CLIENTS=$CURVE_CLIENTS MJS_ARGS=\"$MJS_ARGS\""
} >"$RESULTS"
cat "$RESULTS" >&2

want_phase curve && want node && log "note: the curve phase skips node (the Node reference has no CURVE mode)"
for rep in $(seq "$REPS"); do
    for phase in $PHASES; do
        for server in "${SERVERS[@]}"; do
            secs=null
            if [ "$phase" = curve ]; then
                [ "$server" = node ] && continue
                # each CURVE run beside the same server's NULL run; the order
                # alternates by rep, so that a drift favours neither
                if [ $((rep % 2)) -eq 1 ]; then secs="curve null"; else secs="null curve"; fi
            fi
            for SEC in $secs; do
                tag=$server
                [ "$phase" = curve ] && tag=$server-$SEC
                log "rep $rep/$REPS, phase $phase, server $tag (load $(cut -d' ' -f1 /proc/loadavg))"
                start_server "$server" "$LOGS/$tag-$phase-rep$rep.log"
                "phase_$phase" "$server" "$rep"
                stop_server
            done
            SEC=null
        done
    done
done

# ---- summary ----
python3 - "$RESULTS" <<'EOF'
import statistics, sys

rows = []
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    rows.append(f)

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def med(vals):
    vals = [v for v in map(num, vals) if v is not None]
    return statistics.median(vals) if vals else None

def fmt(v, d=0):
    return "-" if v is None else f"{v:.{d}f}"

order = {"libzmq": 0, "node": 1, "moebius-js": 2}
phase_order = {"echo": 0, "pipeline": 1, "mixed": 2}
groups = {}
for r in rows:
    if r.get("phase") in ("mixed-sleep", "curve"):
        continue
    key = (r.get("phase", "?"), int(num(r.get("clients")) or 0))
    groups.setdefault(key, {}).setdefault(r.get("server", "?"), []).append(r)

print()
print(f"Summary: median over reps of {sys.argv[1]}")
print("  qps: replies per second; p99: 99th percentile latency (µs); cpu: server CPU µs per request;")
print("  cores: server CPU used; x libzmq / x node: moebius-js divided by that server (qps, p99)")
hdr = f"{'phase':<9}{'clients':>7}  {'server':<11}{'reps':>4}{'qps':>10}{'p99_us':>10}{'cpu_us':>8}{'cores':>7}{'bad':>5}  {'qps x libzmq':>12}{'qps x node':>11}{'p99 x libzmq':>13}{'p99 x node':>11}"
if groups:
    print(hdr)
    print("-" * len(hdr))
for key in sorted(groups, key=lambda k: (phase_order.get(k[0], 9), k[1])):
    g = groups[key]
    stats = {}
    for server, rs in g.items():
        stats[server] = dict(
            reps=len(rs),
            qps=med(r.get("qps") for r in rs),
            p99=med(r.get("p99_us") for r in rs),
            cpu=med(r.get("cpu_us_per_req") for r in rs),
            cores=med(r.get("server_cores") for r in rs),
            bad=sum(int(num(r.get("bad")) or 0) + int(num(r.get("errors")) or 0)
                    + (1 if r.get("rc", "0") != "0" else 0) for r in rs),
        )
    for server in sorted(stats, key=lambda s: order.get(s, 9)):
        s = stats[server]
        ratios = ""
        if server == "moebius-js":
            def ratio(a, b):
                return "-" if a is None or not b else f"{a / b:.2f}"
            lz, nd = stats.get("libzmq", {}), stats.get("node", {})
            ratios = (f"{ratio(s['qps'], lz.get('qps')):>12}{ratio(s['qps'], nd.get('qps')):>11}"
                      f"{ratio(s['p99'], lz.get('p99')):>13}{ratio(s['p99'], nd.get('p99')):>11}")
        print(f"{key[0]:<9}{key[1]:>7}  {server:<11}{s['reps']:>4}{fmt(s['qps']):>10}{fmt(s['p99']):>10}"
              f"{fmt(s['cpu'], 1):>8}{fmt(s['cores'], 2):>7}{s['bad']:>5}  {ratios}")

def badcount(rs):
    return sum(int(num(r.get("bad")) or 0) + int(num(r.get("errors")) or 0)
               + (1 if r.get("rc", "0") != "0" else 0) for r in rs)

curve = [r for r in rows if r.get("phase") == "curve"]
if curve:
    cg = {}
    for r in curve:
        cg.setdefault((r.get("server", "?"), r.get("sec", "?")), []).append(r)
    cs = {}
    print()
    print("curve phase: echo over CURVE beside the NULL echo of the same server, same run")
    hdr = f"{'server':<11}{'sec':<6}{'clients':>7}{'reps':>5}{'qps':>10}{'p99_us':>10}{'cpu_us':>8}{'cores':>7}{'bad':>5}"
    print(hdr)
    print("-" * len(hdr))
    for key in sorted(cg, key=lambda k: (order.get(k[0], 9), k[1] != "curve")):
        rs = cg[key]
        cs[key] = dict(qps=med(r.get("qps") for r in rs), p99=med(r.get("p99_us") for r in rs),
                       cpu=med(r.get("cpu_us_per_req") for r in rs),
                       cores=med(r.get("server_cores") for r in rs),
                       reps={r.get("rep"): r for r in rs})
        s = cs[key]
        clients = sorted({r.get("clients", "?") for r in rs})
        print(f"{key[0]:<11}{key[1]:<6}{','.join(clients):>7}{len(rs):>5}{fmt(s['qps']):>10}"
              f"{fmt(s['p99']):>10}{fmt(s['cpu'], 1):>8}{fmt(s['cores'], 2):>7}{badcount(rs):>5}")

    def ratio(a, b):
        return "-" if a is None or not b else f"{a / b:.2f}"

    print()
    print("  ratios of the medians (qps above 1 is faster; p99 and cpu/request below 1 are lower);")
    print("  in brackets, the qps ratio within each rep (runs of one rep are seconds apart)")
    for (an, asec), (bn, bsec) in [(("moebius-js", "curve"), ("libzmq", "curve")),
                                   (("moebius-js", "curve"), ("moebius-js", "null")),
                                   (("libzmq", "curve"), ("libzmq", "null"))]:
        a, b = cs.get((an, asec)), cs.get((bn, bsec))
        if not a or not b:
            continue
        per_rep = [ratio(num(a["reps"][k].get("qps")), num(b["reps"][k].get("qps")))
                   for k in sorted(a["reps"], key=lambda k: num(k) or 0) if k in b["reps"]]
        name = f"{an} {asec.upper()} / {bn} {bsec.upper()}"
        print(f"  {name:<34} qps {ratio(a['qps'], b['qps']):>5}  p99 {ratio(a['p99'], b['p99']):>5}"
              f"  cpu/req {ratio(a['cpu'], b['cpu']):>5}  [{' '.join(per_rep)}]")

sleeps = [r for r in rows if r.get("phase") == "mixed-sleep"]
if sleeps:
    print()
    print("mixed phase, the sleeping clients (replies/clients, early replies, held through the echo window):")
    for r in sorted(sleeps, key=lambda r: (order.get(r.get("server"), 9), r.get("rep", ""))):
        print(f"  {r.get('server', '?'):<11} rep {r.get('rep', '?')}: {r.get('replies', '?')}/{r.get('clients', '?')} replied,"
              f" early={r.get('early', '?')}, first/last reply at {r.get('first_s', '?')}/{r.get('last_s', '?')} s,"
              f" echo window {r.get('window_s', '?')} s, held={r.get('held', '?')}")
print()
print("bad counts wrong replies, timeouts and failed runs; anything but 0 makes that row suspect.")
EOF
log "results: $RESULTS (server logs in $LOGS)"

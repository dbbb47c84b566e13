#!/usr/bin/env bash
# Side-by-side loopback benchmark: loadgen vs wrk (4.1, closed loop) [vs oha].
#
# Starts a private nginx (worker_processes 1, pinned to one core) on 127.0.0.1
# serving a 600-byte static file, then runs each generator pinned to another
# core and measures achieved rate, CPU per request (GNU time), peak RSS and
# syscalls per request (separate run under `strace -c -f`).
#
# Env:
#   DUR=10          duration of each run in seconds (QUICK=1 -> DUR=3)
#   PORT=18080      first port to try for nginx (next free one is used if busy,
#                   unless PORT was set explicitly)
#   RATE=20000      target total rate for the open-loop (-R) runs
#   LOADGEN=path    loadgen binary (default: <repo>/target/release/loadgen)
#   SKIP_BUILD=1    do not run `cargo build --release`
#   SKIP_STRACE=1   skip the strace runs (syscalls/req column shows "-")
#   NGINX_CPU / GEN_CPU   override the cores used (default: first two allowed)
#   H2=1            only the HTTP/2 pairing: nginx also listens with http2 (h2c) on the next
#                   free port, and REPEAT rounds (order alternating) run loadgen --http2 -t1
#                   -c10 --streams 10 -R$RATE against h2load -t1 -c10 -m10 --rps=$RATE/10 (its
#                   --rps is per client), then both closed loop; CPU per request and req/s
#                   each, and the medians' ratios (needs h2load: nghttp2-client)
#   LUA_ONLY=1      only the Lua-overhead runs: loadgen -R$RATE with and without the
#                   scripts in scripts/bench/, and wrk with the same scripts
#   REPEAT=1        run the whole set this many times, round-robin (so slow drift of the
#                   shared machine hits every generator alike), and report each column's
#                   median, with the range of CPU µs/req. With perf, system calls are then
#                   counted in round 1 only and CPU is taken from rounds 2.. (perf's
#                   tracing adds 5-10% to a generator that wakes often)
#   WRK2=path       a wrk2 binary you built yourself (github.com/giltene/wrk2; it is not
#                   packaged, and this script does not build it): adds wrk2 -t1 -c50 -R$RATE,
#                   run for at least 15 s (wrk2 needs ~10 s to calibrate), as the same-rate peer
#                   (run right after loadgen's default in odd rounds, right before it in even
#                   ones)
#   PAIRS=0         with WRK2: after the rounds, this many more back-to-back pairs of loadgen
#                   -t1 -c50 -R$RATE and wrk2 at the same rate (with the floor between them),
#                   the order alternating, never under perf, for the CPU ratio alone (its
#                   median over many pairs is the figure to quote: the host's drift moves
#                   single runs by +-10%). REPEAT=0 with PAIRS runs only the pairs
#
# Every round (and every pair) also runs the floor, examples/floor.rs, at -c50 -R$RATE: one
# send and one recv per request and one sleep per 750 µs tick, nothing else; the least CPU
# per request any generator can spend at that rate, to measure loadgen and wrk2 against.
# Each round also runs it with the kernel work loadgen adds (receive timestamps, then also an
# epoll polled once per tick), to split loadgen's cost above the floor into kernel and user.
#
# Only ever talks to 127.0.0.1.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

if [[ "${QUICK:-0}" == 1 ]]; then DUR=3; fi
DUR=${DUR:-10}
RATE=${RATE:-20000}
HOST=127.0.0.1
PORT_EXPLICIT=0
if [[ -n "${PORT:-}" ]]; then PORT_EXPLICIT=1; fi
PORT=${PORT:-18080}

log() { printf '[bench] %s\n' "$*" >&2; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$DUR" =~ ^[0-9]+$ && "$DUR" -gt 0 ]] || die "DUR must be a positive integer (got '$DUR')"
[[ "$RATE" =~ ^[0-9]+$ && "$RATE" -gt 0 ]] || die "RATE must be a positive integer (got '$RATE')"
REPEAT=${REPEAT:-1}
PAIRS=${PAIRS:-0}
[[ "$PAIRS" =~ ^[0-9]+$ ]] || die "PAIRS must be a whole number (got '$PAIRS')"
[[ "$REPEAT" =~ ^[0-9]+$ ]] && { ((REPEAT > 0)) || ((PAIRS > 0)); } ||
    die "REPEAT must be a positive integer, or 0 with PAIRS (got '$REPEAT')"
((PAIRS == 0)) || [[ -n "${WRK2:-}" ]] || die "PAIRS needs WRK2 (the wrk2 binary to pair with)"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "PORT must be numeric (got '$PORT')"

# --------------------------------------------------------------------------
# Dependencies (Debian packages)
# --------------------------------------------------------------------------
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

apt_retry() {
    # Retries while another apt/dpkg holds the lock.
    local i
    for i in $(seq 1 30); do
        if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=60 "$@"; then
            return 0
        fi
        warn "apt-get $* failed (attempt $i); dpkg lock held? retrying in 10s"
        sleep 10
    done
    return 1
}

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
    log "installing missing packages: ${missing[*]}"
    apt_retry update
    apt_retry install -y --no-install-recommends "${missing[@]}"
fi
NGINX_BIN=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
WRK_BIN=$(command -v wrk)

# --------------------------------------------------------------------------
# Build loadgen
# --------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building loadgen (cargo build --release) in $REPO_ROOT"
    (cd "$REPO_ROOT" && cargo build --release && cargo build --release --example floor)
fi
LOADGEN=${LOADGEN:-$REPO_ROOT/target/release/loadgen}
[[ -x "$LOADGEN" ]] || die "loadgen binary not found/executable: $LOADGEN"
FLOOR_BIN=$REPO_ROOT/target/release/examples/floor
[[ -x "$FLOOR_BIN" ]] || { warn "no $FLOOR_BIN (cargo build --release --example floor): the floor runs are skipped"; FLOOR_BIN=""; }

# --------------------------------------------------------------------------
# CPU pinning
# --------------------------------------------------------------------------
allowed_cpus() {
    # Expand the affinity list of this shell ("0-3,6") into one CPU per line.
    local list part a b
    list=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//') || true
    [[ -n "$list" ]] || { seq 0 $(($(nproc) - 1)); return; }
    IFS=',' read -ra parts <<<"$list"
    for part in "${parts[@]}"; do
        if [[ "$part" == *-* ]]; then
            a=${part%-*}; b=${part#*-}; seq "$a" "$b"
        else
            echo "$part"
        fi
    done
}
mapfile -t CPUS < <(allowed_cpus)
if ((${#CPUS[@]} >= 2)); then
    NGINX_CPU=${NGINX_CPU:-${CPUS[0]}}
    GEN_CPU=${GEN_CPU:-${CPUS[1]}}
else
    NGINX_CPU=${NGINX_CPU:-${CPUS[0]:-0}}
    GEN_CPU=${GEN_CPU:-$NGINX_CPU}
    warn "only one CPU available: nginx and the generator share core $NGINX_CPU; results will be skewed"
fi

# Plenty of fds for the 1000-connection run.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

# --------------------------------------------------------------------------
# Private nginx
# --------------------------------------------------------------------------
WORK=$(mktemp -d -t loadgen-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers may drop to nobody when started as root
RAW=$WORK/raw
mkdir -p "$RAW" "$WORK/html" "$WORK/tmp"
NGINX_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$NGINX_PID" ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    log "raw outputs kept in: $WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 2>/dev/null; exec 3<>"/dev/tcp/$HOST/$1"); }

if port_in_use "$PORT"; then
    if ((PORT_EXPLICIT)); then die "port $PORT on $HOST is already in use"; fi
    start=$PORT
    for p in $(seq "$((start + 1))" "$((start + 100))"); do
        if ! port_in_use "$p"; then PORT=$p; break; fi
    done
    [[ "$PORT" != "$start" ]] || die "no free port in $start..$((start + 100))"
    log "port $start busy, using $PORT"
fi
URL="http://$HOST:$PORT/index.html"

# H2=1: a second server, h2c with prior knowledge, on the next free port.
H2_SERVER=""
if [[ "${H2:-0}" == 1 ]]; then
    command -v h2load >/dev/null 2>&1 || die "H2=1 needs h2load (Debian: nghttp2-client)"
    H2_PORT=$((PORT + 1))
    while port_in_use "$H2_PORT"; do H2_PORT=$((H2_PORT + 1)); done
    H2_URL="http://$HOST:$H2_PORT/index.html"
    H2_SERVER="    server { listen $HOST:$H2_PORT http2; root $WORK/html; location / { index index.html; } }"
fi

# Exactly 600 bytes of HTML.
head_html='<!DOCTYPE html><html><head><title>bench</title></head><body><p>'
tail_html=$'</p></body></html>\n'
pad=$((600 - ${#head_html} - ${#tail_html}))
{ printf '%s' "$head_html"; head -c "$pad" /dev/zero | tr '\0' 'x'; printf '%s' "$tail_html"; } \
    >"$WORK/html/index.html"
[[ $(stat -c %s "$WORK/html/index.html") -eq 600 ]] || die "index.html is not 600 bytes"

cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;

events {
    worker_connections 24000;
    use epoll;
}

http {
    access_log off;
    default_type text/html;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;

$H2_SERVER
    server {
        listen $HOST:$PORT;
        server_name localhost;
        root $WORK/html;
        location / {
            index index.html;
        }
    }
}
EOF

log "starting nginx on $HOST:$PORT (core $NGINX_CPU), conf $WORK/nginx.conf"
taskset -c "$NGINX_CPU" "$NGINX_BIN" -p "$WORK" -e "$WORK/error.log" -c "$WORK/nginx.conf" \
    >"$WORK/nginx.stdout" 2>&1 &
NGINX_PID=$!

http_check() {
    # Minimal HTTP/1.0 GET over bash /dev/tcp; succeeds on a 200 response.
    local status
    status=$(
        exec 2>/dev/null
        exec 3<>"/dev/tcp/$HOST/$PORT" || exit 1
        printf 'GET /index.html HTTP/1.0\r\nHost: %s\r\n\r\n' "$HOST" >&3
        head -n1 <&3
    ) || return 1
    [[ "$status" == *" 200 "* ]]
}
for _ in $(seq 1 100); do
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx.stdout" "$WORK/error.log" >&2 2>/dev/null || true; die "nginx exited"; }
    http_check && break
    sleep 0.1
done
http_check || die "nginx did not answer on $URL"

# --------------------------------------------------------------------------
# H2=1: the HTTP/2 pairing alone
# --------------------------------------------------------------------------
# h2_run <name> <cmd...>: one run under /usr/bin/time; appends "name cpu_us_per_req req_per_s".
h2_run() {
    local name=$1; shift
    local tag=$RAW/${name}_$ROUND
    log "run '$name': $*"
    /usr/bin/time -f '%U %S' -o "$tag.time" taskset -c "$GEN_CPU" "$@" >"$tag.out" 2>&1 ||
        warn "$name exited non-zero (see $tag.out)"
    local n rps
    if [[ "$1" == h2load ]]; then
        n=$(grep -oP 'requests: \d+ total, \d+ started, \K\d+(?= done)' "$tag.out" || echo 0)
        rps=$(grep -oP 'finished in [0-9.]+s, \K[0-9.]+(?= req/s)' "$tag.out" || echo NA)
    else
        n=$(grep -oP '^ *\K\d+(?= requests in )' "$tag.out" || echo 0)
        rps=$(grep -oP '^Requests/sec: *\K[0-9.]+' "$tag.out" || echo NA)
    fi
    awk -v name="$name" -v n="$n" -v rps="$rps" '{ printf "%s %s %s\n", name, (n > 0 ? ($1 + $2) * 1e6 / n : "NA"), rps }' \
        "$tag.time" >>"$RAW/h2.rows"
}
if [[ "${H2:-0}" == 1 ]]; then
    h2load -n 10 -c 1 "$H2_URL" 2>&1 | grep -q 'Application protocol: h2c' || die "nginx does not speak h2c on $H2_URL"
    for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
        lg=(h2_run loadgen_open "$LOADGEN" --http2 -t1 -c10 --streams 10 -R"$RATE" -d"${DUR}s" "$H2_URL")
        hl=(h2_run h2load_open h2load -t1 -c10 -m10 --rps=$((RATE / 10)) -D "$DUR" "$H2_URL")
        if ((ROUND % 2)); then "${lg[@]}"; "${hl[@]}"; else "${hl[@]}"; "${lg[@]}"; fi
        h2_run loadgen_max "$LOADGEN" --http2 -t1 -c10 --streams 10 -d"${DUR}s" "$H2_URL"
        h2_run h2load_max h2load -t1 -c10 -m10 -D "$DUR" "$H2_URL"
    done
    echo
    echo "## loadgen --http2 vs h2load — loopback, nginx h2c, 600 B static file"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') · nproc $(nproc) · DUR=${DUR}s · REPEAT=$REPEAT (medians) · nginx core $NGINX_CPU, generator core $GEN_CPU · $H2_URL"
    echo
    echo "| run | CPU µs/req (median) | req/s (median) |"
    echo "|---|---:|---:|"
    med() { sort -g | awk '{ v[n++] = $1 } END { if (!n) print "NA"; else print (n % 2) ? v[int(n/2)] : (v[n/2-1] + v[n/2]) / 2 }'; }
    declare -A H2_CPU H2_RPS
    for name in loadgen_open h2load_open loadgen_max h2load_max; do
        H2_CPU[$name]=$(awk -v n="$name" '$1 == n && $2 != "NA" { print $2 }' "$RAW/h2.rows" | med)
        H2_RPS[$name]=$(awk -v n="$name" '$1 == n && $3 != "NA" { print $3 }' "$RAW/h2.rows" | med)
        printf '| %s | %.2f | %.0f |\n' "$name" "${H2_CPU[$name]}" "${H2_RPS[$name]}"
    done
    echo
    awk -v a="${H2_CPU[loadgen_open]}" -v b="${H2_CPU[h2load_open]}" -v c="${H2_RPS[loadgen_max]}" -v d="${H2_RPS[h2load_max]}" \
        'BEGIN { printf "- CPU per request at -R%s, loadgen ÷ h2load: %.2f (target <= 1.0)\n- closed-loop req/s, loadgen ÷ h2load: %.2f (target >= 1.0)\n", "'"$RATE"'", a / b, c / d }'
    echo
    echo "Raw outputs: $WORK"
    exit 0
fi

# --------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------
# Parse a wrk/wrk2-style report (or oha's summary) -> "requests rate".
parse_report() {
    awk '
        /^[ \t]*[0-9]+ requests in / { req = $1 }
        /^[ \t]*Requests\/sec:/      { rate = $2 }
        # oha: "  [200] 199980 responses"
        /^[ \t]*\[[0-9]+\] [0-9]+ responses/ { oha += $2; seen = 1 }
        END {
            if (req == "" && seen) req = oha
            if (req == "") req = "NA"
            if (rate == "") rate = "NA"
            print req, rate
        }' "$1"
}

# Latency p50 from a wrk2/loadgen (" 50.000%  1.23ms"), wrk (" 50%  1.23ms") or oha
# ("50.00% in 0.1485 ms") report, in µs.
parse_p50() {
    awk '
        function us(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v + 0 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v * 1000 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000000 }
            return "NA"
        }
        ($1 == "50.000%" || $1 == "50%") && !done { printf "%.0f", us($2); done = 1 }
        # oha: "  50.00% in 0.1485 ms"
        $1 == "50.00%" && $2 == "in" && !done { printf "%.0f", us($3 $4); done = 1 }
        # scripts/probe.py: "p50 83.1 us, p90 ..."
        $1 == "p50" && $3 == "us," && !done { printf "%.0f", $2; done = 1 }
        END { if (!done) print "NA" }' "$1"
}

# loadgen "Send lag:     p50 42.00us, p99 140.00us, max ..." -> p99 in µs.
parse_lag99() {
    awk '
        /^Send lag:/ {
            v = $6; sub(/,$/, "", v)
            if (v ~ /us$/) { sub(/us$/, "", v); x = v + 0 }
            else if (v ~ /ms$/) { sub(/ms$/, "", v); x = v * 1000 }
            else if (v ~ /s$/) { sub(/s$/, "", v); x = v * 1000000 }
            printf "%.0f", x; found = 1
        }
        END { if (!found) print "-" }' "$1"
}

# perf stat -x, output: "278589,,raw_syscalls:sys_enter,..." -> count.
parse_perf() {
    awk -F, '$3 ~ /raw_syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ { print $1; found = 1 } END { if (!found) print "NA" }' "$1"
}

# Counting system calls with perf's tracepoint costs the generator almost nothing; strace
# slows it several-fold. Use perf when it can count here.
USE_PERF=0
if command -v perf >/dev/null 2>&1 && perf stat -x, -e raw_syscalls:sys_enter -o /dev/null true 2>/dev/null; then
    USE_PERF=1
fi

# strace -c summary: "100.00  0.123  1  123456  12 total" -> calls column.
parse_strace() {
    awk '$NF == "total" && $1 ~ /^[0-9.]+$/ { print $4; found = 1 } END { if (!found) print "NA" }' "$1"
}

PAIRING=0 # 1 while run_pairs runs: no perf, no strace
OHA_NOTE=""
ROWS=()   # "name|target|req|rate|cpu_s|rss_kb|sc_req|p50_us|lag99_us|cpu_range"
declare -A CPU_US
# Per run name, the values of each round, space-separated; ORDER: names in first-run order.
ORDER=()
declare -A V_TARGET V_REQ V_RATE V_CPUUS V_RSS V_SC V_P50 V_LAG
ROUND=1

run_one() {
    # run_one <name> <target rate or "max"> <cmd...>
    local name=$1 target=$2; shift 2
    local tag=${name//[^A-Za-z0-9]/_}_r$ROUND
    local out=$RAW/$tag.out tfile=$RAW/$tag.time sout=$RAW/$tag.strace.out strc=$RAW/$tag.strace
    local rc=0

    log "run '$name': $*"
    printf '%s\n' "$*" >"$RAW/$tag.cmd"
    local pfile=$RAW/$tag.perf
    # With REPEAT > 1, system calls are counted in round 1 only, and CPU is taken from the
    # other rounds: perf's tracepoint and its work at every context switch add 5-10% to a
    # generator that wakes often (measured: loadgen -R20000 9.0 -> 8.3 us/req, wrk2 ~2%).
    local traced=0 cpu_ok=1
    if ((USE_PERF && !PAIRING)) && [[ "${SKIP_STRACE:-0}" != 1 ]] && ((REPEAT == 1 || ROUND == 1)); then
        traced=1
        ((REPEAT == 1)) || cpu_ok=0
    fi
    if ((traced)); then
        perf stat -x, -e raw_syscalls:sys_enter -o "$pfile" -- \
            /usr/bin/time -f "%U %S %M" -o "$tfile" taskset -c "$GEN_CPU" "$@" >"$out" 2>&1 || rc=$?
    else
        /usr/bin/time -f "%U %S %M" -o "$tfile" taskset -c "$GEN_CPU" "$@" >"$out" 2>&1 || rc=$?
    fi
    ((rc == 0)) || warn "'$name' exited with status $rc (see $out)"

    local req rate
    read -r req rate < <(parse_report "$out")
    local u s m
    read -r u s m < <(grep -E '^[0-9.]+ [0-9.]+ [0-9]+$' "$tfile" | tail -n1 || echo "NA NA NA")

    local sc_req="-"
    if [[ "${SKIP_STRACE:-0}" != 1 ]] && ((!PAIRING)) && { ((traced)) || ! ((USE_PERF)); }; then
        local sc sreq=$req
        if ((USE_PERF)); then
            sc=$(parse_perf "$pfile")
        else
            log "run '$name' under strace"
            rc=0
            taskset -c "$GEN_CPU" strace -c -f -o "$strc" "$@" >"$sout" 2>&1 || rc=$?
            ((rc == 0)) || warn "'$name' (strace) exited with status $rc (see $sout)"
            read -r sreq _ < <(parse_report "$sout")
            sc=$(parse_strace "$strc" 2>/dev/null || echo NA)
        fi
        sc_req=$(awk -v c="$sc" -v r="$sreq" 'BEGIN { if (c ~ /^[0-9]+$/ && r ~ /^[0-9]+$/ && r > 0) printf "%.2f", c / r; else print "NA" }')
    fi
    local p50 lag99
    p50=$(parse_p50 "$out")
    lag99=$(parse_lag99 "$out")

    local cpu_s cpu_us
    cpu_s=$(awk -v u="$u" -v s="$s" 'BEGIN { if (u ~ /^[0-9.]+$/ && s ~ /^[0-9.]+$/) printf "%.3f", u + s; else print "NA" }')
    cpu_us=$(awk -v c="$cpu_s" -v r="$req" 'BEGIN { if (c != "NA" && r ~ /^[0-9]+$/ && r > 0) printf "%.4f", c * 1e6 / r; else print "NA" }')
    ((cpu_ok)) || cpu_us="-"
    [[ -n "${V_TARGET[$name]+x}" ]] || ORDER+=("$name")
    V_TARGET[$name]=$target
    V_REQ[$name]+=" $req"
    V_RATE[$name]+=" $rate"
    V_CPUUS[$name]+=" $cpu_us"
    V_RSS[$name]+=" $m"
    V_SC[$name]+=" $sc_req"
    V_P50[$name]+=" $p50"
    V_LAG[$name]+=" $lag99"
}

# run_probe <name>: scripts/probe.py's unloaded latency (one connection, one GET every 5 ms,
# busy-polled), the reference for the light-load p50s. Only its p50 column is filled.
run_probe() {
    local name=$1
    local tag=${name//[^A-Za-z0-9]/_}_r$ROUND
    local out=$RAW/$tag.out
    log "run '$name'"
    taskset -c "$GEN_CPU" python3 "$SCRIPT_DIR/probe.py" "$URL" $((DUR * 100)) 5 >"$out" 2>&1 ||
        warn "'$name' failed (see $out)"
    [[ -n "${V_TARGET[$name]+x}" ]] || ORDER+=("$name")
    V_TARGET[$name]="—"
    V_REQ[$name]+=" -"
    V_RATE[$name]+=" -"
    V_CPUUS[$name]+=" -"
    V_RSS[$name]+=" -"
    V_SC[$name]+=" -"
    V_P50[$name]+=" $(parse_p50 "$out")"
    V_LAG[$name]+=" -"
}

# median <values...>: the median of the numeric ones (for an even count, the mean of the two
# middle ones: taking either one alone would bias a column, and the ratios made from it), or
# the first value when none is numeric ("NA", "-").
median() {
    printf '%s\n' "$@" | awk '
        BEGIN { n = 0 }
        $1 ~ /^-?[0-9]+(\.[0-9]+)?$/ { v[n] = $1 + 0; txt[n++] = $1; next }
        NR == 1 { first = $1 }
        END {
            if (n == 0) { print (first == "" ? "NA" : first); exit }
            # Insertion sort on the values, keeping the text of each (its formatting).
            for (i = 1; i < n; i++)
                for (j = i; j > 0 && v[j-1] > v[j]; j--) {
                    t = v[j]; v[j] = v[j-1]; v[j-1] = t
                    t = txt[j]; txt[j] = txt[j-1]; txt[j-1] = t
                }
            if (n % 2) print txt[int(n / 2)]
            else printf "%.6g\n", (v[n/2 - 1] + v[n/2]) / 2
        }'
}

# range <values...>: "min–max" of the numeric ones ("NA" when none).
range() {
    printf '%s\n' "$@" | awk '
        $1 ~ /^[0-9]+(\.[0-9]+)?$/ { x = $1 + 0; if (!n || x < lo) lo = x; if (!n || x > hi) hi = x; n++ }
        END { if (n) printf "%.2f–%.2f\n", lo, hi; else print "NA" }'
}

# Turns the rounds' values into one row per run (medians) and CPU_US (median µs/req).
summarize() {
    local name
    for name in "${ORDER[@]}"; do
        # shellcheck disable=SC2086  # word splitting of the space-separated lists is intended
        {
            local req rate cpu_us rss sc p50 lag cpu_s cpu_range
            req=$(median ${V_REQ[$name]})
            rate=$(median ${V_RATE[$name]})
            cpu_us=$(median ${V_CPUUS[$name]})
            cpu_range=$(range ${V_CPUUS[$name]})
            rss=$(median ${V_RSS[$name]})
            sc=$(median ${V_SC[$name]})
            p50=$(median ${V_P50[$name]})
            lag=$(median ${V_LAG[$name]})
        }
        cpu_s=$(awk -v c="$cpu_us" -v r="$req" 'BEGIN { if (c ~ /^[0-9.]+$/ && r ~ /^[0-9.]+$/) printf "%.6f", c * r / 1e6; else print "NA" }')
        CPU_US[$name]=$cpu_us
        ROWS+=("$name|${V_TARGET[$name]}|$req|$rate|$cpu_s|$rss|$sc|$p50|$lag|$cpu_range")
    done
}

# The default pacing is auto: coarse at -t1 -R20000 (15 requests per 750 µs tick), precise at
# -R200 and -R2000.
LG_OPEN="loadgen -t1 -c50 -R$RATE"
LG_PRECISE="loadgen -t1 -c50 -R$RATE --pacing precise"
LG_COARSE1="loadgen -t1 -c50 -R$RATE --tick 500us"
PROBE="probe.py: 1 connection, a GET every 5 ms (unloaded)"
LG_LOW="loadgen -t1 -c1 -R200"
LG_LOW_COARSE="loadgen -t1 -c1 -R200 --pacing coarse"
WRK_ONE="wrk -t1 -c1 (max)"
WRK_MAX="wrk -t1 -c50 (max)"
LG_MAX="loadgen -t1 -c50 (max)"
LG_1K="loadgen -t1 -c1000 -R$RATE"
LG_10K="loadgen -t1 -c10000 -R2000"
OHA="oha -c50 -q$RATE"
WRK2_OPEN="wrk2 -t1 -c50 -R$RATE"
FLOOR_OPEN="floor -c50 -R$RATE: send + recv, 750 µs ticks (examples/floor.rs)"
FLOOR_STAMP="floor --stamp: + kernel receive timestamps (recvmsg)"
FLOOR_EPOLL="floor --stamp --epoll: + an edge-triggered epoll polled per tick"

LG_REQ="loadgen -t1 -c50 -R$RATE -s request.lua"
LG_RESP="loadgen -t1 -c50 -R$RATE -s response.lua"
WRK_REQ="wrk -t1 -c50 -s request.lua (max)"
LG_REQ_MAX="loadgen -t1 -c50 -s request.lua (max)"
LG_RESP_MAX="loadgen -t1 -c50 -s response.lua (max)"
WRK_RESP="wrk -t1 -c50 -s response.lua (max)"
BENCH_LUA=$REPO_ROOT/scripts/bench

# run_open <name> and run_wrk2 <name>: loadgen's default and wrk2 at -R$RATE.
run_open() { run_one "$1" "$RATE" "$LOADGEN" -t1 -c50 -d"${DUR}s" -R"$RATE" --latency "$URL"; }
run_wrk2() { run_one "$1" "$RATE" "$WRK2" -t1 -c50 -d"$((DUR > 15 ? DUR : 15))s" -R"$RATE" --latency "$URL"; }
# run_floor <name> [flags]: examples/floor.rs at -c50 -R$RATE (nothing when it was not built).
run_floor() {
    local name=$1; shift
    [[ -z "$FLOOR_BIN" ]] || run_one "$name" "$RATE" "$FLOOR_BIN" "$HOST:$PORT" /index.html 50 "$RATE" "$DUR" "$@"
}

# One round: every run once.
run_all() {
    # wrk2 back to back with loadgen at the same rate, so that each round's pair sees the same
    # host load (the paired ratio in the report); which goes first alternates, so that neither
    # always follows the previous round's heaviest runs.
    if [[ -n "${WRK2:-}" && "${LUA_ONLY:-0}" != 1 ]]; then
        if ((ROUND % 2)); then
            run_open "$LG_OPEN"; run_wrk2 "$WRK2_OPEN"
        else
            run_wrk2 "$WRK2_OPEN"; run_open "$LG_OPEN"
        fi
    else
        run_open "$LG_OPEN"
    fi
    if [[ "${LUA_ONLY:-0}" != 1 ]]; then
        run_floor "$FLOOR_OPEN"
        run_floor "$FLOOR_STAMP" --stamp
        run_floor "$FLOOR_EPOLL" --stamp --epoll
    fi
    run_one "$LG_REQ" "$RATE" "$LOADGEN" -t1 -c50 -d"${DUR}s" -R"$RATE" --latency -s "$BENCH_LUA/request.lua" "$URL"
    run_one "$LG_RESP" "$RATE" "$LOADGEN" -t1 -c50 -d"${DUR}s" -R"$RATE" --latency -s "$BENCH_LUA/response.lua" "$URL"
    run_one "$WRK_REQ" max "$WRK_BIN" -t1 -c50 -d"${DUR}s" -s "$BENCH_LUA/request.lua" "$URL"
    run_one "$WRK_RESP" max "$WRK_BIN" -t1 -c50 -d"${DUR}s" -s "$BENCH_LUA/response.lua" "$URL"
    run_one "$LG_REQ_MAX" max "$LOADGEN" -t1 -c50 -d"${DUR}s" -s "$BENCH_LUA/request.lua" "$URL"
    run_one "$LG_RESP_MAX" max "$LOADGEN" -t1 -c50 -d"${DUR}s" -s "$BENCH_LUA/response.lua" "$URL"
    if [[ "${LUA_ONLY:-0}" != 1 ]]; then
    run_one "$LG_PRECISE" "$RATE" "$LOADGEN" -t1 -c50 -d"${DUR}s" -R"$RATE" --latency --pacing precise "$URL"
    run_one "$LG_COARSE1" "$RATE" "$LOADGEN" -t1 -c50 -d"${DUR}s" -R"$RATE" --latency --tick 500us "$URL"
    if command -v python3 >/dev/null 2>&1; then run_probe "$PROBE"; fi
    run_one "$LG_LOW" 200 "$LOADGEN" -t1 -c1 -d"${DUR}s" -R200 --latency "$URL"
    run_one "$LG_LOW_COARSE" 200 "$LOADGEN" -t1 -c1 -d"${DUR}s" -R200 --latency --pacing coarse "$URL"
    run_one "$WRK_ONE" max "$WRK_BIN" -t1 -c1 -d"${DUR}s" --latency "$URL"
    run_one "$WRK_MAX" max "$WRK_BIN" -t1 -c50 -d"${DUR}s" --latency "$URL"
    run_one "$LG_MAX" max "$LOADGEN" -t1 -c50 -d"${DUR}s" --latency "$URL"
    run_one "$LG_1K" "$RATE" "$LOADGEN" -t1 -c1000 -d"${DUR}s" -R"$RATE" "$URL"
    run_one "$LG_10K" 2000 "$LOADGEN" -t1 -c10000 -d"${DUR}s" -R2000 --timeout 10s "$URL"
    fi
    OHA_NOTE=""
    if [[ "${LUA_ONLY:-0}" == 1 ]]; then
        OHA_NOTE="LUA_ONLY=1: the other runs were skipped."
    elif command -v oha >/dev/null 2>&1; then
        run_one "$OHA" "$RATE" "$(command -v oha)" -z "${DUR}s" -c 50 -q "$RATE" --no-tui "$URL"
    else
        OHA_NOTE="oha not on PATH: oha run skipped."
    fi
}

LG_PAIR="$LG_OPEN (pairs)"
WRK2_PAIR="$WRK2_OPEN (pairs)"
FLOOR_PAIR="floor -c50 -R$RATE (pairs)"
# PAIRS back-to-back pairs (the floor between the two), the order alternating, without perf:
# the CPU ratio to wrk2 alone.
run_pairs() {
    PAIRING=1
    for ((ROUND = 1; ROUND <= PAIRS; ROUND++)); do
        log "pair $ROUND of $PAIRS"
        if ((ROUND % 2)); then
            run_open "$LG_PAIR"; run_floor "$FLOOR_PAIR"; run_wrk2 "$WRK2_PAIR"
        else
            run_wrk2 "$WRK2_PAIR"; run_floor "$FLOOR_PAIR"; run_open "$LG_PAIR"
        fi
    done
    PAIRING=0
}

[[ -z "${WRK2:-}" || -x "$WRK2" ]] || die "WRK2=$WRK2 is not an executable"
for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
    ((REPEAT == 1)) || log "round $ROUND of $REPEAT"
    run_all
done
((PAIRS == 0)) || run_pairs
summarize

# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n "$cpu_model" ]] || cpu_model=$(uname -m)

echo
echo "## loadgen vs wrk — loopback, nginx 600 B static file"
echo
echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') · nproc $(nproc) · CPU: $cpu_model · kernel $(uname -r) · DUR=${DUR}s · REPEAT=$REPEAT (medians) · nginx core $NGINX_CPU, generator core $GEN_CPU · $URL"
echo
echo "| run | target rate | achieved req/s | rate error % | CPU s / 100k req | CPU µs/req | CPU µs/req range | syscalls/req | peak RSS MB | latency p50 µs | send lag p99 µs |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r name target req rate cpu_s rss sc_req p50 lag99 cpu_range <<<"$row"
    awk -v name="$name" -v target="$target" -v req="$req" -v rate="$rate" \
        -v cpu="$cpu_s" -v rss="$rss" -v sc="$sc_req" -v p50="$p50" -v lag="$lag99" -v range="$cpu_range" '
        function num(x) { return x ~ /^[0-9]+(\.[0-9]+)?$/ }
        BEGIN {
            ach = num(rate) ? sprintf("%.0f", rate) : "NA"
            err = (target ~ /^[0-9]+$/ && num(rate)) ? sprintf("%+.2f", (rate - target) * 100 / target) : "—"
            if (num(cpu) && num(req) && req > 0) {
                per100k = sprintf("%.3f", cpu * 100000 / req)
                us = sprintf("%.2f", cpu * 1e6 / req)
            } else { per100k = "NA"; us = "NA" }
            mb = num(rss) ? sprintf("%.1f", rss / 1024) : "NA"
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, target, ach, err, per100k, us, range, sc, mb, p50, lag
        }'
done
echo
ratio() {
    awk -v a="${CPU_US[$1]:-NA}" -v b="${CPU_US[$2]:-NA}" \
        'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "NA" }'
}
# show_ratio <a> <b> [suffix]: the line "a ÷ b: ratio", unless a run is missing.
show_ratio() {
    local r
    r=$(ratio "$1" "$2")
    [[ "$r" == NA ]] || echo "- $1 ÷ $2: $r${3:-}"
}
echo "CPU/req ratios (lower is better for loadgen):"
show_ratio "$LG_REQ" "$LG_OPEN" " (target <= 1.3)"
show_ratio "$LG_RESP" "$LG_OPEN" " (target <= 2)"
show_ratio "$LG_REQ_MAX" "$WRK_REQ"
show_ratio "$LG_RESP_MAX" "$WRK_RESP"
show_ratio "$LG_OPEN" "$WRK_MAX"
show_ratio "$LG_PRECISE" "$WRK_MAX"
show_ratio "$LG_MAX" "$WRK_MAX"
show_ratio "$LG_1K" "$WRK_MAX"
# paired <a> <b>: the median (range, count, how many at most 0.6) of a ÷ b over the rounds
# where both have a CPU figure: each round's pair ran back to back, so the host's drift
# cancels out of the ratio.
paired() {
    # shellcheck disable=SC2086  # word splitting of the space-separated lists is intended
    paste -d' ' <(printf '%s\n' ${V_CPUUS[$1]}) <(printf '%s\n' ${V_CPUUS[$2]}) | awk '
        $1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9.]+$/ && $2 > 0 { x = $1 / $2; r[n++] = x; low += (x <= 0.6) }
        END {
            if (!n) { print "NA"; exit }
            for (i = 1; i < n; i++) for (j = i; j > 0 && r[j-1] > r[j]; j--) { t = r[j]; r[j] = r[j-1]; r[j-1] = t }
            m = (n % 2) ? r[int(n / 2)] : (r[n/2 - 1] + r[n/2]) / 2
            printf "%.3f (range %.3f–%.3f, %d pairs, %d of them at most 0.6)\n", m, r[0], r[n-1], n, low
        }'
}
if [[ -n "${CPU_US[$WRK2_OPEN]:-}" ]]; then
    echo "- $LG_OPEN ÷ $WRK2_OPEN (same rate): $(ratio "$LG_OPEN" "$WRK2_OPEN"); paired, run back to back in each round: $(paired "$LG_OPEN" "$WRK2_OPEN")"
    echo "- $LG_PRECISE ÷ $WRK2_OPEN (same rate): $(ratio "$LG_PRECISE" "$WRK2_OPEN")"
    echo "- $LG_COARSE1 ÷ $WRK2_OPEN (same rate): $(ratio "$LG_COARSE1" "$WRK2_OPEN")"
fi
if [[ -n "${CPU_US[$WRK2_PAIR]:-}" ]]; then
    echo "- $LG_OPEN ÷ $WRK2_OPEN over $PAIRS alternating pairs: paired $(paired "$LG_PAIR" "$WRK2_PAIR")"
fi
if [[ -n "${CPU_US[$FLOOR_PAIR]:-}" ]]; then
    echo "- over the same pairs, ÷ the floor run between them: loadgen $(paired "$LG_PAIR" "$FLOOR_PAIR" | cut -d' ' -f1), wrk2 $(paired "$WRK2_PAIR" "$FLOOR_PAIR" | cut -d' ' -f1); floor ÷ wrk2 $(paired "$FLOOR_PAIR" "$WRK2_PAIR" | cut -d' ' -f1)"
fi
if [[ -n "${CPU_US[$FLOOR_OPEN]:-}" ]]; then
    show_ratio "$FLOOR_STAMP" "$FLOOR_OPEN"
    show_ratio "$FLOOR_EPOLL" "$FLOOR_OPEN"
    show_ratio "$LG_OPEN" "$FLOOR_OPEN"
    [[ -z "${CPU_US[$WRK2_OPEN]:-}" ]] || show_ratio "$WRK2_OPEN" "$FLOOR_OPEN"
fi
if [[ -n "${CPU_US[$OHA]:-}" ]]; then
    echo "- $OHA ÷ $WRK_MAX: $(ratio "$OHA" "$WRK_MAX")"
    echo "- $LG_OPEN ÷ $OHA (same rate): $(ratio "$LG_OPEN" "$OHA")"
fi
echo
echo "Notes: CPU = generator user+sys from /usr/bin/time. syscalls/req: counted with"
if ((USE_PERF)); then
    echo "perf's raw_syscalls:sys_enter tracepoint during the same run (negligible overhead)."
else
    echo "\`strace -c -f\` in a separate run with the same flags (strace slows the generator)."
fi
echo "latency p50: the report's median (corrected with -R). The reference is probe.py's p50:"
echo "one connection, a request every 5 ms to an otherwise idle server (the single-connection"
echo "low-load latency); wrk -c1 runs back to back, so the server never idles (lower)."
echo "send lag p99: loadgen's own lag behind its plan."
echo "wrk runs closed loop at its own maximum."
[[ -z "${WRK2:-}" ]] || echo "wrk2: $WRK2 (built by hand), at the same -R."
[[ -z "$OHA_NOTE" ]] || echo "$OHA_NOTE"
echo
echo "Raw outputs: $WORK"

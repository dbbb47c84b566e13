#!/usr/bin/env bash
# Soak test (not run by CI): one long open-loop run against a private nginx on loopback, to
# show that loadgen's memory, CPU per request and latency stay flat over time (no leak, no
# growing per-request cost, no drift in the plan).
#
# Starts nginx (worker_processes 1, pinned to one core) on 127.0.0.1 serving a 600-byte file,
# runs `loadgen -t1 -c$CONNS -R$RATE -d${DUR}s --json` pinned to another core, samples
# loadgen's RSS and CPU time from /proc once a second, and prints one row per minute: RSS,
# CPU per request, achieved rate, and the median and maximum of that minute's per-second
# corrected p50 and p99 (from the JSON's time series).
#
# Env:
#   DUR=600        run length in seconds (10 minutes)
#   RATE=20000     total rate
#   CONNS=200      connections
#   PORT=18180     nginx port
#   LOADGEN=path   binary (default: <repo>/target/release/loadgen; built if missing)
#   NGINX_CPU / GEN_CPU   cores (default: the first two this process may use)
#
# Only ever talks to 127.0.0.1.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
DUR=${DUR:-600}
RATE=${RATE:-20000}
CONNS=${CONNS:-200}
PORT=${PORT:-18180}
LOADGEN=${LOADGEN:-$REPO_ROOT/target/release/loadgen}

die() { printf '[soak] ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf '[soak] %s\n' "$*" >&2; }

[[ "$DUR" =~ ^[0-9]+$ && "$DUR" -ge 60 ]] || die "DUR must be a whole number of seconds >= 60"
command -v nginx >/dev/null || die "nginx not found (apt-get install nginx-light)"
command -v python3 >/dev/null || die "python3 not found"
if [[ ! -x "$LOADGEN" ]]; then
    (cd "$REPO_ROOT" && cargo build --release --locked) || die "build failed"
fi

cpus=$(python3 -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))')
read -r -a allowed <<<"$cpus"
NGINX_CPU=${NGINX_CPU:-${allowed[0]}}
GEN_CPU=${GEN_CPU:-${allowed[1]:-${allowed[0]}}}

work=$(mktemp -d)
cleanup() {
    [[ -f "$work/nginx.pid" ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/logs"
head -c 600 /dev/zero | tr '\0' 'x' >"$work/www/index.html"
# nginx's worker runs as an unprivileged user: it must be able to read the file.
chmod 755 "$work" "$work/www"
chmod 644 "$work/www/index.html"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT;
        root $work/www;
    }
}
EOF
taskset -c "$NGINX_CPU" nginx -c "$work/nginx.conf" -p "$work" || die "nginx did not start"
sleep 0.5
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)
[[ "$code" == 200 ]] || die "nginx answered $code, not 200"

log "loadgen -t1 -c$CONNS -d${DUR}s -R$RATE on CPU $GEN_CPU, nginx on CPU $NGINX_CPU"
taskset -c "$GEN_CPU" "$LOADGEN" -t1 -c"$CONNS" -d"${DUR}s" -R"$RATE" -L \
    --json "$work/result.json" "http://127.0.0.1:$PORT/" >"$work/report.txt" &
pid=$!
: >"$work/samples.txt"
clk=$(getconf CLK_TCK)
# One sample a second: elapsed s, RSS kB, CPU ticks (user + system).
start=$(date +%s.%N)
while kill -0 "$pid" 2>/dev/null; do
    if [[ -r /proc/$pid/stat ]]; then
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        now=$(date +%s.%N)
        awk -v a="$now" -v b="$start" -v r="${rss:-0}" -v t="${ticks:-0}" \
            'BEGIN { printf "%.3f %s %s\n", a - b, r, t }' >>"$work/samples.txt"
    fi
    sleep 1
done
wait "$pid" || log "loadgen exited with status $?"
cat "$work/report.txt"

python3 - "$work/samples.txt" "$work/result.json" "$clk" <<'PY'
import json, statistics, sys
samples = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
doc = json.load(open(sys.argv[2]))
clk = float(sys.argv[3])
series = doc["series"]
t0 = series[0]["t"] if series else 0
print()
print("minute  RSS MB  CPU us/req  req/s     p50 med/max (us)   p99 med/max (us)")
minutes = int(doc["elapsed_s"] // 60)
for m in range(minutes):
    secs = [s for s in series if m * 60 <= s["t"] - t0 < (m + 1) * 60]
    reqs = sum(s["requests"] for s in secs)
    p50 = [s["p50_us"] for s in secs if s["p50_us"] is not None]
    p99 = [s["p99_us"] for s in secs if s["p99_us"] is not None]
    inside = [x for x in samples if m * 60 <= x[0] < (m + 1) * 60]
    if len(inside) < 2 or not reqs or not p50:
        continue
    rss = max(x[1] for x in inside) / 1024
    cpu_us = (inside[-1][2] - inside[0][2]) / clk * 1e6
    span = inside[-1][0] - inside[0][0]
    per_req = cpu_us / (reqs * span / 60) if span > 0 else float("nan")
    print(f"{m + 1:6d}  {rss:6.1f}  {per_req:10.2f}  {reqs / 60:7.0f}   "
          f"{statistics.median(p50):7.0f} / {max(p50):7.0f}  {statistics.median(p99):7.0f} / {max(p99):7.0f}")
print(f"\nrequests {doc['requests']}, errors {doc['errors']['total']}, dropped {doc.get('dropped', 0)}, "
      f"achieved {doc['rate']['achieved']:.1f} of {doc['rate']['target']} req/s")
PY

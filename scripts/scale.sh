#!/usr/bin/env bash
# Thread scaling (issue 5, item 4): how loadgen's maximum rate grows with -t.
#
# Splits the allowed CPUs in two: the built-in server (`loadgen serve --threads N/2`) runs on
# the upper half, the generator on the lower half. For each thread count t (default 1, 2, 4, ...
# up to half the CPUs) it runs loadgen closed loop (`-t t -c 50t`, full speed) pinned to the
# first t generator CPUs, and reports the achieved rate, the speed-up over one thread and its
# efficiency, the generator's CPU per request (its worker threads, from --json) and how busy
# the server's CPUs were: a server near 100% is the limit, and the rate then says nothing of
# the generator. With RATE_PER_THREAD=N it also runs open loop at -R N·t and reports the CPU
# per request there (flat when nothing is shared between threads).
#
# Needs nothing but the release binary (no network, no packages): it can run on a lent machine
# with more cores than the development VM. Loopback only.
#
# Env: DUR (seconds per run, default 5), THREADS ("1 2 4 8 16"; default powers of two up to
#      half the CPUs), RATE_PER_THREAD (unset: closed loop only), SKIP_BUILD=1, LOADGEN=path,
#      OUT (raw output directory, default a fresh one under /tmp).
set -euo pipefail

cd "$(dirname "$0")/.."
DUR=${DUR:-5}
LOADGEN=${LOADGEN:-target/release/loadgen}
OUT=${OUT:-$(mktemp -d /tmp/loadgen-scale.XXXXXX)}
mkdir -p "$OUT"
[[ "$DUR" =~ ^[0-9]+$ && "$DUR" -gt 0 ]] || { echo "DUR must be a positive integer" >&2; exit 2; }
if [[ -n "${RATE_PER_THREAD:-}" && ! "$RATE_PER_THREAD" =~ ^[0-9]+$ ]]; then
    echo "RATE_PER_THREAD must be a positive integer" >&2
    exit 2
fi

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release --quiet
fi
[[ -x "$LOADGEN" ]] || { echo "no loadgen binary at $LOADGEN" >&2; exit 1; }

# The CPUs this shell may use, one per line ("0-3,6" expanded).
allowed_cpus() {
    local list part
    list=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//') || true
    [[ -n "$list" ]] || { seq 0 $(($(nproc) - 1)); return; }
    IFS=',' read -ra parts <<<"$list"
    for part in "${parts[@]}"; do
        if [[ "$part" == *-* ]]; then seq "${part%-*}" "${part#*-}"; else echo "$part"; fi
    done
}
mapfile -t CPUS < <(allowed_cpus)
N=${#CPUS[@]}
HALF=$((N / 2))
((HALF >= 1)) || { echo "needs at least 2 CPUs (has $N)" >&2; exit 1; }
GEN_CPUS=("${CPUS[@]:0:HALF}")
SRV_CPUS=("${CPUS[@]:HALF}")
join() { local IFS=,; echo "$*"; }

if [[ -z "${THREADS:-}" ]]; then
    THREADS=""
    for ((t = 1; t <= HALF; t *= 2)); do THREADS+="$t "; done
fi
for t in $THREADS; do
    [[ "$t" =~ ^[0-9]+$ && "$t" -ge 1 && "$t" -le "$HALF" ]] ||
        { echo "thread count $t: must be 1..$HALF (half of the $N CPUs)" >&2; exit 2; }
done

taskset -c "$(join "${SRV_CPUS[@]}")" "$LOADGEN" serve --listen 127.0.0.1:0 \
    --threads "${#SRV_CPUS[@]}" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q '^listening on ' "$OUT/server.log" && break
    sleep 0.05
done
URL=$(sed -n 's/^listening on //p' "$OUT/server.log" | head -1)
[[ -n "$URL" ]] || { echo "server did not start: $(cat "$OUT/server.log")" >&2; exit 1; }

# CPU time (user + system) the server has used, in clock ticks.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
HZ=$(getconf CLK_TCK)

echo "CPUs: $N; server on $(join "${SRV_CPUS[@]}") (${#SRV_CPUS[@]} threads), generator on $(join "${GEN_CPUS[@]}"); ${DUR} s per run; raw output: $OUT" >&2

# run NAME THREADS EXTRA-ARGS...: one pinned loadgen run; prints "rate cpu_us_per_req server_busy".
run() {
    local name=$1 t=$2
    shift 2
    local before after
    before=$(server_ticks)
    taskset -c "$(join "${GEN_CPUS[@]:0:t}")" "$LOADGEN" -t"$t" -c$((50 * t)) -d"${DUR}s" \
        --json "$OUT/$name.json" "$@" "$URL" >"$OUT/$name.txt"
    after=$(server_ticks)
    python3 - "$OUT/$name.json" "$before" "$after" "$HZ" "${#SRV_CPUS[@]}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
before, after, hz, cores = (float(a) for a in sys.argv[2:6])
n, s = d["requests"], d["elapsed_s"]
cpu = d["generator_load"]["worker_cpu_ns"] / 1e3 / n if n else 0.0
busy = (after - before) / hz / s / cores * 100 if s else 0.0
print(f"{n / s:.0f} {cpu:.2f} {busy:.0f}")
PY
}

declare -A RATE CPU BUSY ORATE OCPU OBUSY
for t in $THREADS; do
    echo "== -t$t -c$((50 * t)) closed loop" >&2
    read -r RATE[$t] CPU[$t] BUSY[$t] < <(run "closed-t$t" "$t")
    if [[ -n "${RATE_PER_THREAD:-}" ]]; then
        echo "== -t$t -c$((50 * t)) -R$((RATE_PER_THREAD * t))" >&2
        read -r ORATE[$t] OCPU[$t] OBUSY[$t] < <(run "open-t$t" "$t" -R$((RATE_PER_THREAD * t)))
    fi
done

first=${THREADS%% *}
echo
echo "| threads | closed loop req/s | speed-up | per thread vs $first | generator CPU µs/req | server CPUs busy |"
echo "|---:|---:|---:|---:|---:|---:|"
for t in $THREADS; do
    python3 -c "
r, r1, t, t1 = ${RATE[$t]}, ${RATE[$first]}, $t, $first
print(f'| {t} | {r:.0f} | {r / r1:.2f}x | {(r / t) / (r1 / t1) * 100:.0f}% | ${CPU[$t]} | ${BUSY[$t]}% |')"
done
if [[ -n "${RATE_PER_THREAD:-}" ]]; then
    echo
    echo "| threads | -R | achieved req/s | generator CPU µs/req | server CPUs busy |"
    echo "|---:|---:|---:|---:|---:|"
    for t in $THREADS; do
        echo "| $t | $((RATE_PER_THREAD * t)) | ${ORATE[$t]} | ${OCPU[$t]} | ${OBUSY[$t]}% |"
    done
fi
echo
echo "A server CPU near 100% busy means the server, not the generator, set that row's rate."

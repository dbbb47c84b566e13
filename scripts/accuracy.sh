#!/usr/bin/env bash
# Accuracy suite (issue 5, item 2), the long version of tests/accuracy.rs.
#
# Runs server pathologies whose true latency distribution is known analytically against the
# built-in server (`loadgen serve`, pinned to CPU 0) with loadgen (pinned to CPU 1), computes
# the truth at p50/p90/p99/p99.9 and prints loadgen's corrected and uncorrected percentiles and
# the error of the corrected one. Each pathology is also run with wrk (Debian's, closed loop:
# `wrk -t1 -c<same> -d<same> --latency`) to show what a closed-loop tool reports. Finally the
# light-load baseline from issue 5: the single-connection low-load p50 (scripts/probe.py: a
# request every 5 ms, busy-polled; wrk -c1 for comparison) against loadgen's p50 and send lag at
# -R 200 -c 1 and -R 20000 -c 50 (auto pacing, which is coarse there, and precise). Loopback
# only.
#
# With REPEAT=N (default 1) every pathology's loadgen run is repeated N times, each on a fresh
# server: the tables then give each figure as the median of the N runs, and the verdict table
# lists every run's error beside the median's. (On a small VM a pause of either vCPU in the
# slowest 0.1% of one run can move that run's p99.9 by a millisecond: the runs show how often.)
#
# Env: DUR (seconds per run, default 10), REPEAT (loadgen runs per pathology, default 1),
#      SKIP_BUILD=1 (use the existing release binary), OUT (raw output directory, default a
#      fresh one under /tmp).
set -euo pipefail

cd "$(dirname "$0")/.."
DUR=${DUR:-10}
REPEAT=${REPEAT:-1}
[[ "$REPEAT" =~ ^[0-9]+$ && "$REPEAT" -gt 0 ]] || { echo "REPEAT must be a positive integer" >&2; exit 2; }
BIN=target/release/loadgen
OUT=${OUT:-$(mktemp -d /tmp/loadgen-accuracy.XXXXXX)}
mkdir -p "$OUT"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release --quiet
fi
if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

SERVER_PID=
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

# start_server NAME KNOBS... : starts a fresh server (the stall clock starts with it), sets URL.
start_server() {
    local name=$1
    shift
    stop_server
    taskset -c 0 "$BIN" serve --listen 127.0.0.1:0 --threads 1 "$@" >"$OUT/$name.server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$OUT/$name.server.log"; then break; fi
        sleep 0.05
    done
    URL=$(sed -n 's/^listening on //p' "$OUT/$name.server.log" | head -1)
    [[ -n "$URL" ]] || { echo "server did not start: $(cat "$OUT/$name.server.log")" >&2; exit 1; }
    # The stall schedules below count from server start and assume the run starts ~0.3 s later.
    sleep 0.3
}

# steal_ms: the time the VM host has kept CPU 0 and CPU 1 from running this guest, in ms since
# boot (/proc/stat's steal column, 10 ms units; 0 on bare metal). A pause of the generator's vCPU
# delays its sends, which the coordinated-omission correction must charge as latency.
steal_ms() {
    awk '$1 == "cpu0" || $1 == "cpu1" { printf "%d ", $9 * 10 }' /proc/stat
}

# pathology NAME CONNS RATE -- KNOBS... : REPEAT loadgen runs and one wrk run, each on a fresh
# server. Run i's files are $OUT/NAME.i.*.
pathology() {
    local name=$1 conns=$2 rate=$3 i before
    shift 4
    echo "== $name: serve $* ; loadgen -t1 -c$conns -R$rate -d${DUR}s (x$REPEAT) ; wrk -t1 -c$conns -d${DUR}s" >&2
    for i in $(seq "$REPEAT"); do
        start_server "$name.$i-loadgen" "$@"
        before=$(steal_ms)
        taskset -c 1 "$BIN" -t1 -c"$conns" -R"$rate" -d"${DUR}s" --timeout 60s -U --json "$OUT/$name.$i.json" "$URL" >"$OUT/$name.$i.loadgen.txt"
        echo "$before $(steal_ms)" >"$OUT/$name.$i.steal"
        # Stopping the server (SIGTERM) makes it print the service times it delivered.
        stop_server
    done
    start_server "$name-wrk" "$@"
    taskset -c 1 wrk -t1 -c"$conns" -d"${DUR}s" --timeout 60s --latency "$URL" >"$OUT/$name.wrk.txt"
    stop_server
}

STALL_S=$(python3 -c "print($DUR/10)")          # single stall: 10% of the run
STALL_AT=$(python3 -c "print($DUR*0.4)")
# Constant service time: 10 connections at 50 req/s each (a request every 20 ms on each, so
# none waits for its connection), 5000 samples in 10 s: p99.9 is the 5th-largest sample, not
# the 2nd of the 200 req/s runs before. 5 ms (the CI test's value) and 20 ms (20 connections,
# a request every 40 ms on each). In this VM an idle CPU's timer wake-up is up to a few ms
# late at p99.9, which both the server's delay and the generator's send would otherwise carry.
# At 500 req/s loadgen's precise pacing spins the last 150 us before each slot, and the server
# busy-waits the end of each delay too: the last 1 ms for the constant servers (half of CPU 0;
# with a constant delay the spins end in arrival order, so one never holds another's response
# back), 300 us for the bimodal one. With 300 us, the 5 ms server delivered p99.9 5.54 ms
# (+10.8%) in one run (2026-11-23 23:56); with 1 ms, +0.6% and +6.4% in the next two.
# (A trial build that spun the generator's last 1 ms instead of 150 us did not help at p99.9:
# its sends were 0.38 ms late there, and the CPU 1 timer check spinning 1 ms was 0.48 ms late.)
pathology constant 10 500 -- --delay 5ms --spin 1ms
pathology constant-20ms 20 500 -- --delay 20ms --spin 1ms
pathology single-stall 10 1000 -- --stall-at "${STALL_AT}s" --stall-for "${STALL_S}s"
pathology periodic-stalls 10 1000 -- --stall-at 500ms --stall-for 200ms --stall-every 1s
pathology bimodal 50 500 -- --slow-share 0.1 --slow-delay 20ms --spin 300us
pathology capacity 50 500 -- --capacity 400

# The machine's own timer, on each CPU: how late a thread wakes for a fixed plan of deadlines
# when it sleeps to MARGIN before each and spins the rest (so only a preempted or late-woken
# vCPU, not the timer's slack, can make it late). On CPU 0 as the server's delays run (5 ms,
# spinning the last 1 ms); on CPU 1 as the generator's precise pacing runs at 500 req/s (a slot
# every 2 ms, spinning the last 150 us). Their tails are floors under what the server can
# deliver and under the generator's send lag: no generator on this machine can send more
# punctually.
# timer_check CPU PERIOD_US MARGIN_US N LABEL
timer_check() {
    echo "== timer check: $4 deadlines $2 us apart on CPU $1, spinning the last $3 us" >&2
    taskset -c "$1" python3 - "$2" "$3" "$4" "$5" <<'TIMER'
import sys, time
period, margin, n = int(sys.argv[1]) * 1000, int(sys.argv[2]) * 1000, int(sys.argv[3])
late, due = [], time.monotonic_ns()
for _ in range(n):
    due += period
    time.sleep(max(0, due - margin - time.monotonic_ns()) / 1e9)
    while (now := time.monotonic_ns()) < due:
        pass
    late.append(now - due)
late.sort()
q = lambda p: late[min(len(late) - 1, int(len(late) * p / 100 + 0.5) - 1)] / 1e3
print(f"timer on {sys.argv[4]}: late p50 {q(50):.0f} us, p99 {q(99):.0f} us, p99.9 {q(99.9):.0f} us, max {late[-1] / 1e3:.0f} us")
TIMER
}
{
    timer_check 0 5000 1000 2000 "CPU 0 (5 ms sleeps, spinning the last 1 ms: under any delivered service time)"
    timer_check 1 2000 150 5000 "CPU 1 (a slot every 2 ms, spinning the last 150 us, as the generator's precise pacing at 500 req/s: under its send lag)"
} >"$OUT/timer.txt"

# Light-load baseline (issue 5): true p50 from one connection at low load vs loadgen's p50.
echo "== baseline: probe.py, wrk -c1, loadgen -R200 -c1, loadgen -R20000 -c50" >&2
start_server baseline
taskset -c 1 python3 scripts/probe.py "$URL" 1000 5 >"$OUT/baseline.probe.txt"
taskset -c 1 wrk -t1 -c1 -d5s --latency "$URL" >"$OUT/baseline.wrk-c1.txt"
# The truth at the same light load: wrk closed loop on one connection with 5 ms of think time
# (~190 req/s) measures only its own send-to-response time, with the server as idle between
# requests as it is under loadgen -R200 -c1.
THINK=$(mktemp --suffix=.lua)
printf 'function delay()\n  return 5\nend\n' >"$THINK"
taskset -c 1 wrk -t1 -c1 -d5s --latency -s "$THINK" "$URL" >"$OUT/baseline.wrk-c1-think.txt"
rm -f "$THINK"
taskset -c 1 "$BIN" -t1 -c1 -R200 -d5s --latency "$URL" >"$OUT/baseline.R200-c1.txt"
taskset -c 1 "$BIN" -t1 -c50 -R20000 -d5s --latency "$URL" >"$OUT/baseline.R20000-c50.txt"
taskset -c 1 "$BIN" -t1 -c50 -R20000 -d5s --latency --pacing precise "$URL" >"$OUT/baseline.R20000-c50-precise.txt"
stop_server

DUR="$DUR" OUT="$OUT" REPEAT="$REPEAT" python3 - <<'PY'
import json, os, re, statistics
D = float(os.environ["DUR"]); out = os.environ["OUT"]; N = int(os.environ["REPEAT"])

def us(s):
    for suf, m in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if s.endswith(suf):
            return float(s[: -len(suf)]) * m
    raise ValueError(s)

def loadgen(name):
    """(corrected, uncorrected) dicts percentile -> ms, and the text."""
    text = open(f"{out}/{name}").read()
    dists, cur = [{}, {}], -1
    for line in text.splitlines():
        t = line.strip()
        if t.startswith("Latency Distribution (HdrHistogram - Recorded"): cur = 0
        elif t.startswith("Latency Distribution (HdrHistogram - Uncorrected"): cur = 1
        elif cur >= 0 and (m := re.match(r"^([\d.]+)%\s+(\S+)$", t)):
            dists[cur][float(m.group(1))] = us(m.group(2)) / 1e3
    return dists[0], dists[1], text

def wrk(name):
    d = {}
    for line in open(f"{out}/{name}").read().splitlines():
        if m := re.match(r"^\s*(50|75|90|99)%\s+(\S+)$", line):
            d[float(m.group(1))] = us(m.group(2)) / 1e3
    return d

def delivered(name):
    """The service times the server says it delivered to loadgen's run (kernel receive of each
    request to its response), percentile -> ms."""
    d = {}
    for line in open(f"{out}/{name}-loadgen.server.log").read().splitlines():
        if line.startswith("served ") and "service time" in line:
            for p, v in re.findall(r"p([\d.]+) (\S+?)(?:,|$)", line):
                d[float(p)] = us(v) / 1e3
    return d

def count(text):
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    return int(m.group(1)) if m else 0

PS = (50.0, 90.0, 99.0, 99.9)
# Truth in ms at percentile p (None: a mode boundary, not comparable).
def stalls(n, S):   # share slower than x is n·(S − x)/D for 0 < x < S
    return lambda p: max(0.0, S - (1 - p / 100) * D / n) * 1e3
R, C = 500.0, 400.0
cases = [
    ("constant 5 ms", "constant", lambda p: 5.0),
    ("constant 20 ms", "constant-20ms", lambda p: 20.0),
    (f"single stall {D/10:g}s", "single-stall", stalls(1, D / 10)),
    ("stalls 200ms/1s", "periodic-stalls", stalls(int(D), 0.2)),
    ("bimodal 10% +20ms", "bimodal", lambda p: None if p == 90 else (0.0 if p < 90 else 20.0)),
    ("capacity 400 @500 (all planned)", "capacity", lambda p: (p / 100 * D * (R / C - 1) + 1 / C) * 1e3),
]
def med(vals):
    """The median of the runs' figures (None when no run has one)."""
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None

rows = []
for label, name, truth in cases:
    runs = [loadgen(f"{name}.{i}.loadgen.txt") for i in range(1, N + 1)]
    w = wrk(f"{name}.wrk.txt")
    # Per-request pathologies: the server's own record of what it delivered is a second truth
    # (timer overshoot and scheduling hiccups included). Not for stalls and capacity, where
    # requests also wait in the generator's plan, which the server cannot see.
    dvs = [delivered(f"{name}.{i}") if name in ("constant", "constant-20ms", "bimodal") else {} for i in range(1, N + 1)]
    for p in PS:
        cors = [r[0].get(p) for r in runs]
        rows.append((label, p, truth(p), med(cors), med(r[1].get(p) for r in runs), w.get(p), med(d.get(p) for d in dvs), cors))
    if name == "capacity":
        # loadgen drains what was planned before the deadline (up to --timeout, 60 s here), so
        # every planned request should be recorded.
        got = ", ".join(str(count(r[2])) for r in runs)
        print(f"capacity: {got} requests recorded of {int(R*D)} planned (server can finish {int(C*D)} by the deadline)")

def f(v):
    return "-" if v is None else (f"{v/1e3:.3f} s" if v >= 1000 else f"{v:.3f} ms")

print()
print("Truth: the server's pathology only (base loopback cost, ~0.1 ms, not included).")
print("wrk is closed loop: its numbers are what a tool subject to coordinated omission reports.")
print()
print("Delivered: the server's own record (`loadgen serve` prints it on exit) of the service")
print("times it delivered in loadgen's run, from each request's kernel receive timestamp to its")
print("response: the knob as this machine's timers and scheduler carried it out.")
print()
if N > 1:
    print(f"loadgen and delivered figures: the median of {N} runs, each on a fresh server.")
    print()
print("| pathology | percentile | truth | loadgen corrected | error % | delivered | error vs delivered | loadgen uncorrected | wrk (closed loop) |")
print("|---|---|---|---|---|---|---|---|---|")
def rel(c, t):
    if t is None or c is None:
        return "-"
    if t < 1.0:
        return f"n/a (abs {c - t:+.3f} ms)"
    return f"{(c - t) / t * 100:+.1f}%"
for label, p, t, c, u, w, dv, _ in rows:
    err = "(mode boundary)" if t is None else rel(c, t)
    print(f"| {label} | p{p:g} | {'boundary 0/20 ms' if t is None else f(t)} | {f(c)} | {err} | {f(dv)} | {rel(c, dv)} | {f(u)} | {f(w)} |")


# The issue's criterion: corrected p99 and p99.9 within 10% of the truth. For each row it
# applies to, say which side of it the run fell, and for a miss, what the run saw that explains
# it: the generator's own send lag (a late send is charged as latency, as it must be), what the
# server says it delivered, and the time the VM host stole from the two CPUs during the run.
def lag(name, p):
    """loadgen's send lag (actual - intended send, ms) at percentile p, from its JSON."""
    try:
        return json.load(open(f"{out}/{name}.json"))["latency"]["send_lag"][f"p{p:g}"] / 1e3
    except (OSError, ValueError, KeyError):
        return None
def steal(name):
    try:
        a = open(f"{out}/{name}.steal").read().split()
        return [int(a[i + 2]) - int(a[i]) for i in range(2)]
    except (OSError, ValueError, IndexError):
        return None
print()
print("Criterion: corrected p99 and p99.9 within 10% of the truth.")
print()
print(f"| pathology | percentile | error % {'(median of runs) ' if N > 1 else ''}| verdict | {'each run | ' if N > 1 else ''}send lag at that percentile | delivered error | host steal CPU0/CPU1 |")
print("|---|---|---|---|---|---|---|" + ("---|" if N > 1 else ""))
met = total = runs_met = runs_total = 0
names = {label: name for label, name, _ in cases}
for label, p, t, c, u, w, dv, cors in rows:
    if p < 99 or t is None or t < 1.0 or c is None:
        continue
    total += 1
    e = (c - t) / t * 100
    ok = abs(e) <= 10
    met += ok
    errs = [None if x is None else (x - t) / t * 100 for x in cors]
    runs_total += len(errs)
    runs_met += sum(1 for x in errs if x is not None and abs(x) <= 10)
    each = ", ".join("-" if x is None else f"{x:+.1f}%" for x in errs)
    ids = [f"{names[label]}.{i}" for i in range(1, N + 1)]
    lags = ", ".join(f(lag(i, p)) for i in ids)
    sts = [steal(i) for i in ids]
    st = ", ".join("-" if x is None else f"{x[0]} / {x[1]} ms" for x in sts)
    dve = f"{(dv - t) / t * 100:+.1f}%" if dv is not None else "-"
    print(f"| {label} | p{p:g} | {e:+.1f}% | {'within' if ok else 'OVER'} | {each + ' | ' if N > 1 else ''}{lags} | {dve} | {st} |")
print()
if N > 1:
    print(f"{met} of {total} medians within 10%; single runs: {runs_met} of {runs_total} figures.")
print(f"{'' if N > 1 else f'{met} of {total} within 10%. '}A miss whose send lag at that percentile is near the CPU 1 timer's")
print("tail below is this machine's timing floor: a thread that does nothing but keep that plan is")
print("as late, so no generator here could send more punctually (the correction must charge it).")
print()
print(open(f"{out}/timer.txt").read().strip())
print()
print("Light-load baseline (built-in server, no delay):")
w1 = wrk("baseline.wrk-c1.txt")
print(f"| run | p50 | p99 | send lag |")
print("|---|---|---|---|")
probe = {}
if m := re.search(r"p50 ([\d.]+) us, p90 ([\d.]+) us, p99 ([\d.]+) us", open(f"{out}/baseline.probe.txt").read()):
    probe = {50.0: float(m.group(1)) / 1e3, 99.0: float(m.group(3)) / 1e3}
print(f"| probe.py: one connection, a request every 5 ms, busy-polled (the single-connection low-load latency) | {f(probe.get(50.0))} | {f(probe.get(99.0))} | - |")
print(f"| wrk -t1 -c1 (closed loop, back to back: the server never idles) | {f(w1.get(50.0))} | {f(w1.get(99.0))} | - |")
w2 = wrk("baseline.wrk-c1-think.txt")
print(f"| wrk -t1 -c1 with 5 ms think time (~190 req/s: the same light load, server idle between requests; includes wrk's own wake-up) | {f(w2.get(50.0))} | {f(w2.get(99.0))} | - |")
base = probe.get(50.0)
for name, label in (("baseline.R200-c1.txt", "loadgen -R200 -c1"), ("baseline.R20000-c50.txt", "loadgen -R20000 -c50"), ("baseline.R20000-c50-precise.txt", "loadgen -R20000 -c50 --pacing precise")):
    cor, _, text = loadgen(name)
    lag = re.search(r"^Send lag:\s+(.*)$", text, re.M)
    ratio = f" ({cor[50.0]/base:.2f}x of probe.py" + (f", {cor[50.0]/w1[50.0]:.2f}x of wrk -c1)" if w1.get(50.0) else ")") if base and cor.get(50.0) else ""
    print(f"| {label} | {f(cor.get(50.0))}{ratio} | {f(cor.get(99.0))} | {lag.group(1) if lag else '-'} |")
PY
echo
echo "raw output: $OUT"

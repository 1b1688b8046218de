#!/usr/bin/env bash
# make bench, the capacity of one mcbox lcore next to stock memcached's per core, same run:
#   e2e_memif_mrps_mcbox      mcbox on one lcore (core 0) driven closed loop by build/mcgen on
#                             the other core over memif (scripts/memif.sh): the window is raised
#                             until a request is lost or answered wrong, or it gains < 2%; the
#                             best window with no loss and no wrong reply counts, best of 3 sweeps
#   e2e_memif_p50_us_mcbox_R  and _p99_: latency at fixed open-loop rates R (100k, 1m req/s)
#   memcached_rps_per_core    memcached -U -t 1 on loopback driven by build/mcload over UDP (a
#                             few windows and threads): its requests (cmd_get + cmd_set) per
#                             CPU-second of the memcached process (utime + stime from
#                             /proc/<pid>/stat), the best of the runs
#   mcbox_over_memcached_per_core   e2e_memif_mrps_mcbox * 1e6 / memcached_rps_per_core
# Usage: scripts/bench-memif.sh [results.json] [machine params as JSON members]
# Appends to the results file. Each run is MEMIF_SECONDS long (default 3; 1 with BENCH_QUICK=1).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${1:-build/bench/results.json}
machine=${2:-}
SECS=${MEMIF_SECONDS:-3}
[ "${BENCH_QUICK:-0}" = 1 ] && SECS=1
# mcgen maps its mbufs into the memif (it copies nothing; mcbox, the server, copies as any
# memif server does), so that less of the generator's core goes to the generator's side.
export MEMIF_ZERO_COPY=${MEMIF_ZERO_COPY:-1}
WORKLOAD=(-k 100000 -z 0.99 -g 0.9 -p ascii --key-size 16 --value-size 32)
LAB_DIR=$(mktemp -d /tmp/mcbox-memif-bench.XXXXXX)
export LAB_DIR
tmp=$LAB_DIR/runs
mkdir -p "$tmp"
mcpid=
cleanup() {
	bash scripts/memif.sh down >/dev/null 2>&1
	if [ -n "$mcpid" ]; then
		kill "$mcpid" 2>/dev/null
		wait "$mcpid" 2>/dev/null
	fi
	rm -rf "$LAB_DIR"
}
trap cleanup EXIT INT TERM

field() { /usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(*[j[k] for k in sys.argv[2:]])' "$@"; }

echo "bench: mcbox over memif (one lcore), driven by mcgen"
bash scripts/memif.sh up || exit 1
# The window sweep runs SWEEPS times (3; 1 with BENCH_QUICK=1) and the best sweep counts: on
# this shared VM a run sometimes lands on a busy host core and loses a third (3.2-3.6 against
# 5.4-6.0 Mreq/s seen at one commit); capacity is what the lcore serves when it is not
# disturbed. Every sweep's best goes into params (sweeps).
SWEEPS=${MEMIF_SWEEPS:-3}
[ "${BENCH_QUICK:-0}" = 1 ] && SWEEPS=1
best=0
: >"$tmp/sweeps"
for sweep in $(seq 1 "$SWEEPS"); do
	sbest=0
	for w in 32 64 128 256 512 1024; do
		run="closed_${sweep}_$w"
		if ! bash scripts/memif.sh gen -d "$SECS" -w 0.5 -c "$w" --preload "${WORKLOAD[@]}" \
			--json "$tmp/$run.json" >"$tmp/$run.txt" 2>&1; then
			echo "  sweep $sweep window $w: mcgen failed:"; tail -n 5 "$tmp/$run.txt" | sed 's/^/    /'
			echo "  mcbox's log:"; tail -n 5 "$LAB_DIR/mcbox.log" | sed 's/^/    /'
			break
		fi
		read -r rps loss errors busy < <(field "$tmp/$run.json" rps loss errors gen_busy)
		printf '  sweep %d window %5d: %9.0f req/s, %s lost, %s wrong, mcgen busy %.0f%%\n' "$sweep" "$w" \
			"$rps" "$loss" "$errors" "$(/usr/bin/python3 -c "print(100 * $busy)")"
		[ "$loss" = 0 ] && [ "$errors" = 0 ] || break
		gain=$(/usr/bin/python3 -c "print(int($rps > 1.02 * $sbest))")
		[ "$(/usr/bin/python3 -c "print(int($rps > $sbest))")" = 1 ] && sbest=$rps
		if [ "$(/usr/bin/python3 -c "print(int($rps > $best))")" = 1 ]; then
			best=$rps
			cp "$tmp/$run.json" "$tmp/closed_best.json"
		fi
		[ "$gain" = 1 ] || break
	done
	echo "$sbest" >>"$tmp/sweeps"
done
MEMIF_ZC_USED=$(cat "$LAB_DIR/zero_copy" 2>/dev/null || echo no)
export MEMIF_ZC_USED
for rate in 100000 1000000; do
	if bash scripts/memif.sh gen -d "$SECS" -w 0.5 -r "$rate" --preload "${WORKLOAD[@]}" \
		--json "$tmp/open_$rate.json" >"$tmp/open_$rate.txt" 2>&1; then
		echo "  open loop $rate req/s: $(grep -m1 'loop' "$tmp/open_$rate.txt" | sed 's/.*latency/latency/')"
	else
		echo "  open loop $rate req/s: mcgen failed:"; tail -n 5 "$tmp/open_$rate.txt" | sed 's/^/    /'
	fi
done
bash scripts/memif.sh down >/dev/null

# Stock memcached, one worker thread, UDP on loopback; TCP only for its stats.
echo "bench: memcached -U -t 1 on loopback, driven by mcload; CPU from /proc/<pid>/stat"
read -r uport tport < <(/usr/bin/python3 -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
t = socket.socket(); t.bind(("127.0.0.1", 0))
print(u.getsockname()[1], t.getsockname()[1])')
memcached -u root -l 127.0.0.1 -p "$tport" -U "$uport" -m 64 -t 1 &
mcpid=$!
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$tport") 2>/dev/null && break; sleep 0.1; done
# "<requests> <cpu ticks>": memcached's cmd_get + cmd_set, and utime + stime of its process.
sample() {
	/usr/bin/python3 - "$tport" "$mcpid" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    buf += s.recv(65536)
st = dict(l.split()[1:3] for l in buf.decode().splitlines() if l.startswith("STAT "))
f = open("/proc/%s/stat" % sys.argv[2]).read().rsplit(")", 1)[1].split()
print(int(st["cmd_get"]) + int(st["cmd_set"]), int(f[11]) + int(f[12]))
PY
}
timeout 60 build/mcload -s "127.0.0.1:$uport" -d 0.5 -w 0 --preload "${WORKLOAD[@]}" >/dev/null 2>&1
hz=$(getconf CLK_TCK)
for threads in ${MCD_THREADS:-1 2}; do
	for w in 8 32 128; do
		name="mcd_T${threads}_c$w"
		read -r r0 c0 < <(sample)
		t0=$(date +%s.%N)
		timeout 60 build/mcload -s "127.0.0.1:$uport" -T "$threads" -c "$w" -d "$SECS" -w 0.5 \
			"${WORKLOAD[@]}" --json "$tmp/$name.json" >"$tmp/$name.txt" 2>&1
		read -r r1 c1 < <(sample)
		t1=$(date +%s.%N)
		/usr/bin/python3 - "$tmp/$name.cpu" "$threads" "$w" "$r0" "$r1" "$c0" "$c1" "$hz" "$t0" "$t1" <<'PY'
import json, sys
f, T, w, r0, r1, c0, c1, hz, t0, t1 = sys.argv[1:]
req, cpu, wall = int(r1) - int(r0), (int(c1) - int(c0)) / float(hz), float(t1) - float(t0)
json.dump({"threads": int(T), "window": int(w), "requests": req, "cpu_s": cpu, "wall_s": wall,
           "per_cpu_s": req / cpu if cpu > 0 else 0}, open(f, "w"))
print("  mcload -T %s -c %-4s %8.0f req/s, memcached CPU %4.0f%%: %8.0f requests per CPU-second"
      % (T, w, req / wall, 100 * cpu / wall, req / cpu if cpu > 0 else 0))
PY
	done
done
kill "$mcpid" 2>/dev/null
wait "$mcpid" 2>/dev/null
mcpid=

/usr/bin/python3 - "$out" "$tmp" "$machine" "$SECS" <<'PY'
import glob, json, os, sys
out, tmp, machine, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
extra = json.loads("{" + machine + "}") if machine else {}
def j(name):
    p = os.path.join(tmp, name)
    return json.load(open(p)) if os.path.exists(p) else None
res = []
def add(name, unit, value, **params):
    if value is None:
        return
    params.update(extra)
    res.append({"name": name, "unit": unit, "value": value, "params": params})
    print("  %-36s %12.3f %s" % (name, value, unit))
workload = "ASCII, 100k keys, Zipf 0.99, 90% gets, 16 B keys, 32 B values, every key preloaded"
gen = ("build/mcgen (DPDK) on lcore 1 over memif (zero-copy on mcgen's side when hugepages "
       "are there: zero_copy in params; mcbox, the server, copies), one mcbox lcore on core 0, one "
       "queue; includes mcbox's whole per-request path (RX from the memif ring, parse and "
       "validation, software IPv4/UDP checksums both ways, lookup, reply, TX) and mcgen's "
       "check of every reply; excludes any kernel, NIC or wire; mcgen runs on the other core")
c = j("closed_best.json")
e2e = c and c["rps"] / 1e6
add("e2e_memif_mrps_mcbox", "Mreq/s", e2e, window=c and c["window"], loss=c and c["loss"],
    errors=c and c["errors"], p50_us=c and c["p50_us"], p99_us=c and c["p99_us"],
    zero_copy=os.environ.get("MEMIF_ZC_USED") == "yes", generator_busy=c and c["gen_busy"],
    generator_cycles_per_request=c and c["gen_cycles_per_req"], seconds=secs, client=gen,
    workload=workload,
    mcbox="-l 0, --udp-writes=on --exception off -p 0 --source-rps 0 --source-kbps 0, idle-sleep 0",
    sweeps=[round(float(x) / 1e6, 3) for x in open(os.path.join(tmp, "sweeps")).read().split()],
    stat="best of the sweeps' best windows")
for rate, tag in ((100000, "100k"), (1000000, "1m")):
    o = j("open_%d.json" % rate)
    if o:
        for q in ("p50", "p99"):
            add("e2e_memif_%s_us_mcbox_%s" % (q, tag), "us", o[q + "_us"], rate=rate, loss=o["loss"],
                errors=o["errors"], seconds=secs, client=gen + "; open loop", workload=workload)
runs = [json.load(open(p)) for p in glob.glob(os.path.join(tmp, "*.cpu"))]
best = max(runs, key=lambda r: r["per_cpu_s"]) if runs else None
mcd = best and best["per_cpu_s"]
add("memcached_rps_per_core", "req/CPU-s", mcd, server="memcached 1.6 -U -t 1 -m 64, loopback",
    client="build/mcload over UDP, %d thread(s), window %d (best of threads 1-2 x windows 8/32/128)"
    % (best["threads"], best["window"]) if best else None,
    requests=best and best["requests"], cpu_s=best and best["cpu_s"], wall_s=best and best["wall_s"],
    includes="all CPU time of the memcached process (every thread, user and system: its recvmsg/"
    "sendmsg syscalls and the kernel UDP work run in its context)",
    excludes="the client's CPU, and kernel work charged to the client (on loopback the request's "
    "delivery runs in the sender's context), so the figure flatters memcached slightly",
    workload=workload.replace("every key preloaded", "every key preloaded by mcload --preload"))
if e2e and mcd:
    add("mcbox_over_memcached_per_core", "ratio", e2e * 1e6 / mcd,
        what="e2e_memif_mrps_mcbox (one polling lcore = one core) over memcached_rps_per_core, same run")
results = json.load(open(out)) if os.path.exists(out) else []
json.dump(results + res, open(out, "w"), indent=1)
PY

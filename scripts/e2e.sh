#!/usr/bin/env bash
# Side by side, same machine, same run, same client, same path: mcbox in the lab and stock
# memcached -U (one worker thread, the same memory) in namespace mcbox-mcd behind an identical
# veth pair from the client namespace. Driven by mcload (closed loop at saturation, then open
# loop at a fixed rate for latency) and memcaslap -U. mcbox runs on af_packet and on af_xdp.
# Appends results to build/bench/results.json (bench.sh calls this). Bounded in time.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/bench/results.json}
machine=${2:-}
NS=mcbox-client MNS=mcbox-mcd
SECS=${E2E_SECONDS:-5}
RATE=${E2E_RATE:-20000}
CASLAP_ROUNDS=${E2E_CASLAP_ROUNDS:-5}
tmp=$(mktemp -d)
cleanup() {
	[ -f "$tmp/mcd.pid" ] && kill "$(cat "$tmp/mcd.pid")" 2>/dev/null
	ip netns del "$MNS" 2>/dev/null
	ip netns exec "$NS" ip link del mcc2 2>/dev/null
	bash scripts/lab.sh down >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

load() { # name target-ip extra-args...
	local name=$1 ip=$2
	shift 2
	ip netns exec "$NS" timeout $((SECS + 30)) build/mcload -s "$ip:11211" -d "$SECS" -w 1 -k 100000 \
		--json "$tmp/$name.json" "$@" | sed 's/^/  /'
}
caslap() { # name target-ip [extra memcaslap args, e.g. -U]
	local name=$1 ip=$2
	shift 2
	ip netns exec "$NS" timeout $((SECS + 30)) memcaslap -s "$ip:11211" "$@" -t "${SECS}s" -T 1 -c 16 -X 64 \
		2>&1 | awk '/^Run time/ {for (i = 1; i <= NF; i++) if ($i == "TPS:") print $(i+1)}' > "$tmp/$name.tps"
	echo "  memcaslap $* $ip: $(cat "$tmp/$name.tps") TPS"
}

for pmd in af_packet af_xdp; do
	echo "e2e: mcbox on $pmd"
	if ! LAB_PMD=$pmd MCBOX_ARGS="--udp-writes=on ${MCBOX_ARGS:-}" bash scripts/lab.sh up >/dev/null; then
		echo "e2e: mcbox did not come up on $pmd; skipped"
		continue
	fi
	if [ "$pmd" = af_packet ]; then
		# memcached behind its own veth pair into the same client namespace.
		ip netns add "$MNS"
		ip link add mcd0 netns "$MNS" type veth peer name mcc2 netns "$NS"
		ip netns exec "$MNS" ip link set lo up
		ip netns exec "$MNS" ip addr add 198.18.2.1/24 dev mcd0
		ip netns exec "$MNS" ip link set mcd0 up
		ip netns exec "$NS" ip addr add 198.18.2.2/24 dev mcc2
		ip netns exec "$NS" ip link set mcc2 up
		ip netns exec "$MNS" memcached -u root -l 198.18.2.1 -p 11211 -U 11211 -m 64 -t 1 &
		echo $! > "$tmp/mcd.pid"
		for i in $(seq 1 50); do ip netns exec "$NS" ping -c1 -W0.2 -q 198.18.2.1 >/dev/null 2>&1 && break; done
		echo "e2e: memcached -U -t 1 -m 64 behind veth"
		load mcd_closed 198.18.2.1 -c 32
		load mcd_open 198.18.2.1 -r "$RATE" --cdf "$tmp/mcd.cdf"
		# memcaslap -U against both, alternating rounds, while both are up: the ratio is
		# the median of the rounds' ratios (the machine's noise hits both alike).
		for r in $(seq 1 "$CASLAP_ROUNDS"); do
			caslap "mcbox_af_packet_caslap_r$r" 198.18.0.1 -U
			caslap "mcd_caslap_r$r" 198.18.2.1 -U
		done
		caslap mcd_caslap_tcp 198.18.2.1
	fi
	echo "e2e: mcbox ($pmd)"
	load "mcbox_${pmd}_closed" 198.18.0.1 -c 32
	load "mcbox_${pmd}_open" 198.18.0.1 -r "$RATE" --cdf "$tmp/mcbox_$pmd.cdf"
	[ "$pmd" != af_packet ] && caslap "mcbox_${pmd}_caslap" 198.18.0.1 -U
	# TCP: the same client through the kernel path (exception path, kernel TCP, mcbox threads).
	caslap "mcbox_${pmd}_caslap_tcp" 198.18.0.1
	bash scripts/lab.sh down >/dev/null
done

# The picture: latency CDFs at the fixed rate, mcbox vs memcached.
png=$(dirname "$out")/latency.png
if command -v gnuplot >/dev/null && [ -s "$tmp/mcd.cdf" ] && [ -s "$tmp/mcbox_af_packet.cdf" ]; then
	plots="'$tmp/mcd.cdf' using 1:2 with lines lw 2 title 'memcached -U -t 1', '$tmp/mcbox_af_packet.cdf' using 1:2 with lines lw 2 title 'mcbox (af\\_packet)'"
	[ -s "$tmp/mcbox_af_xdp.cdf" ] && plots="$plots, '$tmp/mcbox_af_xdp.cdf' using 1:2 with lines lw 2 title 'mcbox (af\\_xdp)'"
	gnuplot <<GP && echo "e2e: latency CDF in $png"
set terminal png size 900,540
set output '$png'
set title "UDP get/set latency at $RATE req/s through veth (mcload, Zipf 0.99, 90% gets)"
set xlabel 'latency (microseconds, log scale)'
set ylabel 'fraction of requests'
set logscale x
set key bottom right
set grid
plot $plots
GP
fi

/usr/bin/python3 - "$out" "$tmp" "$machine" "$SECS" "$RATE" <<'PY'
import json, os, sys
out, tmp, machine, secs, rate = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
extra = json.loads("{" + machine + "}") if machine else {}
def j(name):
    p = os.path.join(tmp, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def tps(name):
    p = os.path.join(tmp, name + ".tps")
    try:
        return float(open(p).read().strip())
    except (OSError, ValueError):
        return None
res = []
def add(name, unit, value, **params):
    if value is None:
        return
    params.update(extra)
    res.append({"name": name, "unit": unit, "value": value, "params": params})
    print("  %-36s %12.3f %s" % (name, value, unit))
common = {"client": "mcload, 1 thread, 100k keys, Zipf 0.99, 90% gets, ASCII", "seconds": float(secs),
          "path": "client namespace -> veth -> server"}
for pmd in ("af_packet", "af_xdp"):
    c, o = j("mcbox_%s_closed" % pmd), j("mcbox_%s_open" % pmd)
    suffix = "" if pmd == "af_packet" else "_af_xdp"
    add("e2e_mcload_mrps_mcbox" + suffix, "Mreq/s", c and c["rps"] / 1e6, window=32, pmd=pmd, **common)
    add("e2e_p50_us_mcbox" + suffix, "us", o and o["p50_us"], rate=float(rate), pmd=pmd, **common)
    add("e2e_p99_us_mcbox" + suffix, "us", o and o["p99_us"], rate=float(rate), pmd=pmd, **common)
    if pmd != "af_packet":
        add("e2e_memcaslap_tps_mcbox" + suffix, "req/s", tps("mcbox_%s_caslap" % pmd), pmd=pmd, client="memcaslap -U -c 16")
    add("e2e_memcaslap_tcp_tps_mcbox" + suffix, "req/s", tps("mcbox_%s_caslap_tcp" % pmd), pmd=pmd,
        client="memcaslap (TCP) -c 16 -T 1", path="veth -> mcbox port -> exception path (TAP) -> kernel TCP -> mcbox TCP threads")
def median(v):
    v = sorted(v)
    return None if not v else (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2)
rounds = [(tps("mcbox_af_packet_caslap_r%d" % r), tps("mcd_caslap_r%d" % r)) for r in range(1, 100)]
rounds = [(a, b) for a, b in rounds if a and b]
if rounds:
    add("e2e_memcaslap_tps_mcbox", "req/s", median([a for a, _ in rounds]), pmd="af_packet",
        client="memcaslap -U -c 16 -T 1", rounds=len(rounds), stat="median")
    add("e2e_memcaslap_tps_memcached", "req/s", median([b for _, b in rounds]),
        client="memcaslap -U -c 16 -T 1", rounds=len(rounds), stat="median")
    add("e2e_memcaslap_ratio_mcbox_over_memcached", "ratio", median([a / b for a, b in rounds]),
        client="memcaslap -U -c 16 -T 1", rounds=len(rounds), stat="median of alternating rounds",
        ratios=[round(a / b, 3) for a, b in rounds])
c, o = j("mcd_closed"), j("mcd_open")
add("e2e_mcload_mrps_memcached", "Mreq/s", c and c["rps"] / 1e6, window=32, server="memcached -U -t 1 -m 64", **common)
add("e2e_p50_us_memcached", "us", o and o["p50_us"], rate=float(rate), **common)
add("e2e_p99_us_memcached", "us", o and o["p99_us"], rate=float(rate), **common)
add("e2e_memcaslap_tcp_tps_memcached", "req/s", tps("mcd_caslap_tcp"), client="memcaslap (TCP) -c 16 -T 1",
    path="veth -> kernel TCP -> memcached -t 1")
if tps("mcbox_af_packet_caslap_tcp") and tps("mcd_caslap_tcp"):
    add("e2e_memcaslap_tcp_ratio_mcbox_over_memcached", "ratio",
        tps("mcbox_af_packet_caslap_tcp") / tps("mcd_caslap_tcp"), client="memcaslap (TCP) -c 16 -T 1")
mc, md = j("mcbox_af_packet_closed"), j("mcd_closed")
if mc and md and md["rps"] > 0:
    add("e2e_mcload_ratio_mcbox_over_memcached", "ratio", mc["rps"] / md["rps"], **common)
results = json.load(open(out)) if os.path.exists(out) else []
json.dump(results + res, open(out, "w"), indent=1)
PY

#!/usr/bin/env bash
# make bench: mcbox's numbers in build/bench/results.json plus a readable table.
# Runs mcbench (in-process dataplane and store benchmarks, no NIC: --no-pci, its own
# --file-prefix) and a stock memcached on loopback for the hit-ratio comparison.
# BENCH_QUICK=1 for a short run.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/results.json
mcport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mem=8
[ "${BENCH_QUICK:-0}" = 1 ] && mem=2
memcached -u root -l 127.0.0.1 -p "$mcport" -U 0 -m "$mem" -t 1 &
mcpid=$!
trap 'kill $mcpid 2>/dev/null; wait $mcpid 2>/dev/null' EXIT
for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$mcport") 2>/dev/null && break; sleep 0.1; done
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//; s/"//g')
machine="\"commit\": \"$commit\", \"cpu\": \"$cpu\", \"cores\": $(nproc)"
quick=()
[ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
# Hugepages as mcbox runs on them (4 KiB pages cost a TLB miss per item); without them the
# numbers are marked so.
if bash scripts/hugepages.sh 1024 >/dev/null; then
	pages=(--huge-unlink)
	machine="$machine, \"pages\": \"2 MiB hugepages\""
else
	pages=(--no-huge -m 1024)
	machine="$machine, \"pages\": \"4 KiB (no hugepages)\""
fi
echo "mcbench on $cpu, commit $commit (${pages[*]})"
build/mcbench "${pages[@]}" --no-pci -l 0 --file-prefix "mcbench-$$" --log-level='lib.*:error' -- \
	--out "$out" --memcached-port "$mcport" --machine "$machine" "${quick[@]}"
rc=$?
rm -rf "/var/run/dpdk/mcbench-$$"
[ $rc -eq 0 ] || exit $rc

# TCP: a large value copied into the reply or sent from item memory (sendmsg under a store
# reference), loopback, alternating rounds (bench/tcpbench.c).
echo "bench: TCP gets, values copied vs sent from item memory"
rounds=5
[ "${BENCH_QUICK:-0}" = 1 ] && rounds=1
build/mctcpbench "$rounds" "$commit" > build/bench/tcp.jsonl || rc=1
/usr/bin/python3 - "$out" build/bench/tcp.jsonl "$machine" <<'PY'
import json, sys
out, extra, machine = sys.argv[1], sys.argv[2], json.loads("{" + sys.argv[3] + "}")
results = json.load(open(out))
for line in open(extra):
    r = json.loads(line)
    r["params"].update(machine)
    results.append(r)
json.dump(results, open(out, "w"), indent=1)
PY

# One mcbox lcore over memif, driven by the DPDK generator, and stock memcached's requests per
# CPU-second, same run (scripts/bench-memif.sh).
bash scripts/bench-memif.sh "$out" "$machine" || rc=1

# pktgen-style traffic: generated pcaps replayed into the lab; every frame must be answered.
echo "bench: replaying mkpcap.py captures into the lab"
trap 'kill $mcpid 2>/dev/null; wait $mcpid 2>/dev/null; bash scripts/lab.sh down >/dev/null 2>&1' EXIT
MCBOX_ARGS="--udp-writes=on ${MCBOX_ARGS:-}" bash scripts/lab.sh up >/dev/null || exit 1
extra=$(mktemp)
for proto in ascii meta binary; do
	ip netns exec mcbox-client /usr/bin/python3 scripts/pcap_replay.py 2000 "$proto" >>"$extra" || rc=1
done
bash scripts/lab.sh down >/dev/null
/usr/bin/python3 - "$out" "$extra" "$machine" <<'PY'
import json, sys
out, extra, machine = sys.argv[1], sys.argv[2], json.loads("{" + sys.argv[3] + "}")
results = json.load(open(out))
for line in open(extra):
    r = json.loads(line)
    r["params"].update(machine)
    results.append(r)
    print("  %-28s %14.3f %-8s frames %d" % (r["name"], r["value"], r["unit"], r["params"]["frames"]))
json.dump(results, open(out, "w"), indent=1)
PY
rm -f "$extra"

# Side by side with memcached through the same veth path, mcload and memcaslap.
echo "bench: end to end, mcbox and memcached through veth"
bash scripts/e2e.sh "$out" "$machine" || rc=1
[ $rc -eq 0 ] && echo "bench: results in $out"
exit $rc

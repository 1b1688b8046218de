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
echo "mcbench on $cpu, commit $commit"
build/mcbench --no-huge -m 1024 --no-pci -l 0 --file-prefix "mcbench-$$" --log-level='lib.*:error' -- \
	--out "$out" --memcached-port "$mcport" --machine "$machine" "${quick[@]}"
rc=$?
rm -rf "/var/run/dpdk/mcbench-$$"
[ $rc -eq 0 ] && echo "bench: results in $out"
exit $rc

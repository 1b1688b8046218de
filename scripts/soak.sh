#!/usr/bin/env bash
# make soak: mcbox in the lab under memcaslap -U (gets and sets) for SOAK_SECONDS (default 600),
# sampling RSS, mbufs and zombies every 30 s; then checks that mcbox is alive and answering,
# every mbuf is back in the pool, no item is left referenced, and RSS grew by < 10%.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${SOAK_SECONDS:-600}
NS=mcbox-client
trap 'bash scripts/lab.sh down >/dev/null 2>&1' EXIT INT TERM
MCBOX_ARGS="--udp-writes=on ${MCBOX_ARGS:-}" bash scripts/lab.sh up || exit 1
pid=$(cat build/lab/mcbox.pid)
sample() {
	ip netns exec "$NS" env PYTHONPATH=tests/integration /usr/bin/python3 -c '
import labtest as L, sys
t = L.telemetry()
rss = [l.split()[1] for l in open("/proc/%s/status" % sys.argv[1]) if l.startswith("VmRSS")][0]
print(rss, t["mempool_avail"], t["mempool_size"], t["zombies"], t["udp_requests"], t["evictions"],
      sum(v for k, v in t.items() if k.startswith("drop_")))' "$pid"
}
read -r rss0 _ _ _ _ _ _ < <(sample)
echo "soak: ${secs}s of memcaslap -U against mcbox (pid $pid), RSS ${rss0} kB at start"
ip netns exec "$NS" timeout $((secs + 30)) memcaslap -s 198.18.0.1:11211 -U -t "${secs}s" -T 1 -c 16 \
	-X 512 >build/lab/soak-memcaslap.log 2>&1 &
load=$!
start=$SECONDS
while kill -0 "$load" 2>/dev/null; do
	sleep 30
	read -r rss avail size zombies reqs evict drops < <(sample)
	echo "soak: t=$((SECONDS - start))s rss=${rss}kB mbufs=${avail}/${size} zombies=${zombies} requests=${reqs} evictions=${evict} drops=${drops}"
done
wait "$load"
grep -E "^(packet_disorder|packet_drop|udp_timeout|Run time)" build/lab/soak-memcaslap.log | sed 's/^/soak: memcaslap /'
fail=0
for i in $(seq 1 50); do
	read -r rss avail size zombies reqs evict drops < <(sample)
	[ "$avail" = "$size" ] && break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null || { echo "soak: FAIL mcbox died"; fail=1; }
ip netns exec "$NS" ping -c 1 -W 2 -q 198.18.0.1 >/dev/null || { echo "soak: FAIL no answer"; fail=1; }
[ "$avail" = "$size" ] || { echo "soak: FAIL mbufs ${avail}/${size}"; fail=1; }
[ "$zombies" = 0 ] || { echo "soak: FAIL ${zombies} items still referenced"; fail=1; }
[ "$rss" -le $((rss0 + rss0 / 10 + 4096)) ] || { echo "soak: FAIL RSS ${rss0} -> ${rss} kB"; fail=1; }
echo "soak: RSS ${rss0} -> ${rss} kB, mbufs ${avail}/${size}, zombies ${zombies}, ${reqs} requests: $([ $fail = 0 ] && echo ok || echo FAILED)"
exit $fail

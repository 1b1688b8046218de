#!/usr/bin/env bash
# make demo: hugepages, the lab network, mcbox in it, and a look at it working.
set -euo pipefail
cd "$(dirname "$0")/.."
NS=mcbox-client
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. hugepages"
bash scripts/hugepages.sh 512 || echo "(the lab will fall back to --no-huge)"
say "2. lab network and mcbox (LAB_QUEUES=${LAB_QUEUES:-1})"
bash scripts/lab.sh up
say "3. ARP: the client namespace learned mcbox's MAC"
ip netns exec "$NS" ip neigh show 198.18.0.1
say "4. ping 198.18.0.1 from namespace $NS"
ip netns exec "$NS" ping -c 3 -i 0.2 198.18.0.1
say "4b. IPv6: neighbor discovery answered by mcbox, then ping -6 2001:2::1"
ip netns exec "$NS" ping -6 -c 3 -i 0.2 2001:2::1
ip netns exec "$NS" ip -6 neigh show 2001:2::1
if [ -x scripts/demo-memcached.sh ]; then
	say "5. memcached: TCP clients through the kernel path, UDP gets on the fast path"
	bash scripts/demo-memcached.sh
fi
say "6. a pool: three boxes behind twemproxy (LAB_BOXES=3)"
bash scripts/demo-pool.sh
say "mcbox is running (pid $(cat build/lab/mcbox.pid), log build/lab/mcbox.log)."
echo "Try:  ip netns exec $NS ping 198.18.0.1"
echo "Stop: make lab-down"

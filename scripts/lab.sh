#!/usr/bin/env bash
# The lab network: namespace mcbox-client holding veth mcc0 = 198.18.0.2/24, whose peer mcs0
# (root namespace, no address) is driven by mcbox through DPDK's net_af_packet at 198.18.0.1.
#   scripts/lab.sh up     make it, start mcbox, wait until it answers ping
#   scripts/lab.sh down   stop mcbox and remove everything 'up' made (safe to run any time)
# Environment: LAB_QUEUES (default 1), MCBOX_ARGS (extra app options), MCBOX_BIN (binary,
# default build/mcbox), LAB_DIR (default build/lab), LAB_PORTS (default 1; 2 adds veth
# mcs1/mcc1, a second mcbox port answering the same address, mcc1 without an address),
# LAB_PMD (af_packet, the default, or af_xdp).
set -uo pipefail
cd "$(dirname "$0")/.."

NS=mcbox-client
CLI_IF=mcc0
SRV_IF=mcs0
CLI_IP=198.18.0.2
SRV_IP=198.18.0.1
LAB_DIR=${LAB_DIR:-build/lab}
LAB_QUEUES=${LAB_QUEUES:-1}
LAB_PORTS=${LAB_PORTS:-1}
LAB_PMD=${LAB_PMD:-af_packet}   # or af_xdp
MCBOX_ARGS=${MCBOX_ARGS:-}
MCBOX_BIN=${MCBOX_BIN:-build/mcbox}

log() { printf 'lab: %s\n' "$*"; }

down() {
	local pid prefix i
	if [ -f "$LAB_DIR/mcbox.pid" ]; then
		pid=$(cat "$LAB_DIR/mcbox.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null
			for i in $(seq 1 100); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				log "mcbox $pid ignored SIGTERM for 10 s; killing it"
				kill -KILL "$pid" 2>/dev/null
				sleep 0.2
			fi
		fi
		rm -f "$LAB_DIR/mcbox.pid"
	fi
	ip netns del "$NS" 2>/dev/null
	ip link del "$SRV_IF" 2>/dev/null
	ip link del mcs1 2>/dev/null
	if [ -f "$LAB_DIR/prefix" ]; then
		prefix=$(cat "$LAB_DIR/prefix")
		rm -f /dev/hugepages/"${prefix}"map_* /dev/hugepages/"${prefix}"* 2>/dev/null
		rm -rf "/var/run/dpdk/$prefix" 2>/dev/null
		rm -f "$LAB_DIR/prefix"
	fi
	return 0
}

up() {
	local prefix eal_mem pid i q_last
	mkdir -p "$LAB_DIR"
	down
	ip netns add "$NS" || { log "cannot create namespace $NS (root needed)"; return 1; }
	ip link add "$SRV_IF" type veth peer name "$CLI_IF" netns "$NS" || { down; return 1; }
	# No IPv6 chatter on either end, and full checksums on what the client sends (veth would
	# otherwise leave UDP checksums to an offload that an AF_PACKET reader never sees).
	sysctl -qw "net.ipv6.conf.$SRV_IF.disable_ipv6=1" 2>/dev/null
	ip netns exec "$NS" sysctl -qw "net.ipv6.conf.all.disable_ipv6=1" 2>/dev/null
	ip netns exec "$NS" ethtool -K "$CLI_IF" tx off >/dev/null 2>&1
	ethtool -K "$SRV_IF" tx off >/dev/null 2>&1
	ip link set "$SRV_IF" up
	ip netns exec "$NS" ip link set lo up
	ip netns exec "$NS" ip addr add "$CLI_IP/24" dev "$CLI_IF"
	ip netns exec "$NS" ip link set "$CLI_IF" up
	if [ "$LAB_PMD" = af_xdp ]; then
		vdevs=(--vdev "net_af_xdp0,iface=$SRV_IF,queue_count=$LAB_QUEUES")
	else
		vdevs=(--vdev "net_af_packet0,iface=$SRV_IF,qpairs=$LAB_QUEUES")
	fi
	if [ "$LAB_PORTS" -ge 2 ]; then
		ip link add mcs1 type veth peer name mcc1 netns "$NS" || { down; return 1; }
		sysctl -qw net.ipv6.conf.mcs1.disable_ipv6=1 2>/dev/null
		ip netns exec "$NS" ethtool -K mcc1 tx off >/dev/null 2>&1
		ethtool -K mcs1 tx off >/dev/null 2>&1
		ip link set mcs1 up
		ip netns exec "$NS" ip link set mcc1 up
		vdevs+=(--vdev "net_af_packet1,iface=mcs1,qpairs=$LAB_QUEUES")
	fi

	prefix="mcbox-lab-$$-$RANDOM"
	echo "$prefix" > "$LAB_DIR/prefix"
	if bash scripts/hugepages.sh 512 >"$LAB_DIR/hugepages.log" 2>&1; then
		eal_mem="--huge-dir /dev/hugepages --huge-unlink"
	else
		log "WARNING: hugepages unavailable ($(tail -1 "$LAB_DIR/hugepages.log")); running with --no-huge"
		eal_mem="--no-huge -m 512"
	fi
	q_last=$((LAB_QUEUES * LAB_PORTS - 1))
	rm -f "$LAB_DIR/mcbox.exit"
	# The subshell records mcbox's exit status in mcbox.exit for the shutdown test.
	# shellcheck disable=SC2086
	(
		"$MCBOX_BIN" -l "0-$q_last" --no-pci --file-prefix "$prefix" $eal_mem \
			"${vdevs[@]}" -- \
			--ip "$SRV_IP" --queues "$LAB_QUEUES" --idle-sleep 20 $MCBOX_ARGS \
			>"$LAB_DIR/mcbox.log" 2>&1 </dev/null &
		echo $! > "$LAB_DIR/mcbox.pid.tmp"
		wait $!
		echo $? > "$LAB_DIR/mcbox.exit"
	) </dev/null >/dev/null 2>&1 &
	for i in $(seq 1 100); do [ -s "$LAB_DIR/mcbox.pid.tmp" ] && break; sleep 0.01; done
	pid=$(cat "$LAB_DIR/mcbox.pid.tmp")
	rm -f "$LAB_DIR/mcbox.pid.tmp"
	echo "$pid" > "$LAB_DIR/mcbox.pid"
	# Wait until it answers: poll with ping for at most 30 s.
	local deadline=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$deadline" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "mcbox exited during start-up; log tail:"
			tail -n 30 "$LAB_DIR/mcbox.log" | sed 's/^/  /'
			down
			return 1
		fi
		if ip netns exec "$NS" ping -c 1 -W 0.5 -q "$SRV_IP" >/dev/null 2>&1; then
			log "mcbox (pid $pid) answers at $SRV_IP from namespace $NS ($LAB_PORTS port(s) x $LAB_QUEUES queue(s))"
			return 0
		fi
		sleep 0.1 # ping failed at once (e.g. ARP not answered yet): poll again
	done
	log "mcbox did not answer ping within 30 s; log tail:"
	tail -n 30 "$LAB_DIR/mcbox.log" | sed 's/^/  /'
	down
	return 1
}

case "${1:-}" in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

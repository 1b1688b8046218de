#!/usr/bin/env bash
# The lab network: namespace mcbox-client holding veth mcc0 = 198.18.0.2/24 and 2001:2::2/64,
# whose peer mcs0 (root namespace, no address) is driven by mcbox through DPDK's
# net_af_packet at 198.18.0.1 and 2001:2::1.
#   scripts/lab.sh up     make it, start mcbox, wait until it answers ping
#   scripts/lab.sh down   stop mcbox and remove everything 'up' made (safe to run any time)
#   scripts/lab.sh stop   stop the boxes but keep the network; prints each box's exit status
#                         (LAB_SIGNAL: TERM by default, USR1, or KILL for a crash)
#   scripts/lab.sh start  start the boxes again on the network 'up' made, with the MCBOX_ARGS
#                         given now, appending to their logs; waits until they answer
# stop and start restart a box (warm restart with -e FILE, tests/integration/test_restart.py);
# a suite inside the client namespace runs them in run.sh's namespaces (labtest.lab()).
# Environment: LAB_QUEUES (default 1), MCBOX_ARGS (extra app options), MCBOX_BIN (binary,
# default build/mcbox), LAB_DIR (default build/lab), LAB_PORTS (default 1; 2 adds veth
# mcs1/mcc1, a second mcbox port answering the same address, mcc1 without an address),
# LAB_PMD (af_packet, the default, or af_xdp), LAB_BOXES (default 1, at most 16), LAB_LINK
# (memif: the memif lab of scripts/memif.sh instead of all this).
#
# LAB_BOXES=N starts N independent mcbox processes, a pool of cache boxes. Box k answers
# 198.18.k.1 and 2001:2:0:k::1 on veth mcsb<k> (box 0: mcs0), its client side mccb<k> (box 0:
# mcc0) is 2001:2:0:k::2/64 and
# 198.18.k.2/24 in the same namespace; its exception-path kernel interface is mcbox<k>.
# LAB_QUEUES and LAB_PORTS shape box 0; boxes k >= 1 have one port, one queue on lcore
# k % nproc, -m 32 (before MCBOX_ARGS, which can override it) and at most 256 MiB of EAL
# memory, so that four boxes fit in the 512 hugepages of scripts/hugepages.sh.
# Files in LAB_DIR: box 0 keeps mcbox.pid, mcbox.log, mcbox.exit and prefix (its EAL
# --file-prefix); box k >= 1 has box<k>.pid, .log, .exit and .prefix; 'boxes' lists
# 198.18.k.1:11211 one a line once every box answers.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# LAB_LINK=memif: the memif lab instead (scripts/memif.sh: mcbox and build/mcgen joined by
# shared memory; no kernel, no namespace, no veth).
if [ "${LAB_LINK:-}" = memif ]; then
	exec bash scripts/memif.sh "$@"
fi

NS=mcbox-client
LAB_DIR=${LAB_DIR:-build/lab}
LAB_QUEUES=${LAB_QUEUES:-1}
LAB_PORTS=${LAB_PORTS:-1}
LAB_PMD=${LAB_PMD:-af_packet}   # or af_xdp
LAB_BOXES=${LAB_BOXES:-1}
MCBOX_ARGS=${MCBOX_ARGS:-}
MCBOX_BIN=${MCBOX_BIN:-build/mcbox}
BOX_EAL_MB=256  # EAL memory cap of boxes k >= 1 (a -m 32 box uses about 90 MiB)
BOX_ITEM_MB=32  # their item memory
MAX_BOXES=16

log() { printf 'lab: %s\n' "$*"; }

# Names of box k: server-side veth, client-side veth, file stem in LAB_DIR, prefix file.
srv_if() { if [ "$1" -eq 0 ]; then echo mcs0; else echo "mcsb$1"; fi; }
cli_if() { if [ "$1" -eq 0 ]; then echo mcc0; else echo "mccb$1"; fi; }
stem() { if [ "$1" -eq 0 ]; then echo "$LAB_DIR/mcbox"; else echo "$LAB_DIR/box$1"; fi; }
prefix_file() { if [ "$1" -eq 0 ]; then echo "$LAB_DIR/prefix"; else echo "$LAB_DIR/box$1.prefix"; fi; }

# True when pid is a live process whose command line holds "--file-prefix $2" (a stale pid
# file must not make us signal an unrelated process that reused the number). $2 is a whole
# prefix followed by a space, or the start of one.
is_box() {
	local pid=$1 prefix=$2
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--file-prefix $prefix"
}

# Every box that an earlier 'up' left, whatever LAB_BOXES was then: the files say which.
# Prints "pidfile prefixfile" per box.
lab_boxes() {
	local f
	[ -f "$LAB_DIR/mcbox.pid" ] && echo "$LAB_DIR/mcbox.pid $LAB_DIR/prefix"
	for f in "$LAB_DIR"/box*.pid; do
		[ -f "$f" ] && echo "$f ${f%.pid}.prefix"
	done
}

# SIGTERM (or LAB_SIGNAL) every box at once, then wait at most 10 s for all of them; SIGKILL
# the rest.
stop_boxes() {
	local pidf pref pid prefix any live=()
	while read -r pidf pref; do
		pid=$(cat "$pidf" 2>/dev/null)
		if [ -s "$pref" ]; then
			prefix="$(cat "$pref") "
		else
			prefix=mcbox-lab- # its prefix file is gone: any lab box will do
		fi
		if [ -n "$pid" ] && is_box "$pid" "$prefix"; then
			kill -"${LAB_SIGNAL:-TERM}" "$pid" 2>/dev/null
			live+=("$pid")
		fi
		rm -f "$pidf"
	done < <(lab_boxes)
	[ "${#live[@]}" -eq 0 ] && return 0
	for _ in $(seq 1 100); do
		any=0
		for pid in "${live[@]}"; do
			kill -0 "$pid" 2>/dev/null && any=1
		done
		[ "$any" = 0 ] && break
		sleep 0.1
	done
	for pid in "${live[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			log "mcbox $pid ignored SIG${LAB_SIGNAL:-TERM} for 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null
			sleep 0.2
		fi
	done
}

# What EAL left of stopped boxes (after a kill, its run directory and hugepage files).
clean_prefixes() {
	local pref prefix
	for pref in "$LAB_DIR/prefix" "$LAB_DIR"/box*.prefix; do
		[ -f "$pref" ] || continue
		prefix=$(cat "$pref")
		if [ -n "$prefix" ]; then
			rm -f /dev/hugepages/"${prefix}"map_* /dev/hugepages/"${prefix}"* 2>/dev/null
			rm -rf "/var/run/dpdk/$prefix" 2>/dev/null
		fi
		rm -f "$pref"
	done
}

down() {
	local link
	stop_boxes
	ip netns del "$NS" 2>/dev/null
	# Deleting one end of a veth deletes both; the namespace's end went with the namespace.
	ip link del mcs0 2>/dev/null
	ip link del mcs1 2>/dev/null
	for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
		grep -E '^mcsb[0-9]+$'); do
		ip link del "$link" 2>/dev/null
	done
	clean_prefixes
	rm -f "$LAB_DIR/boxes"
	return 0
}

# A veth pair: $1 in the root namespace (mcbox's side, no address), $2 in the client
# namespace with addresses $3 (IPv4) and $4 (IPv6; none when empty).
make_link() {
	local srv=$1 cli=$2 addr=$3 addr6=${4:-}
	ip link add "$srv" type veth peer name "$cli" netns "$NS" || return 1
	# No IPv6 chatter on either end, and full checksums on what the client sends (veth would
	# otherwise leave UDP checksums to an offload that an AF_PACKET reader never sees).
	sysctl -qw "net.ipv6.conf.$srv.disable_ipv6=1" 2>/dev/null
	ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$cli.disable_ipv6=1" 2>/dev/null
	ip netns exec "$NS" ethtool -K "$cli" tx off >/dev/null 2>&1
	ethtool -K "$srv" tx off >/dev/null 2>&1
	# The root namespace's kernel holds the box's address on mcbox's exception interface
	# (mcbox<k>); it must not also answer what arrives on the veth that mcbox drives: no ARP
	# replies for it here, and strict reverse-path filtering drops its IP.
	sysctl -qw "net.ipv4.conf.$srv.arp_ignore=8" 2>/dev/null
	sysctl -qw "net.ipv4.conf.$srv.rp_filter=1" 2>/dev/null
	ip link set "$srv" up
	if [ -n "$addr" ]; then
		ip netns exec "$NS" ip addr add "$addr" dev "$cli" || return 1
	fi
	if [ -n "$addr6" ]; then
		# The global address only: no link-local one, no router solicitations, no
		# duplicate address detection (the lab's addresses are its own).
		ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$cli.addr_gen_mode=1" \
			"net.ipv6.conf.$cli.accept_ra=0" "net.ipv6.conf.$cli.router_solicitations=0" \
			"net.ipv6.conf.$cli.disable_ipv6=0" || return 1
		ip netns exec "$NS" ip -6 addr add "$addr6" dev "$cli" nodad || return 1
	fi
	ip netns exec "$NS" ip link set "$cli" up
}

# Start box $1 in the background; its pid goes to <stem>.pid, its exit status (for the
# shutdown test) to <stem>.exit. $2 is 1 when hugepages are usable.
start_box() {
	local k=$1 huge=$2 base prefix lcores queues pmd_if eal_mem app_mem
	local vdevs=()
	base=$(stem "$k")
	prefix="mcbox-lab-$$-$LAB_RAND-b$(printf '%02d' "$k")"
	echo "$prefix" >"$(prefix_file "$k")"
	pmd_if=$(srv_if "$k")
	if [ "$k" -eq 0 ]; then
		queues=$LAB_QUEUES
		lcores="0-$((LAB_QUEUES * LAB_PORTS - 1))"
		if [ "$huge" = 1 ]; then
			eal_mem="--huge-dir /dev/hugepages --huge-unlink"
		else
			eal_mem="--no-huge -m 512"
		fi
		app_mem=""
	else
		queues=1
		lcores=$((k % $(nproc)))
		if [ "$huge" = 1 ]; then
			eal_mem="--huge-dir /dev/hugepages --huge-unlink --socket-limit $BOX_EAL_MB"
		else
			eal_mem="--no-huge -m $BOX_EAL_MB"
		fi
		app_mem="-m $BOX_ITEM_MB"
	fi
	if [ "$LAB_PMD" = af_xdp ]; then
		vdevs=(--vdev "net_af_xdp0,iface=$pmd_if,queue_count=$queues")
	else
		vdevs=(--vdev "net_af_packet0,iface=$pmd_if,qpairs=$queues")
	fi
	if [ "$k" -eq 0 ] && [ "$LAB_PORTS" -ge 2 ]; then
		vdevs+=(--vdev "net_af_packet1,iface=mcs1,qpairs=$LAB_QUEUES")
	fi
	rm -f "$base.exit" "$base.pid.tmp"
	# 'start' appends to the log of the box's earlier runs (a restart), so that nothing they
	# said (a sanitizer report at exit among it) is lost; 'up' begins a new one.
	if [ "${LAB_APPEND_LOG:-0}" = 1 ]; then
		echo "lab: start (MCBOX_ARGS=$MCBOX_ARGS)" >>"$base.log"
	else
		: >"$base.log"
	fi
	# The subshell records mcbox's exit status in <stem>.exit for the shutdown test.
	# shellcheck disable=SC2086
	(
		"$MCBOX_BIN" -l "$lcores" --no-pci --file-prefix "$prefix" $eal_mem \
			"${vdevs[@]}" -- \
			--ip "198.18.$k.1" --ip6 "2001:2:0:$k::1/64" --queues "$queues" --idle-sleep 20 \
			--kernel-if "mcbox$k" \
			$app_mem $MCBOX_ARGS \
			>>"$base.log" 2>&1 </dev/null &
		echo $! > "$base.pid.tmp"
		wait $!
		echo $? > "$base.exit"
	) </dev/null >/dev/null 2>&1 &
	for _ in $(seq 1 100); do [ -s "$base.pid.tmp" ] && break; sleep 0.01; done
	cat "$base.pid.tmp" > "$base.pid"
	rm -f "$base.pid.tmp"
}

# Poll box $1 with ping until it answers or the deadline (in $SECONDS) passes.
wait_box() {
	local k=$1 deadline=$2 base pid ip
	base=$(stem "$k")
	pid=$(cat "$base.pid")
	ip="198.18.$k.1"
	while [ "$SECONDS" -lt "$deadline" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "box $k (mcbox $pid) exited during start-up; log tail:"
			tail -n 30 "$base.log" | sed 's/^/  /'
			return 1
		fi
		if ip netns exec "$NS" ping -c 1 -W 0.5 -q "$ip" >/dev/null 2>&1; then
			if [ "$k" -eq 0 ]; then
				log "mcbox (pid $pid) answers at $ip from namespace $NS ($LAB_PORTS port(s) x $LAB_QUEUES queue(s))"
			else
				log "box $k: mcbox (pid $pid) answers at $ip from namespace $NS"
			fi
			return 0
		fi
		sleep 0.1 # ping failed at once (e.g. ARP not answered yet): poll again
	done
	log "box $k (mcbox $pid) did not answer ping in time; log tail:"
	tail -n 30 "$base.log" | sed 's/^/  /'
	return 1
}

up() {
	local k
	if ! [[ "$LAB_BOXES" =~ ^[0-9]+$ ]] || [ "$LAB_BOXES" -lt 1 ] || [ "$LAB_BOXES" -gt "$MAX_BOXES" ]; then
		log "LAB_BOXES=$LAB_BOXES: give a number of boxes from 1 to $MAX_BOXES"
		return 2
	fi
	mkdir -p "$LAB_DIR"
	down
	rm -f "$LAB_DIR"/box*.log "$LAB_DIR"/box*.exit
	ip netns add "$NS" || { log "cannot create namespace $NS (root needed)"; return 1; }
	ip netns exec "$NS" sysctl -qw "net.ipv6.conf.all.disable_ipv6=1" 2>/dev/null
	ip netns exec "$NS" sysctl -qw "net.ipv6.conf.default.disable_ipv6=1" 2>/dev/null
	ip netns exec "$NS" sysctl -qw "net.ipv6.conf.lo.disable_ipv6=0" 2>/dev/null
	ip netns exec "$NS" ip link set lo up
	for ((k = 0; k < LAB_BOXES; k++)); do
		make_link "$(srv_if "$k")" "$(cli_if "$k")" "198.18.$k.2/24" "2001:2:0:$k::2/64" ||
			{ down; return 1; }
	done
	if [ "$LAB_PORTS" -ge 2 ]; then
		make_link mcs1 mcc1 "" || { down; return 1; }
	fi

	start_boxes || { down; return 1; }
}

# Start every box on the lab's network and wait until each answers ping.
start_boxes() {
	local k huge deadline
	if bash scripts/hugepages.sh 512 >"$LAB_DIR/hugepages.log" 2>&1; then
		huge=1
	else
		log "WARNING: hugepages unavailable ($(tail -1 "$LAB_DIR/hugepages.log")); running with --no-huge"
		huge=0
	fi
	LAB_RAND=$RANDOM
	for ((k = 0; k < LAB_BOXES; k++)); do
		start_box "$k" "$huge"
	done
	# Wait until every box answers: 30 s for the first, 10 s more for each other one (they
	# start together and share two cores).
	deadline=$((SECONDS + 30 + 10 * (LAB_BOXES - 1)))
	for ((k = 0; k < LAB_BOXES; k++)); do
		for try in 1 2 3; do
			wait_box "$k" "$deadline" && continue 2
			# net_af_packet names its fanout group pid ^ ifindex: two boxes whose pids and
			# interfaces happen to pair up ask for one group on two devices, which the kernel
			# refuses (EINVAL). Started again, the box has another pid, so another group.
			if [ "$try" -lt 3 ] && ! kill -0 "$(cat "$(stem "$k").pid")" 2>/dev/null &&
				grep -q "could not set PACKET_FANOUT" "$(stem "$k").log"; then
				log "box $k: its af_packet fanout group (pid ^ ifindex) was taken; starting it again"
				start_box "$k" "$huge"
				deadline=$((SECONDS + 30))
				continue
			fi
			return 1
		done
	done
	for ((k = 0; k < LAB_BOXES; k++)); do
		echo "198.18.$k.1:11211"
	done >"$LAB_DIR/boxes"
	return 0
}

# Stop the boxes, keep the network: 'start' brings them back (a restart). Prints each box's
# exit status (from <stem>.exit, which its subshell writes once mcbox is gone).
stop() {
	local stems=() f base
	[ -f "$LAB_DIR/mcbox.pid" ] && stems+=("$LAB_DIR/mcbox")
	for f in "$LAB_DIR"/box*.pid; do
		[ -f "$f" ] && stems+=("${f%.pid}")
	done
	stop_boxes
	for base in "${stems[@]}"; do
		for _ in $(seq 1 100); do [ -s "$base.exit" ] && break; sleep 0.05; done
		log "$(basename "$base") exited with status $(cat "$base.exit" 2>/dev/null || echo unknown) (SIG${LAB_SIGNAL:-TERM})"
	done
	clean_prefixes
	rm -f "$LAB_DIR/boxes"
	return 0
}

start() {
	if ! ip netns list | grep -qw "$NS"; then
		log "no lab network (namespace $NS): make lab-up first"
		return 1
	fi
	if [ -f "$LAB_DIR/mcbox.pid" ] && is_box "$(cat "$LAB_DIR/mcbox.pid")" mcbox-lab-; then
		log "box 0 is running: lab.sh stop first"
		return 1
	fi
	LAB_APPEND_LOG=1 start_boxes
}

case "${1:-}" in
up) up ;;
down) down ;;
stop) stop ;;
start) start ;;
*) echo "usage: $0 up|down|stop|start" >&2; exit 2 ;;
esac

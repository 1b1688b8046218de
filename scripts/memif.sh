#!/usr/bin/env bash
# The memif lab: mcbox and the DPDK load generator build/mcgen joined by a memif (shared memory
# between two processes, DPDK's net_memif on both sides), no kernel in between.
#   scripts/memif.sh up          start mcbox as the memif server: one lcore, one queue,
#                                --udp-writes=on, 198.18.0.1; wait until it listens
#   scripts/memif.sh gen [ARGS]  run mcgen as the memif client (198.18.0.2) with mcgen's
#                                options ARGS (default: -d 5 --preload); prints its summary
#   scripts/memif.sh down        stop mcbox; remove its socket, runtime directory, hugepage files
# Also `make lab-up LAB_LINK=memif` and `make lab-down LAB_LINK=memif` (scripts/lab.sh).
# Environment: LAB_DIR (default build/lab-memif), MCBOX_ARGS (extra mcbox options), MCBOX_BIN,
# MCGEN_BIN, MEMIF_BOX_LCORE (0), MEMIF_GEN_LCORE (1), MEMIF_HUGE (1: 2 MiB hugepages when they
# can be had, the default; 0: --no-huge), MEMIF_ZERO_COPY (1: mcgen maps its own mbufs into the
# memif, which needs its memory in one file: --single-file-segments, and hugepages).
#
# mcbox runs with --exception off (no kernel interface: nothing is created outside this
# directory) and -p 0 (no TCP), and without per-source budgets (--source-rps 0 --source-kbps
# 0), because one generator address sends everything. Files in LAB_DIR: mcbox.pid, mcbox.log,
# prefix (mcbox's EAL --file-prefix), memif.sock, zero_copy (yes or no: mcgen's last run).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

LAB_DIR=${LAB_DIR:-build/lab-memif}
MCBOX_BIN=${MCBOX_BIN:-build/mcbox}
MCGEN_BIN=${MCGEN_BIN:-build/mcgen}
MCBOX_ARGS=${MCBOX_ARGS:-}
MEMIF_BOX_LCORE=${MEMIF_BOX_LCORE:-0}
MEMIF_GEN_LCORE=${MEMIF_GEN_LCORE:-1}
MEMIF_HUGE=${MEMIF_HUGE:-1}
MEMIF_ZERO_COPY=${MEMIF_ZERO_COPY:-0}
BOX_IP=198.18.0.1
GEN_IP=198.18.0.2

log() { printf 'memif: %s\n' "$*" >&2; }

# EAL memory options: hugepages (unlinked at once, so nothing stays in /dev/hugepages) or not.
eal_mem() {
	if [ "$MEMIF_HUGE" = 1 ] && bash scripts/hugepages.sh 512 >/dev/null 2>&1; then
		echo "--huge-dir /dev/hugepages --huge-unlink --socket-limit $1"
	else
		echo "--no-huge -m $1"
	fi
}

sock_path() { echo "$(cd "$LAB_DIR" && pwd)/memif.sock"; }

# True when pid $1 is a live process whose command line holds "--file-prefix $2 ".
is_ours() {
	kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "--file-prefix $2 "
}

down() {
	local pid prefix
	pid=$(cat "$LAB_DIR/mcbox.pid" 2>/dev/null)
	prefix=$(cat "$LAB_DIR/prefix" 2>/dev/null)
	if [ -n "$pid" ] && [ -n "$prefix" ] && is_ours "$pid" "$prefix"; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && { log "mcbox $pid ignored SIGTERM for 10 s; killing it"; kill -KILL "$pid"; }
	fi
	if [ -n "$prefix" ]; then
		rm -rf "/var/run/dpdk/$prefix"
		rm -f /dev/hugepages/"$prefix"* 2>/dev/null
	fi
	rm -f "$LAB_DIR/mcbox.pid" "$LAB_DIR/prefix" "$LAB_DIR/memif.sock" "$LAB_DIR/zero_copy"
	return 0
}

up() {
	local prefix sock pid mem
	mkdir -p "$LAB_DIR"
	down
	prefix="mcbox-memif-$$-$RANDOM"
	sock=$(sock_path)
	mem=$(eal_mem 512)
	echo "$prefix" >"$LAB_DIR/prefix"
	# shellcheck disable=SC2086
	"$MCBOX_BIN" -l "$MEMIF_BOX_LCORE" --no-pci --file-prefix "$prefix" $mem \
		--vdev "net_memif0,role=server,id=0,socket=$sock,socket-abstract=no" \
		--log-level='lib.*:error' -- \
		--ip "$BOX_IP" --queues 1 --udp-writes=on --exception off -p 0 \
		--source-rps 0 --source-kbps 0 $MCBOX_ARGS \
		>"$LAB_DIR/mcbox.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$LAB_DIR/mcbox.pid"
	for _ in $(seq 1 200); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "mcbox exited during start-up; log tail:"
			tail -n 20 "$LAB_DIR/mcbox.log" | sed 's/^/  /' >&2
			down
			return 1
		fi
		if [ -S "$sock" ] && grep -q '^mcbox: serving memcached' "$LAB_DIR/mcbox.log"; then
			log "mcbox (pid $pid, lcore $MEMIF_BOX_LCORE) serves $BOX_IP on memif $sock ($([ "${mem#--no-huge}" = "$mem" ] && echo 2 MiB hugepages || echo 4 KiB pages))"
			return 0
		fi
		sleep 0.1
	done
	log "mcbox did not start in 20 s; log tail:"
	tail -n 20 "$LAB_DIR/mcbox.log" | sed 's/^/  /' >&2
	down
	return 1
}

# mcgen as the memif client; its runtime directory goes when it ends, however it ends.
gen() {
	local prefix sock mem zc="" rc
	sock=$(sock_path)
	if [ ! -S "$sock" ]; then
		log "no memif socket at $sock: run '$0 up' first"
		return 1
	fi
	prefix="mcgen-memif-$$-$RANDOM"
	mem=$(eal_mem 256)
	if [ "$MEMIF_ZERO_COPY" = 1 ] && [ "${mem#--no-huge}" = "$mem" ]; then
		zc=",zero-copy=yes"
		mem="${mem/--huge-unlink/} --single-file-segments"
		echo yes >"$LAB_DIR/zero_copy"
	elif [ "$MEMIF_ZERO_COPY" = 1 ]; then
		log "no hugepages: mcgen copies (memif zero-copy needs its memory in a hugepage file)"
	fi
	[ -n "$zc" ] || echo no >"$LAB_DIR/zero_copy"
	[ $# -eq 0 ] && set -- -d 5 --preload
	# A client that connects while the server still tears down the previous one's session is
	# refused ("Failed to connect socket"): try again, three times at most.
	local attempt out
	out=$(mktemp)
	for attempt in 1 2 3; do
		# shellcheck disable=SC2086
		timeout --signal=INT --kill-after=10 120 "$MCGEN_BIN" -l "$MEMIF_GEN_LCORE" --no-pci \
			--file-prefix "$prefix" $mem --log-level='lib.*:error' \
			--vdev "net_memif0,role=client,id=0,socket=$sock,socket-abstract=no$zc" -- \
			--src-ip "$GEN_IP" --dst-ip "$BOX_IP" "$@" 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
		rm -rf "/var/run/dpdk/$prefix"
		rm -f /dev/hugepages/"$prefix"* 2>/dev/null
		[ "$rc" -ne 0 ] && grep -q "Failed to connect socket" "$out" || break
		log "mcgen could not connect (attempt $attempt); trying again"
		sleep 1
	done
	rm -f "$out"
	return $rc
}

case "${1:-}" in
up) up ;;
down) down ;;
gen) shift; gen "$@" ;;
*) echo "usage: $0 up|gen [mcgen options]|down" >&2; exit 2 ;;
esac

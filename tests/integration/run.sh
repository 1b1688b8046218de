#!/usr/bin/env bash
# Integration tests: bring up the lab around the ASan+UBSan build of mcbox, run each suite from
# the client namespace, check a clean SIGTERM shutdown, and tear everything down even on failure.
# Suites: tests/integration/test_*.py, each with the lab options its header asks for
# (a line '# lab: LAB_QUEUES=2 MCBOX_ARGS="..."', read as shell words; LAB_BOXES=N starts a
# pool of N boxes). The shutdown check is box 0's; every box's log is checked for sanitizer
# reports once the lab is down (a leak report comes at exit).
# Usage: run.sh [SUITE.py ...] (default: every suite). The lab has fixed names (namespace,
# veths), so a run holds /tmp/mcbox-lab.lock: two worktrees on one machine take turns.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${MCBOX_LAB_LOCKED:-}" ]; then
	export MCBOX_LAB_LOCKED=1
	exec flock -o /tmp/mcbox-lab.lock bash "$0" "$@" # -o: the lab's processes do not inherit the lock
fi
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(tests/integration/test_*.py)

export MCBOX_BIN=${MCBOX_BIN:-build/asan/mcbox}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
# libxdp (af_xdp suites) leaks 80 bytes of its own per socket: not mcbox's to fix.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/integration/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
PY=/usr/bin/python3
NS=mcbox-client
# A suite runs inside the client namespace; to stop and start the box (a restart) it enters
# this shell's namespaces, where the lab was made (labtest.lab()).
export MCBOX_LAB_HOST_PID=$$
passed=0; failed=0

trap 'bash scripts/lab.sh down >/dev/null 2>&1' EXIT INT TERM

# Stop mcbox with SIGTERM and check: exit status 0 within 10 s, no hugepage files left.
check_shutdown() {
	local pid prefix i
	pid=$(cat build/lab/mcbox.pid)
	prefix=$(cat build/lab/prefix)
	kill -TERM "$pid"
	for i in $(seq 1 200); do [ -f build/lab/mcbox.exit ] && break; sleep 0.05; done
	if [ ! -f build/lab/mcbox.exit ]; then
		echo "FAIL shutdown: mcbox still running 10 s after SIGTERM"; return 1
	fi
	if [ "$(cat build/lab/mcbox.exit)" != 0 ]; then
		echo "FAIL shutdown: exit status $(cat build/lab/mcbox.exit)"; tail -20 build/lab/mcbox.log; return 1
	fi
	if ls /dev/hugepages/"$prefix"* >/dev/null 2>&1; then
		echo "FAIL shutdown: hugepage files of $prefix left behind"; return 1
	fi
	if ! grep -q "shutting down" build/lab/mcbox.log; then
		echo "FAIL shutdown: no orderly shutdown in the log"; return 1
	fi
	echo "ok   clean shutdown on SIGTERM (exit 0, no hugepage files)"
}

for suite in "${suites[@]}"; do
	opts=$(sed -n 's/^# lab: //p' "$suite" | head -1)
	echo "== $suite ${opts:+($opts)}"
	if ! eval "env $opts bash scripts/lab.sh up"; then
		echo "FAIL $suite: lab did not come up"
		failed=$((failed + 1)); continue
	fi
	# The mbufs free before the suite: the whole pool, less what the PMD keeps posted for
	# receive (af_xdp fills its ring from the pool; af_packet keeps none).
	pool_base=$(ip netns exec "$NS" env PYTHONPATH=tests/integration "$PY" -c '
import labtest as L; print(L.telemetry()["mempool_avail"])' 2>/dev/null)
	out=$(mktemp)
	ip netns exec "$NS" env PYTHONPATH=tests/integration timeout 600 "$PY" "$suite" 2>&1 | tee "$out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "FAIL $suite: did not finish"; failed=$((failed + 1))
	else
		passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
		failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
	fi
	# Every mbuf back in its pool once the suite is done (bounded poll for TX completions, and
	# for held IP fragments to time out).
	if ip netns exec "$NS" env PYTHONPATH=tests/integration POOL_BASE="${pool_base:-0}" "$PY" -c '
import os, time, labtest as L
deadline = time.time() + 5
t = L.telemetry()
base = int(os.environ["POOL_BASE"]) or t["mempool_size"]
while t["mempool_avail"] < base and time.time() < deadline:
    time.sleep(0.05)
    t = L.telemetry()
print("%d of %d free, %d before the suite" % (t["mempool_avail"], t["mempool_size"], base))
raise SystemExit(t["mempool_avail"] < base)' >/tmp/mcbox-mempool.$$ 2>&1; then
		echo "ok   every mbuf back in the pool ($(cat /tmp/mcbox-mempool.$$))"; passed=$((passed + 1))
	else
		echo "FAIL mbufs missing after the suite: $(tail -1 /tmp/mcbox-mempool.$$)"; failed=$((failed + 1))
	fi
	rm -f /tmp/mcbox-mempool.$$
	loadpid=""
	if echo "$opts" | grep -q SHUTDOWN_UNDER_LOAD=1; then
		# SIGTERM while memcaslap keeps the box busy (bounded: 20 s at most).
		ip netns exec "$NS" timeout 20 memcaslap -s 198.18.0.1:11211 -U -t 10s -T 1 -c 8 \
			>/dev/null 2>&1 &
		loadpid=$!
		ip netns exec "$NS" ping -c 3 -i 0.2 -q 198.18.0.1 >/dev/null 2>&1
	fi
	if check_shutdown; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	if [ -n "$loadpid" ]; then
		kill "$loadpid" 2>/dev/null; wait "$loadpid" 2>/dev/null
		# And an immediate restart works.
		if eval "env $opts bash scripts/lab.sh up" >/dev/null; then
			echo "ok   immediate restart after SIGTERM under load"; passed=$((passed + 1))
		else
			echo "FAIL immediate restart after SIGTERM under load"; failed=$((failed + 1))
		fi
	fi
	bash scripts/lab.sh down
	for log in build/lab/mcbox.log build/lab/box*.log; do
		[ -f "$log" ] || continue
		if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$log"; then
			echo "FAIL $suite: sanitizer report in $log:"; grep -A20 -E 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$log" | head -40
			failed=$((failed + 1))
		fi
	done
done

if ip netns list | grep -q "$NS" || ip link show mcs0 >/dev/null 2>&1 ||
	ip -o link show | grep -qE '^[0-9]+: mcsb[0-9]+[@:]'; then
	echo "FAIL lab-down left the namespace or veth behind"; failed=$((failed + 1))
fi
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

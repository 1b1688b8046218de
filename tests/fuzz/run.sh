#!/usr/bin/env bash
# make fuzz: build the libFuzzer targets (clang, ASan+UBSan) and run each for FUZZ_SECONDS
# (default 60) from its seed corpus in tests/fuzz/corpus/<target>. New inputs go to
# build/fuzz/corpus/<target>; crashes to build/fuzz/crash-*. FUZZ_REGRESSION=1 only replays the
# seed corpora (every input once). FUZZ_RUNS=N runs N inputs per target from a fixed seed
# instead of a time budget: the same inputs every time (CI uses this, so it stays
# deterministic). Prints executions per target; exits non-zero on a crash.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
make --no-print-directory fuzz-build >/dev/null || { echo "fuzz: build failed"; make --no-print-directory fuzz-build; exit 1; }
fail=0
for t in ascii meta binary stream packet; do
	bin=build/fuzz/fuzz_$t
	mkdir -p "build/fuzz/corpus/$t"
	if [ "${FUZZ_REGRESSION:-0}" = 1 ]; then
		if "$bin" -runs=0 -artifact_prefix="build/fuzz/crash-$t-" tests/fuzz/corpus/$t >"build/fuzz/$t.log" 2>&1; then
			echo "fuzz $t: corpus replayed ($(ls tests/fuzz/corpus/$t | wc -l) inputs), no crash"
		else
			echo "fuzz $t: CRASH replaying the corpus"; tail -30 "build/fuzz/$t.log"; fail=1
		fi
		continue
	fi
	if [ -n "${FUZZ_RUNS:-}" ]; then
		# libFuzzer writes new inputs into its first corpus: an emptied scratch directory, so
		# the committed seeds stay as they are and every round starts from the same state.
		rm -rf "build/fuzz/seeded/$t"
		mkdir -p "build/fuzz/seeded/$t"
		budget=(-runs="$FUZZ_RUNS" -seed=1)
		corpora=("build/fuzz/seeded/$t" "tests/fuzz/corpus/$t")
		secs="(seed 1)"
	else
		budget=(-max_total_time="$secs")
		corpora=("build/fuzz/corpus/$t" "tests/fuzz/corpus/$t")
	fi
	"$bin" "${budget[@]}" -max_len=2048 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="build/fuzz/crash-$t-" "${corpora[@]}" >"build/fuzz/$t.log" 2>&1
	rc=$?
	execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "build/fuzz/$t.log" | grep -oE '[0-9]+$' | tail -1)
	[ -z "$execs" ] && execs=$(grep -oE '^Done [0-9]+ runs' "build/fuzz/$t.log" | grep -oE '[0-9]+' | tail -1)
	# A status line's count starts its line: "#N" elsewhere may be a dictionary word's.
	[ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "build/fuzz/$t.log" | tail -1 | tr -d '#')
	if [ $rc -ne 0 ]; then
		echo "fuzz $t: CRASH after ${execs:-?} executions (log build/fuzz/$t.log)"; tail -40 "build/fuzz/$t.log"; fail=1
	else
		if [ -n "${FUZZ_RUNS:-}" ]; then
			echo "fuzz $t: ${execs:-?} executions from seed 1, no crash"
		else
			echo "fuzz $t: ${execs:-?} executions in ${secs}s, no crash"
		fi
	fi
done
rm -rf /var/run/dpdk/mcfuzz-* 2>/dev/null
exit $fail

#!/usr/bin/env bash
# Run every unit test binary under each build directory given (e.g. build build/asan).
# Prints each binary's cmocka summary and a total; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fail=0; ran=0
for dir in "$@"; do
	for t in $(find "$dir/tests" -type f -executable -name 'test_*' | sort); do
		ran=$((ran + 1))
		echo "== $t"
		if ! "$t"; then
			echo "FAILED: $t"
			fail=$((fail + 1))
		fi
	done
done
echo "unit: $((ran - fail)) passed, $fail failed"
[ "$ran" -gt 0 ] && [ "$fail" -eq 0 ]

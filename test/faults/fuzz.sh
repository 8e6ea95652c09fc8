#!/usr/bin/env bash
# Runs every Go fuzz target of the module (found with grep, so new ones are picked up) for N
# seconds each (first argument, default 10). CI: test/faults/fuzz.sh 60
# A failing input is written under the package's testdata/fuzz/ by `go test`; commit it as a
# regression case after fixing the bug.
set -euo pipefail
secs="${1:-10}"
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/../.."
go="${GO:-go}"
failed=()
ran=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# fuzz_one runs one target. Go before 1.27 can fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is busy (golang/go#75804, fixed in Go 1.27): no
# input failed and none is written. That failure, and only that one, is run again once; a real
# finding says "Failing input written to" and fails at once.
fuzz_one() {
	local attempt
	for attempt in 1 2; do
		if "$go" test -run '^$' -fuzz "^${2}\$" -fuzztime "${secs}s" "$1" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
			return 0
		fi
		if [ "$attempt" = 2 ] || grep -q 'Failing input written' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
			return 1
		fi
		echo "fuzz: $2 stopped with a bare 'context deadline exceeded' at -fuzztime and wrote no failing input (golang/go#75804); running it again once"
	done
}
while IFS=: read -r file _ line; do
	name="${line#func }"
	name="${name%%(*}"
	dir="./$(dirname "${file#./}")"
	echo "== $dir $name (${secs}s)"
	ran=$((ran + 1))
	if ! fuzz_one "$dir" "$name"; then
		failed+=("$dir $name")
	fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./.git/' | sort)
echo "fuzz: $ran targets, ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "  FAILED: $f"; done
[ "${#failed[@]}" -eq 0 ]

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
while IFS=: read -r file _ line; do
	name="${line#func }"
	name="${name%%(*}"
	dir="./$(dirname "${file#./}")"
	echo "== $dir $name (${secs}s)"
	ran=$((ran + 1))
	if ! "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" "$dir"; then
		failed+=("$dir $name")
	fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./.git/' | sort)
echo "fuzz: $ran targets, ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "  FAILED: $f"; done
[ "${#failed[@]}" -eq 0 ]

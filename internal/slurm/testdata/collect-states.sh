#!/bin/bash
# collect-states.sh RESULTS_DIR...: the recorded node lines of an e2e run's scenarios
# (<results>/<test>/node-states.txt, and node-states-resume-fail.txt: the nodes as slurmctld
# passed them to ResumeFailProgram), one line per distinct State + Reason (Reason without its
# "[user@time]" suffix), in the order first seen. Writes to stdout.
set -euo pipefail
for d in "$@"; do
  for f in "$d"/TestScenario{1,3,4,7}*/node-states{,-resume-fail}.txt; do
    if [ -f "$f" ]; then cat "$f"; fi
  done
done | awk '{
  state = $0; sub(/.* State=/, "", state); sub(/ .*/, "", state)
  reason = ""
  i = index($0, " Reason=")
  if (i > 0) { reason = substr($0, i); sub(/ \[[^]]*@[^]]*\].*$/, "", reason) }
  key = state "|" reason
  if (!(key in seen)) { seen[key] = 1; print }
}'

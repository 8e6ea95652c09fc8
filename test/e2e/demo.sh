#!/bin/bash
# make demo: slurm-ec2 bursting a real Slurm into ec2sim, on one Debian machine.
# Installs what it needs (Debian's slurmctld, slurmd, slurm-client, munge), builds the
# binaries, then runs test/e2e/cmd/demo: cluster up, a few jobs, live progress, summary,
# everything stopped at the end (KEEP=1 leaves the cluster running).
# SLURM_VERSION=22.05|24.11|26.05 runs that release from a cached root filesystem
# (test/e2e/slurm-root.sh, built with mmdebstrap on first use); unset: the machine's Slurm.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (network namespaces, a bridge, slurmctld and slurmd): sudo make demo" >&2
  exit 1
fi

need=()
for p in slurmctld slurmd slurm-client munge iproute2 util-linux; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "demo: installing ${need[*]}"
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # keep the packages from starting their daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

if ! command -v go >/dev/null; then
  echo "demo: Go is needed to build slurm-ec2 (see go.mod for the version): https://go.dev/dl/" >&2
  exit 1
fi

make --no-print-directory build
if [ -n "${SLURM_VERSION:-}" ]; then
  if ! command -v mmdebstrap >/dev/null; then
    echo "demo: installing mmdebstrap (builds the Slurm $SLURM_VERSION root filesystem)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
  fi
  test/e2e/slurm-root.sh "$SLURM_VERSION" >/dev/null
fi
E2E_SLURM_VERSION=${SLURM_VERSION:-} exec go run ./test/e2e/cmd/demo "$@"

#!/bin/bash
# slurm-root.sh RELEASE: print the root filesystem holding Debian's Slurm RELEASE (slurmctld,
# slurmd, slurm-client, munge), building it on first use with mmdebstrap; print nothing when
# the machine's own Slurm packages are that release (the harness then runs them directly).
#
#   22.05  Debian 12 "bookworm"      24.11  Debian 13 "trixie"      26.05  Debian unstable "sid"
#
# Cache: $SLURM_EC2_E2E_CACHE (default /var/cache/slurm-ec2-e2e)/<release>/root, about 300 MB
# each. To rebuild one: `make e2e-roots-clean` (all) or delete that directory while no e2e
# run uses it. A root is only used once `slurmctld -V` inside it printed the wanted release.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
rel=${1:?usage: slurm-root.sh 22.05|24.11|26.05}
case $rel in
  22.05) suite=bookworm ;;
  24.11) suite=trixie ;;
  26.05) suite=sid ;;
  *) echo "slurm-root.sh: unknown Slurm release '$rel': use 22.05, 24.11 or 26.05 (or leave SLURM_VERSION unset for this machine's packages)" >&2; exit 2 ;;
esac

# The machine's own packages, if they are the release asked for.
if host=$(slurmctld -V 2>/dev/null) && [[ $host == "slurm-wlm $rel."* || $host == "slurm $rel."* ]]; then
  echo "slurm-root.sh: $rel is this machine's Slurm ($host): no root filesystem needed" >&2
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "slurm-root.sh: building a root filesystem needs root" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "slurm-root.sh: mmdebstrap missing: apt-get install --no-install-recommends mmdebstrap (make deps)" >&2; exit 1; }
cache=${SLURM_EC2_E2E_CACHE:-/var/cache/slurm-ec2-e2e}
dir=$cache/$rel
root=$dir/root
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ ! -s "$root/.slurm-ec2-e2e-version" ]; then
  tmp=$dir/root.tmp
  if grep -qF " $tmp" /proc/self/mountinfo; then
    echo "slurm-root.sh: something is mounted under $tmp; unmount it first" >&2; exit 1
  fi
  rm -rf --one-file-system "$tmp"
  echo "slurm-root.sh: building the Slurm $rel root filesystem (Debian $suite) in $root; once, ~1-2 min" >&2
  # Check-Valid-Until: unstable's Release file may be past its date on a mirror snapshot.
  mmdebstrap --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
    --include=slurmctld,slurmd,slurm-client,munge,iproute2,procps,ca-certificates \
    "$suite" "$tmp" >&2
  got=$(chroot "$tmp" /usr/sbin/slurmctld -V)
  if [[ $got != "slurm-wlm $rel."* && $got != "slurm $rel."* ]]; then
    echo "slurm-root.sh: Debian $suite now carries '$got', not Slurm $rel; update the release table in $0" >&2
    exit 1
  fi
  echo "$got" > "$tmp/.slurm-ec2-e2e-version"
  mv "$tmp" "$root"
fi
echo "slurm-root.sh: Slurm $rel: $(cat "$root/.slurm-ec2-e2e-version") in $root" >&2
echo "$root"

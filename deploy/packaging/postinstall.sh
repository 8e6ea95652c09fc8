#!/bin/sh
# slurm-ec2 package: after install or upgrade (deb postinst, rpm %post).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# LockDir's default, owned by SlurmUser (see /usr/lib/tmpfiles.d/slurm-ec2.conf).
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/slurm-ec2.conf >/dev/null 2>&1 || true
fi
exit 0

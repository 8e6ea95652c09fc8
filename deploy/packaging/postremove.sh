#!/bin/sh
# slurm-ec2 package: after removal (deb postrm, rpm %postun).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0

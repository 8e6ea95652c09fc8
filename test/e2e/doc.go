// Package e2e runs slurm-ec2 against a real Slurm (Debian's slurmctld, slurmd and munge) on
// one machine, with ec2sim standing in for EC2: the machine's own Slurm (22.05 on Debian 12),
// or, with SLURM_VERSION=24.11 or 26.05 (make e2e), that release from a Debian 13 or
// unstable root filesystem that test/e2e/slurm-root.sh builds once with mmdebstrap and caches
// under /var/cache/slurm-ec2-e2e/<release> (delete it, or `make e2e-roots-clean`, to rebuild).
// slurmctld, slurmd, the Slurm commands and slurm-ec2 then run chrooted into that root, on
// the same bridge and network namespaces (see slurmroot.go).
//
// The harness (Cluster) builds, under /tmp/slurm-ec2-e2e:
//
//   - a bridge (se2e0, 10.251.0.1/16) that exists only inside the machine;
//   - ec2sim listening on the bridge, whose subnets are 10.251.1.0/24 (us-east-1a) and
//     10.251.2.0/24 (us-east-1b), with an -on-launch hook that "boots" each instance: a
//     network namespace holding the instance's private IP, where `slurm-ec2 nodename`
//     asks the instance's IMDS for its Slurm name and `slurmd -b -N <name>` starts;
//     -on-terminate kills everything in that namespace and deletes it;
//   - a slurmctld on ports 6917/6918 whose cloud part comes from `slurm-ec2 generate-conf`
//     and whose ResumeProgram, SuspendProgram and ResumeFailProgram are wrappers that
//     give slurm-ec2 its environment (slurmctld passes none but SLURM_CONF; on AWS the
//     instance role gives credentials and no wrapper is needed);
//   - a timer that runs `slurm-ec2 reconcile` as cron or systemd would.
//
// Everything it starts it records in run/ and stops by pid; a later run cleans up what a
// killed run left. It needs root.
//
// The scenarios in e2e_test.go run only when SLURM_EC2_E2E=1 (`make e2e`); plain
// `go test ./...` skips them at once.
package e2e

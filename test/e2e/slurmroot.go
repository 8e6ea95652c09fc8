package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// Running another Slurm release from a root filesystem (Config.SlurmRoot).
//
// Processes are chrooted into the root, in the machine's network and PID namespaces: the
// bridge, the node namespaces and pid-file cleanup work unchanged. Inside the root,
// /proc (SLURM_RESUME_FILE is /proc/<slurmctld>/fd/N), /sys (slurmd's cgroup setup), /dev,
// /run/munge (the machine's munged: its socket protocol is stable across munge releases) and
// the harness Root are bind mounts at the same paths, so slurm.conf, the wrappers and
// slurm-ec2's config directory are the same paths inside and out. The mounts are recorded
// in Root/run/mounts and removed by Cleanup after every process is stopped.

// inRoot makes cmd run chrooted into the Slurm root, if there is one. The program path and
// cmd.Dir are then resolved inside the root.
func (c *Cluster) inRoot(cmd *exec.Cmd) *exec.Cmd {
	if c.cfg.SlurmRoot != "" {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Chroot = c.cfg.SlurmRoot
	}
	return cmd
}

// mountSlurmRoot bind-mounts what the Slurm root needs and records each mount point.
func (c *Cluster) mountSlurmRoot(ctx context.Context) error {
	root := c.cfg.SlurmRoot
	if root == "" {
		return nil
	}
	record := filepath.Join(c.Root, "run/mounts")
	resolvConf := filepath.Join(c.Etc, "resolv.conf")
	mounts := []struct {
		src       string
		recursive bool
	}{
		{"/proc", false}, {"/sys", true}, {"/dev", true}, {"/run/munge", false}, {c.Root, false},
		// The machine's /etc/hosts (a root has none: the head node's name would go to DNS).
		// Slurm 24.11+ looks node names up at slurmd start and for each RPC; those names
		// resolve nowhere, and this machine's DNS server is unreachable from the node
		// namespaces, so every lookup waited out its timeouts (10-20 s per job step, job
		// credentials expired). The root's resolv.conf asks 127.0.0.1, where nothing
		// listens: the answer is an immediate refusal, like a real VPC resolver's NXDOMAIN.
		{"/etc/hosts", false}, {resolvConf, false},
	}
	if err := os.WriteFile(resolvConf, []byte("# slurm-ec2 e2e: see slurmroot.go\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", resolvConf, err)
	}
	for _, m := range mounts {
		dst := filepath.Join(root, m.src)
		if m.src == resolvConf {
			dst = filepath.Join(root, "/etc/resolv.conf")
		}
		if fi, err := os.Stat(m.src); err != nil {
			return fmt.Errorf("preparing the Slurm root %s: %w", root, err)
		} else if fi.IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("creating mount point %s: %w", dst, err)
			}
		} else if _, err := os.Lstat(dst); err != nil || !mounted(dst) {
			os.Remove(dst) // a symlink would be followed by mount
			if err := os.WriteFile(dst, nil, 0o644); err != nil {
				return fmt.Errorf("creating mount point %s: %w", dst, err)
			}
		}
		if mounted(dst) {
			continue // left by a killed run; Cleanup will take it down with this run's
		}
		flag := "--bind"
		if m.recursive {
			flag = "--rbind"
		}
		if err := run(ctx, nil, "mount", flag, m.src, dst); err != nil {
			return fmt.Errorf("preparing the Slurm root %s: %w", root, err)
		}
		appendFile(record, dst+"\n")
		if m.recursive {
			// Unmounting a recursive bind of shared mounts would otherwise propagate to the
			// machine's own /sys and /dev submounts.
			if err := run(ctx, nil, "mount", "--make-rslave", dst); err != nil {
				return fmt.Errorf("preparing the Slurm root %s: %w", root, err)
			}
		}
	}
	return nil
}

// unmountSlurmRoot removes the mounts recorded in runDir/mounts, last first.
func unmountSlurmRoot(ctx context.Context, runDir string, log func(string, ...any)) {
	b, err := os.ReadFile(filepath.Join(runDir, "mounts"))
	if err != nil {
		return
	}
	lines := strings.Fields(string(b))
	for i := len(lines) - 1; i >= 0; i-- {
		dst := lines[i]
		if !mounted(dst) {
			continue
		}
		if err := run(ctx, nil, "umount", "-R", dst); err != nil {
			// a process still holds it (a job task in a dying namespace): detach it
			if err := run(ctx, nil, "umount", "-R", "-l", dst); err != nil {
				log("unmounting %s: %v", dst, err)
			}
		}
	}
	os.Remove(filepath.Join(runDir, "mounts"))
}

// mounted reports whether path is a mount point (in /proc/self/mountinfo).
func mounted(path string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && fs[4] == path {
			return true
		}
	}
	return false
}

// slurmVersion records and logs the release slurmctld reports ("slurm-wlm 24.11.5").
func (c *Cluster) slurmVersion(ctx context.Context) error {
	out, err := c.inRoot(exec.CommandContext(ctx, "/usr/sbin/slurmctld", "-V")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("slurmctld -V (root %q): %w: %s", c.cfg.SlurmRoot, err, bytes.TrimSpace(out))
	}
	c.SlurmVersion = strings.TrimSpace(string(out))
	where := "this machine's packages"
	if c.cfg.SlurmRoot != "" {
		where = "root " + c.cfg.SlurmRoot
	}
	fmt.Fprintf(c.cfg.Log, "e2e: running %s (%s)\n", c.SlurmVersion, where)
	if want := c.cfg.SlurmVersion; want != "" && releaseOf(c.SlurmVersion) != want {
		return fmt.Errorf("asked for Slurm %s but slurmctld -V says %q", want, c.SlurmVersion)
	}
	return nil
}

var releaseRE = regexp.MustCompile(`\b(\d+\.\d+)\.\d+`)

// releaseOf returns the major release ("24.11") in a version string ("slurm-wlm 24.11.5").
func releaseOf(v string) string {
	if m := releaseRE.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/slurm-ec2/slurm-ec2/internal/trust"
)

// SlurmPrograms are the programs slurm-ec2 runs from SlurmBinPath.
var SlurmPrograms = []string{"scontrol", "sinfo"}

// checkSlurmBinPath refuses a SlurmBinPath, or a program in it, that another user could have
// replaced: slurm-ec2 runs them as root or SlurmUser. A SlurmBinPath or program that does not
// exist is left to the command that runs it (validate says so; the exec fails clearly).
func checkSlurmBinPath(cfg *Config) error {
	c := &checker{file: cfg.ConfigFile}
	t := trust.Self()
	if err := t.Dir(cfg.SlurmBinPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.add("SlurmBinPath", "refused: %v", err)
	} else if err == nil {
		for _, prog := range SlurmPrograms {
			if err := t.File(filepath.Join(cfg.SlurmBinPath, prog)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				c.add("SlurmBinPath", "refused: %v", err)
			}
		}
	}
	if len(c.problems) > 0 {
		return &Error{Problems: c.problems}
	}
	return nil
}

// RuntimeDirs checks the directories slurm-ec2 writes to, as the user running it: the log
// file's directory and LockDir (or, while LockDir does not exist yet, the directory it will be
// created in). It returns a line per directory for validate to print, and the problems.
func (cfg *Config) RuntimeDirs() (report []string, problems []Problem) {
	t := trust.Self()
	add := func(key, msg string, args ...any) {
		problems = append(problems, Problem{File: cfg.ConfigFile, Path: key, Msg: fmt.Sprintf(msg, args...)})
	}
	if cfg.LogFileName != "" {
		dir := filepath.Dir(cfg.LogFileName)
		switch err := t.Dir(dir); {
		case errors.Is(err, fs.ErrNotExist):
			report = append(report, fmt.Sprintf("log directory %s does not exist: slurm-ec2 will log to stderr only (create it, owned by SlurmUser, mode 0750)", dir))
		case err != nil:
			if who, ok := slurmUserDir(dir); ok {
				report = append(report, fmt.Sprintf("log directory %s: trusted when slurm-ec2 runs as %s (SlurmUser); run as root it logs to stderr only", dir, who))
			} else {
				add("LogFileName", "refused: %v", err)
			}
		default:
			report = append(report, "log directory "+dir+": trusted")
		}
	}
	switch err := t.Dir(cfg.LockDir); {
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(cfg.LockDir)
		if perr := t.Dir(parent); perr != nil {
			add("LockDir", "%s does not exist and cannot be created safely in %s: %v", cfg.LockDir, parent, perr)
		} else {
			report = append(report, "lock directory "+cfg.LockDir+": created (0700) on first use")
		}
	case err != nil:
		if who, ok := slurmUserDir(cfg.LockDir); ok {
			report = append(report, fmt.Sprintf("lock directory %s: trusted when slurm-ec2 runs as %s (SlurmUser); run resume, suspend or reconcile as that user (runuser -u %s -- slurm-ec2 ...)", cfg.LockDir, who, who))
		} else {
			add("LockDir", "refused: %v", err)
		}
	case syscall.Access(cfg.LockDir, 0o2|0o1) != nil: // W_OK|X_OK: we must create lock files in it
		add("LockDir", "%s is not writable by the user running slurm-ec2 (uid %d): it must belong to SlurmUser; run 'chown SLURMUSER %s' or set LockDir", cfg.LockDir, os.Geteuid(), cfg.LockDir)
	default:
		report = append(report, "lock directory "+cfg.LockDir+": trusted")
	}
	return report, problems
}

// slurmUserDir reports, for validate run as root, a directory that is refused only because
// another user owns it and that user's slurm-ec2 would trust it: the SlurmUser's own log or
// lock directory, as the packages of Slurm make /var/log/slurm. It returns that user's name.
func slurmUserDir(dir string) (string, bool) {
	if os.Geteuid() != 0 {
		return "", false
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return "", false
	}
	if (trust.Checker{UID: int(st.Uid)}).Dir(dir) != nil {
		return "", false
	}
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		return u.Username, true
	}
	return strconv.Itoa(int(st.Uid)), true
}

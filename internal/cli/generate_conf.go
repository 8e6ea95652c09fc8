package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/confgen"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// File names written by generate-conf.
const (
	slurmConfOut = "slurm.conf.aws"
	gresConfOut  = "gres.conf.aws"
)

// runGenerateConf writes the slurm.conf snippet (and gres.conf lines when GPUs or other
// gres are declared).
func runGenerateConf(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "generate-conf")
	dir := addConfigFlag(fs)
	out := fs.String("o", "", "output file, or - for stdout (default: "+slurmConfOut+" in the config directory)")
	slurmVersion := fs.String("slurm-version", "", "Slurm release the snippet is for, such as 24.11 (default: what `scontrol version` says)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("generate-conf takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(env, *dir)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(env.Stderr, p.String())
		}
		fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: fix the configuration first (slurm-ec2 validate)\n")
		return &silentError{code: ExitUsage}
	}
	if err != nil {
		return err
	}
	rel, err := slurmRelease(ctx, env, cfg, *slurmVersion)
	if err != nil {
		return err
	}
	for _, line := range confgen.Choices(cfg, rel) {
		fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: %s\n", line)
	}
	var conf, gres bytes.Buffer
	if err := confgen.WriteRelease(&conf, cfg, rel); err != nil {
		return &UsageError{Msg: err.Error()}
	}
	wroteGres, err := confgen.WriteGres(&gres, cfg)
	if err != nil {
		return &UsageError{Msg: err.Error()}
	}
	target := *out
	if target == "" {
		target = filepath.Join(cfg.Dir, slurmConfOut)
	}
	gresDir := filepath.Dir(target)
	if target == "-" {
		if _, err := env.Stdout.Write(conf.Bytes()); err != nil {
			return fmt.Errorf("writing to stdout: %w", err)
		}
		gresDir = cfg.Dir
	} else {
		if err := writeFileAtomic(target, conf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: wrote %s: append it to slurm.conf, then run 'scontrol reconfigure'\n", target)
	}
	if wroteGres {
		gp := filepath.Join(gresDir, gresConfOut)
		if err := writeFileAtomic(gp, gres.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: wrote %s: append it to gres.conf on the head and compute nodes\n", gp)
	}
	return nil
}

// slurmRelease is the --slurm-version flag, else the release `scontrol version` (in
// SlurmBinPath, run without a shell) reports; unknown (zero) when scontrol cannot say.
func slurmRelease(ctx context.Context, env *Env, cfg *config.Config, flagValue string) (confgen.Release, error) {
	if flagValue != "" {
		rel, err := confgen.ParseRelease(flagValue)
		if err != nil {
			return rel, &UsageError{Msg: "--slurm-version: " + err.Error()}
		}
		return rel, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	scontrol := filepath.Join(cfg.SlurmBinPath, "scontrol")
	out, err := exec.CommandContext(ctx, scontrol, "version").Output()
	if err == nil {
		if rel, perr := confgen.ParseRelease(string(out)); perr == nil {
			fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: %s version: %s\n", scontrol, strings.TrimSpace(string(out)))
			return rel, nil
		}
	}
	fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: %s version did not name a release (%v); pass --slurm-version\n", scontrol, err)
	return confgen.Release{}, nil
}

// writeFileAtomic replaces name with data through a temporary file in the same directory,
// so a reader never sees half a file.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

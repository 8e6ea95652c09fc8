package cli

import (
	"context"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
)

func runReconcile(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "reconcile")
	dir := addConfigFlag(fs)
	dry := fs.Bool("dry-run", false, "print the plan, change nothing")
	force := fs.Bool("force", false, "act even if this host is not the primary slurmctld")
	timeout := addTimeoutFlag(fs, defaultRunTimeout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if fs.NArg() != 0 {
		return usagef("usage: slurm-ec2 reconcile [--config-dir DIR] [--dry-run] [--force]")
	}
	s, err := openSession(env, *dir)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = burst.Reconcile(ctx, s.deps, burst.ReconcileOptions{DryRun: *dry, Force: *force, Out: env.Stdout})
	return err
}

func runStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "status")
	dir := addConfigFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("usage: slurm-ec2 status [--config-dir DIR] [--json]")
	}
	s, err := openSession(env, *dir)
	if err != nil {
		return err
	}
	defer s.Close()
	st, err := burst.GetStatus(ctx, s.deps)
	if err != nil {
		return err
	}
	if *asJSON {
		return st.WriteJSON(env.Stdout)
	}
	return st.WriteTable(env.Stdout, time.Now())
}

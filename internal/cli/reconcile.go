package cli

import (
	"context"
	"errors"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
)

func runReconcile(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "reconcile")
	dir := addConfigFlag(fs)
	dry := fs.Bool("dry-run", false, "print the plan, change nothing")
	force := fs.Bool("force", false, "act even if this host is not the primary slurmctld")
	all := fs.Bool("all-regions", false, "also sweep every region EC2 lists, not only configured ones (instances of removed groups and regions)")
	timeout := addTimeoutFlag(fs, defaultRunTimeout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if fs.NArg() != 0 {
		return usagef("usage: slurm-ec2 reconcile [--config-dir DIR] [--dry-run] [--force] [--all-regions]")
	}
	s, err := openSession(env, *dir)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = burst.Reconcile(ctx, s.deps, burst.ReconcileOptions{DryRun: *dry, Force: *force, Out: env.Stdout, AllRegions: *all})
	return err
}

func runStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "status")
	dir := addConfigFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	all := fs.Bool("all-regions", false, "also look in every region EC2 lists, not only configured ones")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("usage: slurm-ec2 status [--config-dir DIR] [--json] [--all-regions]")
	}
	s, err := openSession(env, *dir)
	if err != nil {
		return err
	}
	defer s.Close()
	// An unreachable (region, profile) still prints everything else, then exits 1.
	st, err := burst.GetStatus(ctx, s.deps, *all)
	if st == nil {
		return err
	}
	var werr error
	if *asJSON {
		werr = st.WriteJSON(env.Stdout)
	} else {
		werr = st.WriteTable(env.Stdout, time.Now())
	}
	return errors.Join(err, werr)
}

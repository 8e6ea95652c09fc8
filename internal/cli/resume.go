package cli

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
	"github.com/slurm-ec2/slurm-ec2/internal/logging"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// session is what every command that talks to Slurm and EC2 shares: config, logger, clients.
type session struct {
	cfg    *config.Config
	deps   *burst.Deps
	closer io.Closer
}

func (s *session) Close() {
	if s.closer != nil {
		_ = s.closer.Close()
	}
}

// openSession loads the config, opens the log, resolves the cluster name and builds the clients.
func openSession(env *Env, configDir string) (*session, error) {
	cfg, err := loadConfig(env, configDir)
	if err != nil {
		return nil, err
	}
	log, closer, err := logging.New(logging.LogSettings{Level: cfg.LogLevel, File: cfg.LogFileName}, env.Stderr)
	if err != nil {
		return nil, &configError{err}
	}
	cluster, err := cfg.ResolveClusterName(env.Getenv)
	if err != nil {
		_ = closer.Close()
		return nil, &configError{err}
	}
	log = log.With("cluster", cluster)
	timeout := time.Duration(cfg.CommandTimeoutSeconds) * time.Second
	deps := &burst.Deps{
		Config:  cfg,
		Cluster: cluster,
		Slurm:   &slurm.Client{BinDir: cfg.SlurmBinPath, Timeout: timeout, Logger: log},
		EC2:     fleet.NewClients(fleet.Options{Logger: log}),
		Log:     log,
		LockDir: cfg.LockDir,
	}
	return &session{cfg: cfg, deps: deps, closer: closer}, nil
}

// configError is a configuration problem found after loading: exit status 2.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }
func (e *configError) ExitCode() int { return ExitUsage }

// Default bounds on a whole run: every EC2 and Slurm call has its own timeout too, and the
// instances of a run cut short are orphans that reconcile removes.
const (
	defaultResumeTimeout = 30 * time.Minute // large resumes spend most of it pacing Name tags
	defaultRunTimeout    = 10 * time.Minute
)

// addTimeoutFlag registers --timeout.
func addTimeoutFlag(fs *flag.FlagSet, def time.Duration) *time.Duration {
	return fs.Duration("timeout", def, "give up after this long (in-flight work is cleaned up by reconcile)")
}

// runHostlistCommand is `CMD [--config-dir DIR] [--timeout D] HOSTLIST`: parse, bound the run,
// open the session, run fn.
func runHostlistCommand(ctx context.Context, env *Env, name string, args []string, def time.Duration,
	fn func(ctx context.Context, s *session, hostlist string) error) error {
	fs := newFlagSet(env, name)
	dir := addConfigFlag(fs)
	timeout := addTimeoutFlag(fs, def)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: slurm-ec2 %s [--config-dir DIR] [--timeout D] HOSTLIST (one Slurm hostlist expression, e.g. aws-spot-[0-3])", name)
	}
	// A malformed hostlist is a mistake in the command line, found before anything is touched.
	if _, err := hostlist.Expand(fs.Arg(0)); err != nil {
		return usagef("%v: give one Slurm hostlist expression, e.g. aws-spot-[0-3]", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := openSession(env, *dir)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s, fs.Arg(0))
}

func runResume(ctx context.Context, env *Env, args []string) error {
	return runHostlistCommand(ctx, env, "resume", args, defaultResumeTimeout, func(ctx context.Context, s *session, expr string) error {
		var opts burst.ResumeOptions
		if p := env.Getenv("SLURM_RESUME_FILE"); p != "" {
			data, err := os.ReadFile(p)
			if err != nil {
				s.deps.Log.Warn("cannot read SLURM_RESUME_FILE; launching without per-job all-or-nothing", "path", p, "error", err)
			} else {
				opts.ResumeFile = data
			}
		}
		_, err := burst.Resume(ctx, s.deps, expr, opts)
		return err
	})
}

func runSuspend(ctx context.Context, env *Env, args []string) error {
	return runHostlistCommand(ctx, env, "suspend", args, defaultRunTimeout, func(ctx context.Context, s *session, expr string) error {
		_, err := burst.Suspend(ctx, s.deps, expr)
		return err
	})
}

func runResumeFail(ctx context.Context, env *Env, args []string) error {
	return runHostlistCommand(ctx, env, "resume-fail", args, defaultRunTimeout, func(ctx context.Context, s *session, expr string) error {
		_, err := burst.ResumeFail(ctx, s.deps, expr)
		return err
	})
}

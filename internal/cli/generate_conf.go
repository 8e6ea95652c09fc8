package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/confgen"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
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
	noEC2 := fs.Bool("no-ec2", false, "never ask EC2: node groups without CPUs or RealMemory get only what partitions.json gives")
	timeout := fs.Duration("ec2-timeout", defaultDescribeTimeout, "how long to wait for EC2 (DescribeInstanceTypes) before giving up")
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
	var shapes *confgen.Shapes
	if !*noEC2 {
		if shapes, err = describeGroups(ctx, cfg, fleet.NewClients(ec2Options(*timeout)), *timeout, false, func(msg string) {
			fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: warning: %s\n", msg)
		}); err != nil {
			return err
		}
	}
	for _, w := range confgen.Warnings(cfg, shapes) {
		fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: warning: %s\n", w)
	}
	var conf, gres bytes.Buffer
	if err := confgen.Write(&conf, cfg, shapes, rel); err != nil {
		return &UsageError{Msg: err.Error()}
	}
	wroteGres, err := confgen.WriteGres(&gres, cfg, shapes)
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
		fmt.Fprintf(env.Stderr, "slurm-ec2 generate-conf: wrote %s: append it to gres.conf on the head and compute nodes, then restart slurmctld (it counts the GPUs of CLOUD nodes at start)\n", gp)
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

// defaultDescribeTimeout bounds generate-conf's EC2 calls: without network or credentials the
// SDK would otherwise retry (and probe instance metadata for credentials) for minutes.
const defaultDescribeTimeout = 30 * time.Second

// ec2Options are the SDK settings of generate-conf and validate --aws's shape check: few
// retries, short waits, so a missing network fails within the timeout.
func ec2Options(timeout time.Duration) fleet.Options {
	return fleet.Options{MaxAttempts: 3, MaxBackoff: 2 * time.Second, HTTPTimeout: min(timeout, 20*time.Second)}
}

// describeGroups asks EC2 about the instance types of the node groups whose
// SlurmSpecifications leave out CPUs or RealMemory (every group with all set): the launch
// template's type for a group whose overrides name none (DescribeLaunchTemplateVersions), then
// one paginated DescribeInstanceTypes per region and profile. Without such groups it makes no
// call at all and returns nil.
//
// warn, when not nil, takes a permission denial (UnauthorizedOperation) as a warning instead
// of an error.
func describeGroups(ctx context.Context, cfg *config.Config, clients *fleet.Clients, timeout time.Duration, all bool, warn func(string)) (*confgen.Shapes, error) {
	type account struct{ region, profile string }
	var groups []*config.NodeGroup
	for _, g := range cfg.NodeGroups() {
		if all || confgen.NeedsEC2(g) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	shapes := &confgen.Shapes{Types: map[string]fleet.Shape{}, Template: map[string]string{}}
	want := map[account][]string{}
	needers := map[account][]string{}
	var order []account
	for _, g := range groups {
		names, reqs := confgen.InstanceTypes(g)
		a := account{g.Region, g.ProfileName}
		if len(names) == 0 && len(reqs) == 0 {
			// EC2 Fleet launches the launch template's type.
			api, err := clients.Get(ctx, a.region, a.profile)
			var t string
			if err == nil {
				t, err = fleet.TemplateInstanceType(ctx, api, g.LaunchTemplateSpecification)
			}
			if err != nil {
				if err := describeError(ctx, cfg, []string{g.Name()}, "its launch template's instance type", a.region, a.profile, timeout, all, err, warn); err != nil {
					return nil, err
				}
				shapes.Refused = append(shapes.Refused, g.Name())
				continue
			}
			if t == "" {
				continue
			}
			shapes.Template[g.Name()] = t
			names = []string{t}
		}
		if len(names) == 0 {
			continue
		}
		if _, ok := want[a]; !ok {
			order = append(order, a)
		}
		for _, n := range names {
			if !slices.Contains(want[a], n) {
				want[a] = append(want[a], n)
			}
		}
		needers[a] = append(needers[a], g.Name())
	}
	for _, a := range order {
		api, err := clients.Get(ctx, a.region, a.profile)
		var got map[string]fleet.Shape
		if err == nil {
			got, err = fleet.DescribeShapes(ctx, api, want[a])
		}
		if err != nil {
			if err := describeError(ctx, cfg, needers[a], strings.Join(want[a], ", "), a.region, a.profile, timeout, all, err, warn); err != nil {
				return nil, err
			}
			shapes.Refused = append(shapes.Refused, needers[a]...)
			continue
		}
		for k, v := range got {
			shapes.Types[k] = v
		}
	}
	return shapes, nil
}

// describeError is the error (or, through warn, the warning) for a failed look-up of what
// (instance types) for groups in region and profile.
func describeError(ctx context.Context, cfg *config.Config, groups []string, what, region, profile string, timeout time.Duration, all bool, err error, warn func(string)) error {
	where := region
	if profile != "" {
		where += " with profile " + profile
	}
	why := "the SlurmSpecifications of node group%s %s leave out CPUs or RealMemory, so generate-conf asks EC2 about %s in %s: %v; "
	if all {
		why = "node group%s %s: describing %s in %s: %v; "
	}
	msg := fmt.Sprintf(why, plural(len(groups)), strings.Join(groups, ", "), what, where, err)
	switch fleet.ErrorCode(err) {
	case "InvalidInstanceType":
		return &UsageError{Msg: msg + "fix LaunchTemplateOverrides[].InstanceType in " + cfg.PartitionsFile}
	case "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateId.VersionNotFound", "InvalidLaunchTemplateId.Malformed":
		return &UsageError{Msg: msg + "fix LaunchTemplateSpecification in " + cfg.PartitionsFile + ", or give CPUs and RealMemory in its SlurmSpecifications"}
	case "UnauthorizedOperation":
		// EC2 answered and said no: head nodes set up before generate-conf asked EC2 have no
		// ec2:DescribeInstanceTypes. Their snippet stays as it was, with a warning.
		if warn != nil {
			warn(msg + "writing only what partitions.json gives; allow ec2:DescribeInstanceTypes and ec2:DescribeLaunchTemplateVersions, or pass -no-ec2")
			return nil
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg += fmt.Sprintf("no answer within %s; ", timeout)
	}
	return fmt.Errorf("%sgive CPUs and RealMemory in SlurmSpecifications of %s, run where EC2 is reachable with credentials allowed ec2:DescribeInstanceTypes, or pass -no-ec2", msg, cfg.PartitionsFile)
}

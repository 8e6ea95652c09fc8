package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
	"github.com/slurm-ec2/slurm-ec2/internal/confgen"
	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

// runValidate checks both files and prints a summary, or every problem with exit status 2.
func runValidate(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "validate")
	dir := addConfigFlag(fs)
	live := fs.Bool("aws", false, "also check each node group against AWS: launch templates, subnets, permissions (dry runs)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("validate takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(env, *dir)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(env.Stderr, p.String())
		}
		n := len(cerr.Problems)
		fmt.Fprintf(env.Stderr, "%d problem%s found; see docs/configuration.md for every key\n", n, plural(n))
		return &silentError{code: ExitUsage}
	}
	if err != nil {
		return err
	}
	w := env.Stdout
	fmt.Fprintf(w, "config: %s\npartitions: %s\n", cfg.ConfigFile, cfg.PartitionsFile)
	var regions []string
	groups, nodes := 0, 0
	for _, p := range cfg.Partitions {
		fmt.Fprintf(w, "partition %s:\n", p.PartitionName)
		for _, g := range p.NodeGroups {
			groups++
			nodes += g.MaxNodes
			if !slices.Contains(regions, g.Region) {
				regions = append(regions, g.Region)
			}
			extra := ""
			if g.AllOrNothing {
				extra = " all-or-nothing"
			}
			fmt.Fprintf(w, "  %-28s %-9s %-14s %d node%s%s\n", g.Hostlist(), g.PurchasingOption, g.Region, g.MaxNodes, plural(g.MaxNodes), extra)
		}
	}
	fmt.Fprintf(w, "%d partition%s, %d node group%s, %d node%s, region%s: %s\n",
		len(cfg.Partitions), plural(len(cfg.Partitions)), groups, plural(groups), nodes, plural(nodes), plural(len(regions)), strings.Join(regions, ", "))
	if name, err := cfg.ResolveClusterName(env.Getenv); err != nil {
		fmt.Fprintf(env.Stderr, "warning: %v\n", err)
	} else {
		fmt.Fprintf(w, "cluster: %s\n", name)
	}
	fmt.Fprintf(w, "log: %s at %s\n", cfg.LogFileName, cfg.LogLevel)
	// Where slurm-ec2 writes, checked as the user running validate (run it as SlurmUser).
	report, problems := cfg.RuntimeDirs()
	for _, line := range report {
		fmt.Fprintln(w, line)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(env.Stderr, p.String())
		}
		n := len(problems)
		fmt.Fprintf(env.Stderr, "%d problem%s found; see docs/configuration.md for every key\n", n, plural(n))
		return &silentError{code: ExitUsage}
	}
	if *live {
		return validateAWS(ctx, env, *dir)
	}
	return nil
}

// validateAWS runs the live checks and prints one line per finding; any failed check gives exit 2.
func validateAWS(ctx context.Context, env *Env, dir string) error {
	s, err := openSession(env, dir)
	if err != nil {
		return err
	}
	defer s.Close()
	failed := 0
	for _, gc := range burst.CheckAWS(ctx, s.deps) {
		for _, c := range gc.Checks {
			if c.OK {
				fmt.Fprintf(env.Stdout, "ok   %s (%s, %s): %s\n", gc.Group, gc.Region, gc.Path, c.Msg)
				continue
			}
			failed++
			fmt.Fprintf(env.Stderr, "%s: %s.%s: %s\n", s.cfg.PartitionsFile, gc.Path, c.Field, c.Msg)
		}
	}
	// Instance types against SlurmSpecifications (confgen.CheckShapes).
	if shapes, err := describeGroups(ctx, s.cfg, fleet.NewClients(ec2Options(defaultDescribeTimeout)), defaultDescribeTimeout, true, nil); err != nil {
		failed++
		fmt.Fprintf(env.Stderr, "%s: instance types: %v\n", s.cfg.PartitionsFile, err)
	} else {
		for _, f := range confgen.CheckShapes(s.cfg, shapes) {
			switch {
			case f.OK:
				fmt.Fprintf(env.Stdout, "ok   %s: %s\n", f.Group, f.Msg)
			case f.Fatal:
				failed++
				fmt.Fprintf(env.Stderr, "%s: %s: SlurmSpecifications.%s: %s\n", s.cfg.PartitionsFile, f.Group, f.Field, f.Msg)
			default:
				fmt.Fprintf(env.Stdout, "warn %s: %s\n", f.Group, f.Msg)
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(env.Stderr, "%d AWS check%s failed\n", failed, plural(failed))
		return &silentError{code: ExitUsage}
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

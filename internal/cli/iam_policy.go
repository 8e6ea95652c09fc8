package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/iampolicy"
)

// runIAMPolicy prints least-privilege IAM policies built from the configuration.
func runIAMPolicy(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "iam-policy")
	dir := fs.String("config-dir", "", "directory of config.json and partitions.json")
	node := fs.String("node", "both", "which policy: head, compute or both (both prints {\"HeadNode\":...,\"ComputeNode\":...})")
	role := fs.String("compute-role-arn", "", "ARN of the compute nodes' IAM role, the only role the head node may pass (default: a placeholder to replace)")
	account := fs.String("account-id", "", "AWS account ID to put in resource ARNs (default: *)")
	partition := fs.String("partition", "aws", "ARN partition: aws, aws-cn, aws-us-gov")
	cluster := fs.String("cluster-name", "", "value of the slurm-ec2:cluster tag (default: ClusterName of config.json, else of slurm.conf)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("iam-policy takes no arguments, got %q", fs.Args())
	}
	switch *node {
	case "head", "compute", "both":
	default:
		return usagef("--node must be head, compute or both, got %q", *node)
	}
	cfgDir := iamConfigDir(env, *dir)
	cfg, err := config.Load(cfgDir)
	if err != nil {
		return &UsageError{Msg: fmt.Sprintf("loading the configuration from %s: %v", cfgDir, err)}
	}
	in := iampolicy.Input{ClusterName: *cluster, Partition: *partition, AccountID: *account, ComputeRoleARN: *role}
	if in.ClusterName == "" {
		if in.ClusterName, err = cfg.ResolveClusterName(env.Getenv); err != nil {
			return &UsageError{Msg: err.Error()}
		}
	}
	for _, g := range cfg.NodeGroups() {
		in.Groups = append(in.Groups, iampolicy.GroupFrom(g))
	}
	p, err := iampolicy.Build(in, *node)
	if err != nil {
		return &UsageError{Msg: err.Error()}
	}
	out, err := iampolicy.Marshal(p, *node)
	if err != nil {
		return err
	}
	if *node != "compute" && *role == "" {
		fmt.Fprintf(env.Stderr, "slurm-ec2 iam-policy: no --compute-role-arn: replace %s in the head node policy\n", iampolicy.PlaceholderComputeRoleARN)
	}
	_, err = env.Stdout.Write(out)
	return err
}

// iamConfigDir applies the config lookup of DESIGN.md: flag, $SLURM_EC2_CONFIG_DIR, the program's
// directory when it holds config.json, else /etc/slurm-ec2.
func iamConfigDir(env *Env, flagDir string) string {
	if flagDir != "" {
		return flagDir
	}
	if env.Getenv != nil {
		if d := env.Getenv("SLURM_EC2_CONFIG_DIR"); d != "" {
			return d
		}
	}
	if env.Program != "" && strings.ContainsRune(env.Program, filepath.Separator) {
		d := filepath.Dir(env.Program)
		if _, err := os.Stat(filepath.Join(d, config.ConfigFileName)); err == nil {
			return d
		}
	}
	return "/etc/slurm-ec2"
}

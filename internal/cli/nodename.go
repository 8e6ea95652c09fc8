package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/nodename"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// runNodename prints this instance's Slurm node name: exit 0 printed a name, 1 nothing found in
// time, 2 usage. Diagnostics go to stderr (the journal, when run from the slurmd drop-in).
func runNodename(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "nodename")
	wait := fs.Duration("wait", 0, "how long to wait for the Name tag (or a Slurm NodeAddr match) to appear. Default: the time EC2's CreateTags\n"+
		"bucket (100 calls, then 10 a second) needs to name every node of the largest burst the configuration\n"+
		"allows in one region and account (the sum of its node groups' MaxNodes): 30s + (N-100)/10 s, at least 60s;\n"+
		"N = 1000 (120s) when no configuration is found")
	slurmBin := fs.String("slurm-bin", "/usr/bin", "directory holding scontrol, for the NodeAddr fallback")
	noHost := fs.Bool("no-hostname-fallback", false, "fail instead of printing the host name when nothing else answers")
	noSlurm := fs.Bool("no-slurm", false, "skip the NodeAddr fallback (no scontrol on this node)")
	verbose := fs.Bool("v", false, "log every attempt")
	envFile := fs.String("env-file", "", "also write SLURM_NODENAME=<name> to this file (atomically), for systemd's EnvironmentFile=")
	configDir := fs.String("config-dir", "", "configuration whose node groups size --wait's default (optional: compute nodes usually have none)")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: slurm-ec2 nodename [--wait DURATION] [--slurm-bin DIR] [--no-hostname-fallback]")
		fmt.Fprintln(env.Stderr, "Prints this instance's Slurm node name: IMDS tag Name, else ec2:DescribeTags, else the Slurm node whose NodeAddr is local-ipv4, else the host name.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("nodename takes no arguments, got %q", fs.Args())
	}
	if *wait < 0 {
		return usagef("--wait must not be negative, got %s", *wait)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level})).With("cmd", "nodename")
	if !flagSet(fs, "wait") {
		burst, from := largestBurst(env, *configDir)
		*wait = nodename.WaitForBurst(burst)
		log.Debug("waiting as long as naming a burst needs", "wait", wait.String(), "burst", burst, "from", from)
	}

	ctx, cancel := context.WithTimeout(ctx, *wait+30*time.Second)
	defer cancel()
	r := &nodename.Resolver{
		// imds.New honours AWS_EC2_METADATA_SERVICE_ENDPOINT and uses IMDSv2 tokens.
		IMDS: imds.New(imds.Options{}),
		EC2: func(ctx context.Context, region string) (nodename.TagsAPI, error) {
			// LoadDefaultConfig honours AWS_ENDPOINT_URL_EC2 and finds the instance role's credentials.
			cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
			if err != nil {
				return nil, fmt.Errorf("loading AWS configuration for %s: %w", region, err)
			}
			return ec2.NewFromConfig(cfg), nil
		},
		Wait:   *wait,
		Logger: log,
	}
	if !*noSlurm {
		sc := &slurm.Client{BinDir: *slurmBin, Timeout: 10 * time.Second, Logger: log}
		r.SlurmNodes = func(ctx context.Context) ([]nodename.SlurmNode, error) {
			nodes, err := sc.Nodes(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]nodename.SlurmNode, 0, len(nodes))
			for _, n := range nodes {
				out = append(out, nodename.SlurmNode{Name: n.Name, Addr: n.Addr, PoweredDown: n.PoweredDown() || n.PoweringDown()})
			}
			return out, nil
		}
	}
	if !*noHost {
		r.Hostname = os.Hostname
	}
	res, err := r.Resolve(ctx)
	if err != nil {
		return err // exit 1, message on stderr
	}
	log.Info("node name found", "node", res.Name, "source", string(res.Source))
	if *envFile != "" {
		if err := writeNodenameEnv(*envFile, res.Name); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(env.Stdout, res.Name)
	return err
}

// writeNodenameEnv writes SLURM_NODENAME=name to path through a temporary file and a rename, so
// systemd never reads a half-written file. Names come from tags: anything but a plain Slurm node
// name is refused rather than written into an environment file.
func writeNodenameEnv(path, name string) error {
	for _, r := range name {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("node name %q has characters a Slurm node name cannot have; not writing %s", name, path)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s for the node name file: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".nodename-*")
	if err != nil {
		return fmt.Errorf("writing the node name file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "SLURM_NODENAME=%s\n", name); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("installing the node name file %s: %w", path, err)
	}
	return nil
}

// flagSet says whether the command line set the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// largestBurst is the most nodes one burst may launch in one region and account: the largest
// sum of MaxNodes over the node groups of one (Region, ProfileName) of the configuration, or
// nodename.DefaultBurst when no valid configuration is found (compute nodes usually have none).
// It says where the number came from.
func largestBurst(env *Env, flagDir string) (int, string) {
	dir := configDirFor(env, flagDir)
	cfg, err := config.Load(dir)
	if err != nil {
		return nodename.DefaultBurst, fmt.Sprintf("no configuration in %s (one full fleet assumed)", dir)
	}
	sums := map[[2]string]int{}
	most := 0
	for _, g := range cfg.NodeGroups() {
		k := [2]string{g.Region, g.ProfileName}
		sums[k] += g.MaxNodes
		most = max(most, sums[k])
	}
	if most == 0 {
		return nodename.DefaultBurst, "no node groups in " + dir
	}
	return most, filepath.Join(dir, config.PartitionsFileName)
}

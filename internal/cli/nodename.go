package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/slurm-ec2/slurm-ec2/internal/nodename"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// runNodename prints this instance's Slurm node name: exit 0 printed a name, 1 nothing found in
// time, 2 usage. Diagnostics go to stderr (the journal, when run from the slurmd drop-in).
func runNodename(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "nodename")
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for the Name tag (or a Slurm NodeAddr match) to appear")
	slurmBin := fs.String("slurm-bin", "/usr/bin", "directory holding scontrol, for the NodeAddr fallback")
	noHost := fs.Bool("no-hostname-fallback", false, "fail instead of printing the host name when nothing else answers")
	noSlurm := fs.Bool("no-slurm", false, "skip the NodeAddr fallback (no scontrol on this node)")
	verbose := fs.Bool("v", false, "log every attempt")
	envFile := fs.String("env-file", "", "also write SLURM_NODENAME=<name> to this file (atomically), for systemd's EnvironmentFile=")
	fs.String("config-dir", "", "accepted for uniformity; nodename reads no configuration")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: slurm-ec2 nodename [--wait 60s] [--slurm-bin DIR] [--no-hostname-fallback]")
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

	ctx, cancel := context.WithTimeout(ctx, *wait+30*time.Second)
	defer cancel()
	r := &nodename.Resolver{
		// imds.New honours AWS_EC2_METADATA_SERVICE_ENDPOINT and uses IMDSv2 tokens.
		IMDS: imds.New(imds.Options{}),
		EC2: func(ctx context.Context, region string) (nodename.TagsAPI, error) {
			// LoadDefaultConfig honours AWS_ENDPOINT_URL_EC2 and finds the instance role's credentials.
			cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
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

package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/burst"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
)

// runRelease is `slurm-ec2 release GROUP...`: end node groups' back-off or hold at once (after
// the launch template or image was fixed), instead of waiting for the next probe.
func runRelease(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "release")
	dir := addConfigFlag(fs)
	timeout := addTimeoutFlag(fs, defaultRunTimeout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("usage: slurm-ec2 release [--config-dir DIR] GROUP... (a node group, <PartitionName>-<NodeGroupName>, e.g. aws-spot)")
	}
	// The group names are checked before anything else (a typo is a usage error).
	cfg, err := loadConfig(env, *dir)
	if err != nil {
		return err
	}
	for _, g := range fs.Args() {
		if _, ok := cfg.NodeGroup(g); !ok {
			var names []string
			for _, ng := range cfg.NodeGroups() {
				names = append(names, ng.Name())
			}
			return usagef("%q is not a node group: use one of %s", g, strings.Join(names, ", "))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := openSession(env, *dir)
	if err != nil {
		return err
	}
	defer s.Close()
	released, err := burst.Release(ctx, s.deps, fs.Args())
	if err != nil {
		return err
	}
	if len(released) == 0 {
		fmt.Fprintf(env.Stdout, "no node of %s is held or backing off\n", strings.Join(fs.Args(), ", "))
		return nil
	}
	fmt.Fprintf(env.Stdout, "released %d nodes of %s: %s\n", len(released), strings.Join(fs.Args(), ", "), hostlist.Compress(released))
	return nil
}

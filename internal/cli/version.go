package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time: -ldflags "-X github.com/slurm-ec2/slurm-ec2/internal/cli.Version=v1.2.3".
var Version = "dev"

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return fmt.Sprintf("slurm-ec2 %s %s/%s %s", v, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func runVersion(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return usagef("version takes no arguments")
	}
	_, err := fmt.Fprintln(env.Stdout, versionString())
	return err
}

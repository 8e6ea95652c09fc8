// Command slurm-ec2 is Slurm's ResumeProgram, SuspendProgram, ResumeFailProgram and
// reconcile loop for Amazon EC2. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slurm-ec2/slurm-ec2/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.OSEnv(), os.Args)
	stop()
	os.Exit(code)
}

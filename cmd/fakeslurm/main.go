// Command fakeslurm is a recording stand-in for Slurm's scontrol and sinfo
// (chosen by the name it is run as), for tests and benchmarks. State lives
// in $FAKESLURM_DIR; see package internal/slurm/fakeslurm.
package main

import (
	"os"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

func main() {
	os.Exit(fakeslurm.Main(os.Args, os.Stdout, os.Stderr))
}

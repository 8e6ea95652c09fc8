// Package cli holds the subcommands of slurm-ec2 and turns their errors into exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Exit codes shared by every subcommand (DESIGN.md: contracts).
const (
	ExitOK      = 0
	ExitFailure = 1 // runtime failure: EC2 or Slurm said no, Slurm not told the truth
	ExitUsage   = 2 // usage or configuration error
)

// Env is what a subcommand may touch of the outside world. Tests build their own.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	// Program is argv[0] as invoked; it decides the config directory default and the
	// subcommand when invoked through a symlink named after one.
	Program string
	Getenv  func(string) string
}

// OSEnv is the Env of a real process.
func OSEnv() *Env {
	return &Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Program: os.Args[0], Getenv: os.Getenv}
}

// Command is one subcommand.
type Command struct {
	Name    string
	Aliases []string
	Usage   string // argument synopsis, e.g. "HOSTLIST"
	Short   string
	Run     func(ctx context.Context, env *Env, args []string) error
}

// ExitCoder is implemented by errors that carry their own exit status.
type ExitCoder interface{ ExitCode() int }

// UsageError is a command-line mistake: exit status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }
func (e *UsageError) ExitCode() int { return ExitUsage }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// errSilent is returned by a command that has already printed what went wrong.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func (e *silentError) ExitCode() int { return e.code }

func commands() []*Command {
	return []*Command{
		{Name: "resume", Usage: "HOSTLIST", Short: "launch EC2 instances for Slurm nodes (ResumeProgram)", Run: runResume},
		{Name: "suspend", Usage: "HOSTLIST", Short: "terminate the instances of Slurm nodes (SuspendProgram)", Run: runSuspend},
		{Name: "resume-fail", Usage: "HOSTLIST", Short: "clean up nodes that failed to resume (ResumeFailProgram)", Run: runResumeFail},
		{Name: "reconcile", Aliases: []string{"change-state"}, Short: "bring Slurm and EC2 into agreement (run every minute)", Run: runReconcile},
		{Name: "release", Usage: "GROUP...", Short: "end node groups' back-off or hold at once (after fixing the cause)", Run: runRelease},
		{Name: "status", Short: "show cloud nodes joined with their instances", Run: runStatus},
		{Name: "generate-conf", Usage: "[-o FILE|-]", Short: "write the slurm.conf snippet for the node groups", Run: runGenerateConf},
		{Name: "validate", Short: "check config.json and partitions.json", Run: runValidate},
		{Name: "nodename", Short: "print this instance's Slurm node name (on a compute node)", Run: runNodename},
		{Name: "iam-policy", Short: "print least-privilege IAM policies for head and compute nodes", Run: runIAMPolicy},
		{Name: "version", Short: "print the version", Run: runVersion},
	}
}

// lookup finds a command by name or alias.
func lookup(name string) *Command {
	for _, c := range commands() {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// Run runs the program with argv and returns its exit status.
func Run(ctx context.Context, env *Env, argv []string) int {
	if len(argv) == 0 {
		argv = []string{"slurm-ec2"}
	}
	env.Program = argv[0]
	args := argv[1:]
	// A symlink named resume, suspend, resume-fail or change-state acts as that subcommand; so
	// do the Python plugin's names (resume.py, suspend.py, change_state.py, generate_conf.py), so
	// an existing slurm.conf keeps working when its scripts become links to this binary.
	cmd := lookup(invokedName(argv[0]))
	if cmd == nil {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			printUsage(env.Stderr)
			if len(args) == 0 {
				return ExitUsage
			}
			return ExitOK
		}
		if args[0] == "--version" || args[0] == "-version" {
			args[0] = "version"
		}
		cmd = lookup(args[0])
		if cmd == nil {
			fmt.Fprintf(env.Stderr, "slurm-ec2: unknown command %q; run 'slurm-ec2 help' for the list\n", args[0])
			return ExitUsage
		}
		args = args[1:]
	}
	err := cmd.Run(ctx, env, args)
	return exitCode(env.Stderr, cmd.Name, err)
}

// invokedName maps argv[0] to a command name: "/x/change_state.py" -> "change-state".
func invokedName(argv0 string) string {
	base := filepath.Base(argv0)
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".exe"), ".py")
	return strings.ReplaceAll(base, "_", "-")
}

func exitCode(stderr io.Writer, name string, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var s *silentError
	if errors.As(err, &s) {
		return s.code
	}
	fmt.Fprintf(stderr, "slurm-ec2 %s: %v\n", name, err)
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitFailure
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: slurm-ec2 COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		name := c.Name
		if c.Usage != "" {
			name += " " + c.Usage
		}
		fmt.Fprintf(w, "  %-28s %s\n", name, c.Short)
		if len(c.Aliases) > 0 {
			fmt.Fprintf(w, "  %-28s (alias: %s)\n", "", strings.Join(c.Aliases, ", "))
		}
	}
	fmt.Fprintln(w, "\nSymlinks named resume, suspend, resume-fail or change-state run that command.")
	fmt.Fprintln(w, "Every command takes --config-dir DIR (else $SLURM_EC2_CONFIG_DIR, else the program's directory, else /etc/slurm-ec2).")
}

// newFlagSet makes a flag set for a subcommand that reports errors as usage errors.
func newFlagSet(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("slurm-ec2 "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parseFlags parses and converts a flag error into a UsageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	return nil
}

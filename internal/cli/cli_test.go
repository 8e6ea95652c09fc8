package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func dispatchEnv() (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, &out, &errb
}

func TestInvokedName(t *testing.T) {
	tests := map[string]string{
		"/usr/lib/slurm-ec2/resume": "resume",
		"/slurm/etc/aws/resume.py":  "resume",
		"suspend.py":                "suspend",
		"change_state.py":           "change-state",
		"/x/generate_conf.py":       "generate-conf",
		"resume-fail":               "resume-fail",
		"/usr/bin/slurm-ec2":        "slurm-ec2",
	}
	for in, want := range tests {
		if got := invokedName(in); got != want {
			t.Errorf("invokedName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDispatch(t *testing.T) {
	tests := map[string]struct {
		argv   []string
		code   int
		stdout string
		stderr string
	}{
		"no command":      {argv: []string{"slurm-ec2"}, code: ExitUsage, stderr: "usage: slurm-ec2 COMMAND"},
		"help":            {argv: []string{"slurm-ec2", "help"}, code: ExitOK, stderr: "commands:"},
		"unknown command": {argv: []string{"slurm-ec2", "resum"}, code: ExitUsage, stderr: `unknown command "resum"`},
		"version":         {argv: []string{"slurm-ec2", "version"}, code: ExitOK, stdout: "slurm-ec2 "},
		"--version":       {argv: []string{"slurm-ec2", "--version"}, code: ExitOK, stdout: "slurm-ec2 "},
		// Through a symlink, argv[1] is the hostlist, not a command.
		"resume symlink without hostlist":  {argv: []string{"/opt/aws/resume"}, code: ExitUsage, stderr: "usage: slurm-ec2 resume"},
		"resume.py symlink, two hostlists": {argv: []string{"/opt/aws/resume.py", "a-b-1", "a-b-2"}, code: ExitUsage, stderr: "HOSTLIST"},
		"suspend bad flag":                 {argv: []string{"slurm-ec2", "suspend", "--nope", "x"}, code: ExitUsage, stderr: "flag provided but not defined"},
		"reconcile extra arg":              {argv: []string{"change_state.py", "x"}, code: ExitUsage, stderr: "usage: slurm-ec2 reconcile"},
		// A malformed hostlist is a usage error (2), before any configuration is read.
		"open range":                     {argv: []string{"slurm-ec2", "resume", "aws-node-[0-"}, code: ExitUsage, stderr: "give one Slurm hostlist expression"},
		"reversed":                       {argv: []string{"slurm-ec2", "suspend", "aws-node-[5-2]"}, code: ExitUsage, stderr: "aws-node-[5-2]"},
		"empty":                          {argv: []string{"slurm-ec2", "resume-fail", ""}, code: ExitUsage, stderr: "empty hostlist"},
		"symlink empty":                  {argv: []string{"/usr/lib/slurm-ec2/resume", " "}, code: ExitUsage, stderr: "empty hostlist"},
		"reconcile --all-regions, extra": {argv: []string{"slurm-ec2", "reconcile", "--all-regions", "x"}, code: ExitUsage, stderr: "[--all-regions]"},
		"status --all-regions, extra":    {argv: []string{"slurm-ec2", "status", "--all-regions", "x"}, code: ExitUsage, stderr: "[--all-regions]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env, out, errb := dispatchEnv()
			code := Run(context.Background(), env, tc.argv)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errb)
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", out, tc.stdout)
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errb, tc.stderr)
			}
		})
	}
}

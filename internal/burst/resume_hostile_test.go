package burst

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileNodeNames gives resume, suspend and resume-fail node lists with shell
// metacharacters, very long and unicode names: each is rejected (a hostlist error) or passed to
// scontrol as one argv word (never a shell), and nothing is launched for a name that is not ours.
func TestHostileNodeNames(t *testing.T) {
	e := newTestEnv(t, "")
	canary := filepath.Join(t.TempDir(), "pwned")
	for _, expr := range []string{
		"aws-ondemand-0;touch " + canary,
		"$(touch " + canary + ")",
		"`touch " + canary + "`",
		"aws-ondemand-1' || touch '" + canary,
		"aws-ondemand-2\ntouch " + canary,
		"aws-ondemand-" + strings.Repeat("9", 5000),
		strings.Repeat("n", 70000),
		"aws-öndemand-0,ノード-1,aws-ondemand-\u202e3",
		"aws-ondemand-[0-99999999999999999999]",
		"aws-ondemand-[3-1]",
		"aws-ondemand-0 state=down reason=x",
		"nodename=aws-ondemand-0",
	} {
		ctx := context.Background()
		_, rerr := Resume(ctx, e.deps, expr, ResumeOptions{})
		_, serr := Suspend(ctx, e.deps, expr)
		_, ferr := ResumeFail(ctx, e.deps, expr)
		t.Logf("%.60q: resume=%.200v suspend=%.200v resume-fail=%.200v", expr, rerr, serr, ferr)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatalf("a node name ran a shell command (%s exists)", canary)
	}
	// Whitespace separates hostlist items (as in Slurm): a valid name among hostile words is
	// launched; nothing else is.
	for name := range e.live() {
		if _, _, ok := e.cfg.LookupNode(name); !ok {
			t.Errorf("an instance was launched for %.80q", name)
		}
	}
	for _, argv := range e.updates() {
		for _, a := range argv[2:] {
			if k, _, ok := strings.Cut(a, "="); !ok || strings.ContainsAny(k, " ;`$") {
				t.Errorf("scontrol update argument %.80q is not one key=value word", a)
			}
		}
		if len(strings.Join(argv, " ")) > 200_000 {
			t.Errorf("scontrol update argv of %d bytes", len(strings.Join(argv, " ")))
		}
	}
}

// TestHostileTagTemplate: a tag template with shell metacharacters and unicode reaches EC2 as
// the literal value, with only {node_name}/{ip_address}/{hostname} substituted.
func TestHostileTagTemplate(t *testing.T) {
	e := newTestEnv(t, "")
	g, _, ok := e.cfg.LookupNode("aws-ondemand-0")
	if !ok {
		t.Fatal("aws-ondemand-0 not in the test config")
	}
	g.Tags = append(g.Tags, struct{ Key, Value string }{"Evil", "$(reboot);`id` {node_name} ☃ {unknown}"})
	if _, err := Resume(context.Background(), e.deps, "aws-ondemand-0", ResumeOptions{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	got := e.live()["aws-ondemand-0"]
	if len(got) != 1 {
		t.Fatalf("want one instance for aws-ondemand-0, got %d", len(got))
	}
	if v, want := got[0].Tags["Evil"], "$(reboot);`id` aws-ondemand-0 ☃ {unknown}"; v != want {
		t.Errorf("tag Evil = %q, want %q", v, want)
	}
}

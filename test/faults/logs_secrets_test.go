package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
)

// TestNoSecretsInLogs runs every program, in-process and as the real binary, at DEBUG with
// credentials (key, secret, session token) in the environment, through retries and failures,
// and greps every log for the secret, the token and signed headers.
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.inject(ec2sim.Fault{Action: "*", Rate: 0.3, Code: "InternalError"}) // retries and errors get logged too
	workload(e)
	for _, args := range [][]string{
		{"resume", "aws-ondemand-[6-7]"}, {"status"}, {"suspend", "aws-ondemand-[6-7]"},
		{"resume-fail", "aws-ondemand-6"}, {"reconcile", "--force"}, {"reconcile", "--dry-run"}, {"validate"},
		{"resume", "aws-nope-1"}, {"suspend", "bad[hostlist"},
	} {
		c := e.start(args...)
		<-c.done
	}
	_ = e.recoverAndCheck()

	logs := map[string]string{"in-process and stderr": e.logs.String()}
	files, _ := filepath.Glob(filepath.Join(e.dir, "*.log*"))
	if len(files) == 0 {
		t.Errorf("the binary wrote no log file in %s", e.dir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		logs[f] = string(b)
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o007 != 0 || st.Mode().Perm()&0o020 != 0 {
			t.Errorf("log file %s has mode %v; want 0640 or tighter", f, st.Mode().Perm())
		}
	}
	for name, text := range logs {
		if len(text) < 1000 {
			t.Errorf("log %s is nearly empty (%d bytes): the test saw nothing", name, len(text))
		}
		for _, secret := range []string{testSecret, testToken, "Signature=", "Authorization", "X-Amz-Security-Token", "X-Amz-Signature"} {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("log %s contains %q: ...%s...", name, secret, text[max(0, i-200):min(len(text), i+100)])
			}
		}
	}
	e.note("credentials + session token set, DEBUG everywhere, 30% InternalError")
	e.finish(nil)
}

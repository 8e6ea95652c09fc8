package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitFile is a parsed systemd unit: section -> key -> values in order (keys may repeat).
type unitFile map[string]map[string][]string

// parseUnit reads the INI dialect of systemd.syntax(7): [Section] headers, Key=Value lines,
// # and ; comments, trailing-backslash continuations.
func parseUnit(data string) (unitFile, error) {
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(data))
	n, pending := 0, ""
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("line %d: want Key=Value, got %q", n, line)
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: %q outside any [Section]", n, line)
		}
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	if pending != "" {
		return nil, fmt.Errorf("file ends inside a continued line")
	}
	return u, sc.Err()
}

func (u unitFile) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func loadUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}

func TestParseUnit(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    unitFile
		wantErr string
	}{
		"basic": {in: "# c\n[Service]\nExecStart=\nExecStart=/bin/a \\\n  -x\n; c\nUser = slurm\n",
			want: unitFile{"Service": {"ExecStart": {"", "/bin/a  -x"}, "User": {"slurm"}}}},
		"no section":  {in: "User=x\n", wantErr: "outside any"},
		"bad header":  {in: "[Service\n", wantErr: "bad section"},
		"not kv":      {in: "[A]\nfoo\n", wantErr: "want Key=Value"},
		"dangling \\": {in: "[A]\nK=v \\", wantErr: "continued line"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseUnit(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseUnit(f *testing.F) {
	f.Add("[Service]\nExecStart=/usr/bin/x\n")
	f.Add("[A]\nK=v \\\n w\n# c\n")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUnit(s)
		if err != nil {
			return
		}
		for sec, kv := range u {
			for k := range kv {
				if k == "" || strings.ContainsAny(k, " \t\n=") || strings.ContainsAny(sec, "\n") {
					t.Fatalf("bad key %q in [%s] from %q", k, sec, s)
				}
			}
		}
	})
}

const binary = "/usr/bin/slurm-ec2"

func TestSlurmdDropIn(t *testing.T) {
	u := loadUnit(t, filepath.Join("systemd", "slurmd.service.d", "slurm-ec2.conf"))
	pre := strings.Fields(u.last("Service", "ExecStartPre"))
	if len(pre) < 2 || pre[0] != binary || pre[1] != "nodename" {
		t.Fatalf("ExecStartPre = %v, want %s nodename ...", pre, binary)
	}
	i := slices.Index(pre, "--env-file")
	if i < 0 || i+1 >= len(pre) {
		t.Fatalf("ExecStartPre lacks --env-file FILE: %v", pre)
	}
	envFile := pre[i+1]
	if !strings.HasPrefix(envFile, "/run/") {
		t.Errorf("env file %s not under /run", envFile)
	}
	if rd := u.last("Service", "RuntimeDirectory"); !strings.HasPrefix(envFile, "/run/"+rd+"/") {
		t.Errorf("env file %s not in RuntimeDirectory=%s", envFile, rd)
	}
	if got := u.last("Service", "EnvironmentFile"); got != envFile {
		t.Errorf("EnvironmentFile = %q, want %q (what ExecStartPre writes)", got, envFile)
	}
	starts := u["Service"]["ExecStart"]
	if len(starts) != 2 || starts[0] != "" {
		t.Fatalf("ExecStart must be reset (empty) then set once, got %q", starts)
	}
	start := strings.Fields(starts[1])
	if start[0] != "/usr/sbin/slurmd" || !slices.Contains(start, "-N") || start[slices.Index(start, "-N")+1] != "${SLURM_NODENAME}" {
		t.Errorf("ExecStart = %v, want /usr/sbin/slurmd ... -N ${SLURM_NODENAME}", start)
	}
	if !slices.Contains(start, "$SLURMD_OPTIONS") {
		t.Errorf("ExecStart drops $SLURMD_OPTIONS (needed for --conf-server): %v", start)
	}
	if got, ok := u["Unit"]["ConditionPathExists"]; !ok || got[0] != "" {
		t.Errorf("ConditionPathExists must be reset for configless compute nodes, got %q", got)
	}
}

func TestReconcileUnits(t *testing.T) {
	svc := loadUnit(t, filepath.Join("systemd", "slurm-ec2-reconcile.service"))
	want := map[string]string{
		"Type": "oneshot", "User": "slurm", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
	}
	for k, v := range want {
		if got := svc.last("Service", k); got != v {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	if exec := strings.Fields(svc.last("Service", "ExecStart")); len(exec) < 2 || exec[0] != binary || exec[1] != "reconcile" {
		t.Errorf("ExecStart = %v, want %s reconcile", exec, binary)
	}
	if rw := svc.last("Service", "ReadWritePaths"); !strings.Contains(rw, "/var/log/slurm") {
		t.Errorf("ReadWritePaths = %q: the log directory must stay writable", rw)
	}
	timer := loadUnit(t, filepath.Join("systemd", "slurm-ec2-reconcile.timer"))
	for k, v := range map[string]string{"OnUnitActiveSec": "60", "AccuracySec": "5s"} {
		if got := timer.last("Timer", k); got != v {
			t.Errorf("[Timer] %s = %q, want %q", k, got, v)
		}
	}
	if u := timer.last("Timer", "Unit"); u != "" && u != "slurm-ec2-reconcile.service" {
		t.Errorf("timer starts %s", u)
	}
	if timer.last("Install", "WantedBy") != "timers.target" {
		t.Error("timer not installable: [Install] WantedBy=timers.target missing")
	}
}

// TestSweepUnits: the hourly sweep runs `reconcile --all-regions`, hardened like the per-minute pass.
func TestSweepUnits(t *testing.T) {
	svc := loadUnit(t, filepath.Join("systemd", "slurm-ec2-sweep.service"))
	if exec := strings.Fields(svc.last("Service", "ExecStart")); len(exec) != 3 || exec[0] != binary || exec[1] != "reconcile" || exec[2] != "--all-regions" {
		t.Errorf("ExecStart = %v, want %s reconcile --all-regions", exec, binary)
	}
	pass := loadUnit(t, filepath.Join("systemd", "slurm-ec2-reconcile.service"))
	for _, k := range []string{"User", "NoNewPrivileges", "ProtectSystem", "ReadWritePaths", "CapabilityBoundingSet", "RestrictAddressFamilies"} {
		if svc.last("Service", k) != pass.last("Service", k) {
			t.Errorf("[Service] %s = %q, the per-minute pass has %q", k, svc.last("Service", k), pass.last("Service", k))
		}
	}
	timer := loadUnit(t, filepath.Join("systemd", "slurm-ec2-sweep.timer"))
	if got := timer.last("Timer", "OnUnitActiveSec"); got != "1h" {
		t.Errorf("[Timer] OnUnitActiveSec = %q, want 1h", got)
	}
	if timer.last("Install", "WantedBy") != "timers.target" {
		t.Error("sweep timer not installable")
	}
}

func TestDocsKeepCronLine(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "* * * * * /usr/lib/slurm-ec2/change-state") {
		t.Error("docs/deploy.md lost the cron line for sites without systemd")
	}
}

// TestSystemdAnalyzeVerify asks systemd itself to load the units (unknown keys, bad values) when
// systemd-analyze is installed. Binaries that are not installed here are replaced by /bin/true.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	copyUnit := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), binary, "/bin/true"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyUnit("systemd/slurm-ec2-reconcile.service", filepath.Join(dir, "slurm-ec2-reconcile.service"))
	copyUnit("systemd/slurm-ec2-reconcile.timer", filepath.Join(dir, "slurm-ec2-reconcile.timer"))
	copyUnit("systemd/slurm-ec2-sweep.service", filepath.Join(dir, "slurm-ec2-sweep.service"))
	copyUnit("systemd/slurm-ec2-sweep.timer", filepath.Join(dir, "slurm-ec2-sweep.timer"))
	units := []string{filepath.Join(dir, "slurm-ec2-reconcile.service"), filepath.Join(dir, "slurm-ec2-reconcile.timer"),
		filepath.Join(dir, "slurm-ec2-sweep.service"), filepath.Join(dir, "slurm-ec2-sweep.timer")}
	if _, err := os.Stat("/lib/systemd/system/slurmd.service"); err == nil {
		copyUnit("/lib/systemd/system/slurmd.service", filepath.Join(dir, "slurmd.service"))
		copyUnit("systemd/slurmd.service.d/slurm-ec2.conf", filepath.Join(dir, "slurmd.service.d", "slurm-ec2.conf"))
		units = append(units, filepath.Join(dir, "slurmd.service"))
	}
	cmd := exec.Command(sa, append([]string{"verify"}, units...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

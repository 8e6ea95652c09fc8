package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config is one cluster's settings. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Root    string // working directory, wiped at Start; default /tmp/slurm-ec2-e2e
	RepoDir string // the repository: bin/slurm-ec2, bin/ec2sim, test/e2e/hooks
	BinDir  string // where slurm-ec2 and ec2sim are; default RepoDir/bin

	Bridge     string // bridge device, default se2e0
	Gateway    string // bridge address = slurmctld, ec2sim and IMDS address, default 10.251.0.1
	PrefixLen  int    // of the bridge network, default 16
	CtldPort   int    // default 6917
	SlurmdPort int    // default 6918
	EC2Port    int    // default 6920
	IMDSPort   int    // default 6921

	// Slurm power saving (seconds).
	SuspendTime, SuspendTimeout, ResumeTimeout int
	// CredExpire is AuthInfo=cred_expire: also how long a requeued job waits (Slurm's
	// default 120 s would dominate every requeue scenario).
	CredExpire int

	// config.json additions.
	ClusterName                         string
	CoolDownSeconds, OrphanGraceSeconds int

	// Partitions is partitions.json; default: the spec's example 1 (on-demand group with
	// Weight=1, spot group with Weight=2).
	Partitions []byte
	// Capacity per (instance type, AZ, lifecycle) pool; pools not listed hold DefaultCapacity.
	Capacity        []Pool
	DefaultCapacity int

	// ConfigExtra are more config.json keys (e.g. the back-off settings), written as given.
	ConfigExtra map[string]any

	BootDelay time.Duration // ec2sim pending -> running
	// ReconcileEvery runs `slurm-ec2 reconcile` on a timer (cron, systemd timer). 0: never.
	ReconcileEvery time.Duration

	Log io.Writer // progress lines; default os.Stderr

	// SlurmVersion is the Slurm release to run: "22.05", "24.11" or "26.05"; default
	// $E2E_SLURM_VERSION (make e2e SLURM_VERSION=...); empty: this machine's packages.
	SlurmVersion string
	// SlurmRoot is the root filesystem holding that release (test/e2e/slurm-root.sh builds
	// and caches it); default: what slurm-root.sh prints for SlurmVersion. Empty: the
	// machine's own Slurm. slurmctld, slurmd, the Slurm commands and slurm-ec2 itself run
	// chrooted into it, with /proc, /sys, /dev, /run/munge and Root bind-mounted at their
	// own paths, so every path in slurm.conf is the same inside and out.
	SlurmRoot string

	// BeforeSlurmctld runs after the configuration is written (slurm.conf, generate-conf's
	// snippets in Etc) and before slurmctld starts: for files slurmctld reads only at start,
	// such as the gres.conf of CLOUD nodes.
	BeforeSlurmctld func(c *Cluster) error
}

// Pool is the capacity of one ec2sim pool.
type Pool struct {
	InstanceType     string `json:"InstanceType"`
	AvailabilityZone string `json:"AvailabilityZone"`
	Lifecycle        string `json:"Lifecycle"` // on-demand | spot
	Capacity         int    `json:"Capacity"`
}

// DefaultConfig is the configuration used when a field is left zero.
func DefaultConfig() Config {
	return Config{
		Root: "/tmp/slurm-ec2-e2e", Bridge: "se2e0", Gateway: "10.251.0.1", PrefixLen: 16,
		CtldPort: 6917, SlurmdPort: 6918, EC2Port: 6920, IMDSPort: 6921,
		SuspendTime: 15, SuspendTimeout: 10, ResumeTimeout: 45, CredExpire: 5,
		ClusterName: "e2e", CoolDownSeconds: 20, OrphanGraceSeconds: 10,
		DefaultCapacity: 200, BootDelay: time.Second, Partitions: []byte(Example1Partitions),
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	setS := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	setI := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setS(&c.Root, d.Root)
	setS(&c.Bridge, d.Bridge)
	setS(&c.Gateway, d.Gateway)
	setS(&c.ClusterName, d.ClusterName)
	setI(&c.PrefixLen, d.PrefixLen)
	setI(&c.CtldPort, d.CtldPort)
	setI(&c.SlurmdPort, d.SlurmdPort)
	setI(&c.EC2Port, d.EC2Port)
	setI(&c.IMDSPort, d.IMDSPort)
	setI(&c.SuspendTime, d.SuspendTime)
	setI(&c.SuspendTimeout, d.SuspendTimeout)
	setI(&c.ResumeTimeout, d.ResumeTimeout)
	setI(&c.CredExpire, d.CredExpire)
	setI(&c.CoolDownSeconds, d.CoolDownSeconds)
	setI(&c.OrphanGraceSeconds, d.OrphanGraceSeconds)
	setI(&c.DefaultCapacity, d.DefaultCapacity)
	if c.BootDelay == 0 {
		c.BootDelay = d.BootDelay
	}
	if len(c.Partitions) == 0 {
		c.Partitions = d.Partitions
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	setS(&c.SlurmVersion, os.Getenv("E2E_SLURM_VERSION"))
}

// resolveRoot sets SlurmRoot from SlurmVersion with test/e2e/slurm-root.sh (which builds the
// root on first use, or prints nothing when the machine's own Slurm is that release).
func (c *Config) resolveRoot(ctx context.Context) error {
	if c.SlurmVersion == "" || c.SlurmRoot != "" {
		return nil
	}
	script := filepath.Join(c.RepoDir, "test/e2e/slurm-root.sh")
	cmd := exec.CommandContext(ctx, script, c.SlurmVersion)
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(&stderr, c.Log)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", script, c.SlurmVersion, err, strings.TrimSpace(stderr.String()))
	}
	c.SlurmRoot = strings.TrimSpace(string(out))
	return nil
}

// Example1Partitions is the spec's "example 1" partitions.json: one partition, an on-demand
// group preferred by Slurm (Weight=1) and a spot group (Weight=2).
const Example1Partitions = `{
  "Partitions": [
    {
      "PartitionName": "aws",
      "NodeGroups": [
        {
          "NodeGroupName": "ondemand",
          "MaxNodes": 10,
          "Region": "us-east-1",
          "SlurmSpecifications": {"CPUs": "4", "Weight": "1"},
          "PurchasingOption": "on-demand",
          "OnDemandOptions": {"AllocationStrategy": "lowest-price"},
          "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
          "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}],
          "SubnetIds": ["subnet-11111111", "subnet-22222222"],
          "Tags": [{"Key": "NodeGroup", "Value": "ondemand"}]
        },
        {
          "NodeGroupName": "spot",
          "MaxNodes": 100,
          "Region": "us-east-1",
          "SlurmSpecifications": {"CPUs": "4", "Weight": "2"},
          "PurchasingOption": "spot",
          "SpotOptions": {"AllocationStrategy": "lowest-price"},
          "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
          "LaunchTemplateOverrides": [{"InstanceType": "c5.xlarge"}],
          "SubnetIds": ["subnet-11111111", "subnet-22222222"],
          "Tags": [{"Key": "NodeGroup", "Value": "spot"}]
        }
      ],
      "PartitionOptions": {"Default": "yes", "TRESBillingWeights": "cpu=4"}
    }
  ]
}
`

// Cluster is a running test cluster.
type Cluster struct {
	cfg Config
	log *slog.Logger

	Root, Etc, Bin string
	SlurmConf      string
	EC2URL         string // http://gateway:port
	IMDSURL        string

	// SlurmVersion is what `slurmctld -V` printed: "slurm-wlm 24.11.5".
	SlurmVersion string

	ec2sim     *exec.Cmd
	ec2simDone chan struct{}
	http       *http.Client

	stopReconcile context.CancelFunc
	reconcileWG   sync.WaitGroup
	reconcileMu   sync.Mutex // one reconcile at a time, as a cron lock would
	Reconciles    []ReconcileRun

	statesMu   sync.Mutex
	statesSeen map[string]bool
}

// ReconcileRun is one run of `slurm-ec2 reconcile`.
type ReconcileRun struct {
	At       time.Time
	Took     time.Duration
	ExitCode int
}

// RequireRoot returns a clear error when the harness cannot run on the machine's Slurm.
func RequireRoot() error { return requireRoot("") }

// requireRoot checks the programs the harness needs; Slurm's and munge's inside slurmRoot
// when it is set.
func requireRoot(slurmRoot string) error {
	if os.Geteuid() != 0 {
		return errors.New("the end-to-end harness needs root (network namespaces, a bridge, slurmctld and slurmd as SlurmUser=root): run `sudo make e2e`")
	}
	var missing []string
	for _, p := range []string{"/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/scontrol", "/usr/bin/sbatch"} {
		if _, err := os.Stat(filepath.Join(slurmRoot, p)); err != nil {
			missing = append(missing, filepath.Join(slurmRoot, p))
		}
	}
	for _, p := range []string{"/usr/sbin/munged", "/usr/bin/munge", "/usr/bin/unmunge", "/usr/bin/nsenter", "/usr/bin/unshare", "/usr/bin/flock"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "ip (iproute2)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: apt-get install --no-install-recommends slurmctld slurmd slurm-client munge iproute2 util-linux", strings.Join(missing, ", "))
	}
	return nil
}

// Start cleans up what an earlier run left, then starts munge (if not working), the bridge,
// ec2sim and slurmctld, and waits until Slurm answers.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg.fill()
	if err := cfg.resolveRoot(ctx); err != nil {
		return nil, err
	}
	if err := requireRoot(cfg.SlurmRoot); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, Root: cfg.Root, Etc: filepath.Join(cfg.Root, "etc"), Bin: filepath.Join(cfg.Root, "bin"),
		log:  slog.New(slog.NewTextHandler(cfg.Log, &slog.HandlerOptions{Level: slog.LevelInfo})).With("e2e", "harness"),
		http: &http.Client{Timeout: 10 * time.Second}}
	c.SlurmConf = filepath.Join(c.Etc, "slurm.conf")
	c.EC2URL = fmt.Sprintf("http://%s:%d", cfg.Gateway, cfg.EC2Port)
	c.IMDSURL = fmt.Sprintf("http://%s:%d", cfg.Gateway, cfg.IMDSPort)
	if err := Cleanup(ctx, cfg.Root, cfg.Log); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(cfg.Root, "log")); err != nil {
		return nil, fmt.Errorf("removing the last run's logs: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop(context.WithoutCancel(ctx))
		}
	}()
	for _, d := range []string{"etc", "bin", "hooks", "slurmbin", "state", "spool", "log/instances", "run/netns", "run/locks", "knobs", "jobs"} {
		if err := os.MkdirAll(filepath.Join(cfg.Root, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating the harness directory: %w", err)
		}
	}
	if err := c.install(); err != nil {
		return nil, err
	}
	if err := startMunge(ctx, c.Root); err != nil {
		return nil, err
	}
	if err := c.mountSlurmRoot(ctx); err != nil {
		return nil, err
	}
	if err := c.slurmVersion(ctx); err != nil {
		return nil, err
	}
	if err := c.bridgeUp(ctx); err != nil {
		return nil, err
	}
	if err := c.startEC2Sim(ctx); err != nil {
		return nil, err
	}
	if err := c.writeConfig(ctx); err != nil {
		return nil, err
	}
	// What a BeforeSlurmctld of an earlier scenario left (the directory is shared).
	os.Remove(filepath.Join(c.Etc, "gres.conf"))
	os.RemoveAll(filepath.Join(c.Etc, "node"))
	if cfg.BeforeSlurmctld != nil {
		if err := cfg.BeforeSlurmctld(c); err != nil {
			return nil, err
		}
	}
	if err := c.startSlurmctld(ctx); err != nil {
		return nil, err
	}
	if cfg.ReconcileEvery > 0 {
		c.StartReconcileTimer(cfg.ReconcileEvery)
	}
	ok = true
	return c, nil
}

// install copies the binaries (others may rebuild bin/ while we run) and hooks, and writes
// the programs slurmctld runs.
func (c *Cluster) install() error {
	binDir := c.cfg.BinDir
	if binDir == "" {
		binDir = filepath.Join(c.cfg.RepoDir, "bin")
	}
	for _, b := range []string{"slurm-ec2", "ec2sim"} {
		if err := copyFile(filepath.Join(binDir, b), filepath.Join(c.Bin, b), 0o755); err != nil {
			return fmt.Errorf("%w (run `make build` first)", err)
		}
	}
	for _, h := range []string{"instance-up", "instance-down", "netns-down", "scontrol"} {
		if err := copyFile(filepath.Join(c.cfg.RepoDir, "test/e2e/hooks", h), filepath.Join(c.Root, "hooks", h), 0o755); err != nil {
			return err
		}
	}
	// SlurmBinPath: the crash shim for scontrol, everything else the real thing.
	if err := copyFile(filepath.Join(c.Root, "hooks/scontrol"), filepath.Join(c.Root, "slurmbin/scontrol"), 0o755); err != nil {
		return err
	}
	for _, p := range []string{"sinfo", "squeue", "scancel", "sbatch", "srun", "sacct"} {
		if err := os.Symlink("/usr/bin/"+p, filepath.Join(c.Root, "slurmbin", p)); err != nil {
			return fmt.Errorf("linking %s: %w", p, err)
		}
	}
	// slurmctld gives its programs only SLURM_CONF (no PATH, no credentials): a wrapper per
	// program. It must be root-owned and not group/world writable, or power saving is
	// silently disabled. On AWS the instance role provides credentials: no wrapper needed.
	for _, prog := range []string{"resume", "suspend", "resume-fail"} {
		script := fmt.Sprintf(`#!/bin/sh
# written by the slurm-ec2 e2e harness: slurmctld runs this with only SLURM_CONF set
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export AWS_ACCESS_KEY_ID=e2e-not-a-secret AWS_SECRET_ACCESS_KEY=e2e-not-a-secret
export AWS_ENDPOINT_URL_EC2=%s AWS_EC2_METADATA_DISABLED=true
export SLURM_EC2_CONFIG_DIR=%s E2E_ROOT=%s
# a copy of what slurmctld passed (the file is /proc/<slurmctld>/fd/N, gone once we exit)
if [ -n "${SLURM_RESUME_FILE:-}" ]; then
  mkdir -p "$E2E_ROOT/log/resume-files" && cat "$SLURM_RESUME_FILE" > "$E2E_ROOT/log/resume-files/$$.json" 2>/dev/null
fi
# the nodes as slurmctld left them at ResumeTimeout, before slurm-ec2 acts (newer releases
# show that state for well under a second)
if [ "%s" = resume-fail ]; then
  /usr/bin/scontrol -o show node "$1" >> "$E2E_ROOT/log/node-states-resume-fail.txt" 2>&1
fi
exec %s %s "$@"
`, c.EC2URL, c.Etc, c.Root, prog, filepath.Join(c.Bin, "slurm-ec2"), prog)
		if err := os.WriteFile(filepath.Join(c.Etc, prog), []byte(script), 0o755); err != nil {
			return fmt.Errorf("writing the %s wrapper: %w", prog, err)
		}
		if err := os.Chmod(filepath.Join(c.Etc, prog), 0o755); err != nil { // umask
			return fmt.Errorf("chmod the %s wrapper: %w", prog, err)
		}
	}
	return nil
}

// Env is the environment for slurm-ec2 and Slurm commands run by the harness.
func (c *Cluster) Env() []string {
	return append(os.Environ(),
		"SLURM_CONF="+c.SlurmConf,
		"AWS_ACCESS_KEY_ID=e2e-not-a-secret", "AWS_SECRET_ACCESS_KEY=e2e-not-a-secret",
		"AWS_ENDPOINT_URL_EC2="+c.EC2URL, "AWS_EC2_METADATA_DISABLED=true",
		"SLURM_EC2_CONFIG_DIR="+c.Etc, "E2E_ROOT="+c.Root)
}

func (c *Cluster) bridgeUp(ctx context.Context) error {
	if err := run(ctx, nil, "ip", "link", "show", c.cfg.Bridge); err != nil {
		if err := run(ctx, nil, "ip", "link", "add", c.cfg.Bridge, "type", "bridge"); err != nil {
			return fmt.Errorf("creating bridge %s: %w", c.cfg.Bridge, err)
		}
		if err := os.WriteFile(filepath.Join(c.Root, "run/bridge.created"), []byte(c.cfg.Bridge+"\n"), 0o644); err != nil {
			return err
		}
	}
	if err := run(ctx, nil, "ip", "addr", "replace", fmt.Sprintf("%s/%d", c.cfg.Gateway, c.cfg.PrefixLen), "dev", c.cfg.Bridge); err != nil {
		return fmt.Errorf("addressing bridge %s: %w", c.cfg.Bridge, err)
	}
	return run(ctx, nil, "ip", "link", "set", c.cfg.Bridge, "up")
}

// world is ec2sim's world: the spec's subnets and launch template, on the bridge network.
func (c *Cluster) world() ([]byte, error) {
	net3 := c.cfg.Gateway[:strings.LastIndexByte(c.cfg.Gateway, '.')] // 10.251.0
	base := net3[:strings.LastIndexByte(net3, '.')]                   // 10.251
	w := map[string]any{
		"DefaultCapacity": c.cfg.DefaultCapacity,
		"Regions": map[string]any{"us-east-1": map[string]any{
			"VpcId": "vpc-0e2e0000000000001",
			"AvailabilityZones": []map[string]string{
				{"Name": "us-east-1a", "ZoneId": "use1-az1"}, {"Name": "us-east-1b", "ZoneId": "use1-az2"}},
			"Subnets": []map[string]string{
				{"SubnetId": "subnet-11111111", "AvailabilityZone": "us-east-1a", "CidrBlock": base + ".1.0/24"},
				{"SubnetId": "subnet-22222222", "AvailabilityZone": "us-east-1b", "CidrBlock": base + ".2.0/24"}},
			"LaunchTemplates": []map[string]any{{
				"LaunchTemplateId": "lt-0e2e0000000000001", "LaunchTemplateName": "template-name", "DefaultVersion": 1,
				"Versions": []map[string]string{{"InstanceType": "c5.xlarge", "ImageId": "ami-0e2e0000000000001",
					"InstanceMetadataTags": "enabled", "HttpTokens": "required"}}}},
		}},
		"InstanceTypes": []map[string]any{
			{"InstanceType": "c5.xlarge", "VCpus": 4, "MemoryMiB": 8192, "OnDemandPrice": 0.17, "SpotPrice": 0.068},
			{"InstanceType": "c5.large", "VCpus": 2, "MemoryMiB": 4096, "OnDemandPrice": 0.085, "SpotPrice": 0.034}},
	}
	if len(c.cfg.Capacity) > 0 {
		w["Capacity"] = c.cfg.Capacity
	}
	return json.MarshalIndent(w, "", "  ")
}

func (c *Cluster) startEC2Sim(ctx context.Context) error {
	world, err := c.world()
	if err != nil {
		return err
	}
	worldFile := filepath.Join(c.Etc, "world.json")
	if err := os.WriteFile(worldFile, world, 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(c.Root, "log/ec2sim.log"))
	if err != nil {
		return err
	}
	listen := net.JoinHostPort(c.cfg.Gateway, strconv.Itoa(c.cfg.EC2Port))
	cmd := exec.Command(filepath.Join(c.Bin, "ec2sim"), "-listen", listen,
		"-imds-listen", fmt.Sprintf("%s:%d", c.cfg.Gateway, c.cfg.IMDSPort),
		"-world", worldFile, "-boot-delay", c.cfg.BootDelay.String(),
		"-on-launch", filepath.Join(c.Root, "hooks/instance-up"),
		"-on-terminate", filepath.Join(c.Root, "hooks/instance-down"))
	// The hooks play the compute node: IMDS on, the harness's head-node settings off.
	var env []string
	for _, kv := range c.Env() {
		if !strings.HasPrefix(kv, "AWS_EC2_METADATA_DISABLED=") && !strings.HasPrefix(kv, "SLURM_EC2_CONFIG_DIR=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"E2E_SLURM_ROOT="+c.cfg.SlurmRoot, "E2E_BRIDGE="+c.cfg.Bridge, "E2E_GATEWAY="+c.cfg.Gateway, "E2E_PREFIXLEN="+strconv.Itoa(c.cfg.PrefixLen),
		"E2E_BIN="+c.Bin)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting ec2sim: %w", err)
	}
	c.ec2sim = cmd
	c.ec2simDone = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(c.ec2simDone) }()
	writePid(filepath.Join(c.Root, "run/ec2sim.pid"), cmd.Process.Pid)
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-c.ec2simDone:
			return fmt.Errorf("ec2sim exited at start, see %s: %s", logf.Name(), tail(logf.Name(), 10))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ec2sim did not listen on %s within 15 s, see %s", listen, logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.log.Info("ec2sim up", "pid", cmd.Process.Pid, "url", c.EC2URL, "imds", c.IMDSURL)
	return nil
}

func (c *Cluster) writeConfig(ctx context.Context) error {
	cfgJSON := map[string]any{
		"LogLevel":              "DEBUG",
		"LogFileName":           filepath.Join(c.Root, "log/slurm-ec2.log"),
		"SlurmBinPath":          filepath.Join(c.Root, "slurmbin"),
		"ClusterName":           c.cfg.ClusterName,
		"CoolDownSeconds":       c.cfg.CoolDownSeconds,
		"OrphanGraceSeconds":    c.cfg.OrphanGraceSeconds,
		"CommandTimeoutSeconds": 30,
		"MetricsFile":           filepath.Join(c.Root, "log/metrics.prom"),
		"SlurmConf": orderedConf{
			{"PrivateData", "CLOUD"},
			{"ResumeProgram", filepath.Join(c.Etc, "resume")},
			{"SuspendProgram", filepath.Join(c.Etc, "suspend")},
			{"ResumeRate", 0},
			{"SuspendRate", 0},
			{"ResumeTimeout", c.cfg.ResumeTimeout},
			{"SuspendTime", c.cfg.SuspendTime},
			{"SuspendTimeout", c.cfg.SuspendTimeout},
			{"TreeWidth", 60000},
			{"SlurmctldParameters", "idle_on_node_suspend,power_save_interval=1"},
		},
	}
	for k, v := range c.cfg.ConfigExtra {
		cfgJSON[k] = v
	}
	b, err := json.MarshalIndent(cfgJSON, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Etc, "config.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Etc, "partitions.json"), c.cfg.Partitions, 0o644); err != nil {
		return err
	}
	snippet := filepath.Join(c.Etc, "slurm.conf.aws")
	args := []string{"generate-conf", "-o", snippet}
	if rel := releaseOf(c.SlurmVersion); rel != "" {
		// slurm.conf does not exist yet: `scontrol version` would fail, so say the release.
		args = append(args, "--slurm-version", rel)
	}
	out, err := c.SlurmEC2(ctx, args...)
	if err != nil {
		return fmt.Errorf("slurm-ec2 generate-conf: %w: %s", err, out)
	}
	gen, err := os.ReadFile(snippet)
	if err != nil {
		return fmt.Errorf("generate-conf wrote no %s: %w", snippet, err)
	}
	host, _ := os.Hostname()
	R := c.Root
	base := fmt.Sprintf(`# slurm.conf of the slurm-ec2 e2e harness: base cluster settings, then generate-conf's snippet
ClusterName=%s
# the bridge address: "localhost" inside a node's namespace is the node itself
SlurmctldHost=%s(%s)
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=%d
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# the namespaces have the machine's CPUs, the node groups say CPUs=4
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool/%%n
SlurmctldPidFile=%s/run/slurmctld.pid
SlurmdPidFile=%s/run/slurmd-%%n.pid
SlurmctldLogFile=%s/log/slurmctld.log
SlurmdLogFile=%s/log/slurmd-%%n.log
SlurmctldDebug=verbose
SlurmdDebug=info
DebugFlags=Power
`, c.cfg.ClusterName, host, c.cfg.Gateway, c.cfg.CtldPort, c.cfg.SlurmdPort, c.cfg.CredExpire, R, R, R, R, R, R)
	return os.WriteFile(c.SlurmConf, append([]byte(base), gen...), 0o644)
}

// orderedConf marshals as a JSON object keeping its order (SlurmConf is written in order).
type orderedConf []struct {
	k string
	v any
}

func (o orderedConf) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.k)
		v, err := json.Marshal(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (c *Cluster) startSlurmctld(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(c.Root, "log/slurmctld.stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// -i: ignore state files it cannot read; it daemonizes and writes SlurmctldPidFile.
	cmd := c.inRoot(exec.CommandContext(ctx, "/usr/sbin/slurmctld", "-i", "-f", c.SlurmConf))
	cmd.Dir = c.Root
	cmd.Env = c.Env()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("slurmctld: %w; see %s/log/slurmctld.log: %s", err, c.Root, tail(filepath.Join(c.Root, "log/slurmctld.log"), 10))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.Slurm(ctx, "scontrol", "ping")
		if err == nil && strings.Contains(out, "is UP") {
			appendFile(filepath.Join(c.Root, "log/scontrol-ping.txt"), out)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slurmctld did not answer within 30 s; see %s/log/slurmctld.log: %s", c.Root, tail(filepath.Join(c.Root, "log/slurmctld.log"), 15))
		}
		time.Sleep(300 * time.Millisecond)
	}
	pid, _ := readPid(filepath.Join(c.Root, "run/slurmctld.pid"))
	c.log.Info("slurmctld up", "pid", pid, "conf", c.SlurmConf, "slurm", c.SlurmVersion, "root", c.cfg.SlurmRoot)
	return nil
}

// StartReconcileTimer runs `slurm-ec2 reconcile` every d until Stop or StopReconcileTimer.
func (c *Cluster) StartReconcileTimer(d time.Duration) {
	c.StopReconcileTimer()
	ctx, cancel := context.WithCancel(context.Background())
	c.stopReconcile = cancel
	c.reconcileWG.Add(1)
	go func() {
		defer c.reconcileWG.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.Reconcile(ctx)
			}
		}
	}()
}

// StopReconcileTimer stops the timer and waits for a running reconcile.
func (c *Cluster) StopReconcileTimer() {
	if c.stopReconcile != nil {
		c.stopReconcile()
		c.reconcileWG.Wait()
		c.stopReconcile = nil
	}
}

// Reconcile runs `slurm-ec2 reconcile` once, as the timer does, and returns its exit code
// and output.
func (c *Cluster) Reconcile(ctx context.Context) (int, string) {
	c.reconcileMu.Lock()
	defer c.reconcileMu.Unlock()
	start := time.Now()
	out, err := c.SlurmEC2(ctx, "reconcile")
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	c.Reconciles = append(c.Reconciles, ReconcileRun{At: start, Took: time.Since(start), ExitCode: code})
	appendFile(filepath.Join(c.Root, "log/reconcile.log"), fmt.Sprintf("=== %s exit=%d took=%s\n%s", start.Format("15:04:05.000"), code, time.Since(start).Round(time.Millisecond), out))
	return code, out
}

// SlurmEC2 runs the product binary with the harness environment.
func (c *Cluster) SlurmEC2(ctx context.Context, args ...string) (string, error) {
	cmd := c.inRoot(exec.CommandContext(ctx, filepath.Join(c.Bin, "slurm-ec2"), args...))
	cmd.Env = c.Env()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Slurm runs a Slurm client command against this cluster.
func (c *Cluster) Slurm(ctx context.Context, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := c.inRoot(exec.CommandContext(ctx, "/usr/bin/"+prog, args...))
	cmd.Env = c.Env()
	cmd.Dir = filepath.Join(c.Root, "jobs")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Knob writes a knob file read by the hooks (fail-boot) or the scontrol shim (crash-resume).
func (c *Cluster) Knob(name, value string) error {
	return os.WriteFile(filepath.Join(c.Root, "knobs", name), []byte(value), 0o644)
}

// Stop stops everything Start started, by pid, and removes the namespaces and the bridge.
// Logs stay in Root/log.
func (c *Cluster) Stop(ctx context.Context) {
	c.StopReconcileTimer()
	if err := Cleanup(ctx, c.Root, c.cfg.Log); err != nil {
		c.log.Error("cleanup", "err", err)
	}
	if c.ec2simDone != nil {
		select {
		case <-c.ec2simDone:
		case <-time.After(5 * time.Second):
		}
	}
}

// Cleanup stops what a harness run under root left running, by the pids it recorded:
// slurmctld, every node namespace (slurmd and jobs inside), ec2sim, munged if the harness
// started it, and the bridge if it created it. It keeps the logs.
func Cleanup(ctx context.Context, root string, logw io.Writer) error {
	log := func(format string, args ...any) { fmt.Fprintf(logw, "[e2e cleanup] "+format+"\n", args...) }
	run1 := filepath.Join(root, "run")
	if _, err := os.Stat(run1); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// slurmctld first, so it calls no more programs while nodes go away.
	if stopPidFile(filepath.Join(run1, "slurmctld.pid"), "slurmctld", 20*time.Second) {
		log("stopped slurmctld")
	}
	// ec2sim next, so no hook starts a node while we remove them.
	if pid, err := readPid(filepath.Join(run1, "ec2sim.pid")); err == nil && stopPidFile(filepath.Join(run1, "ec2sim.pid"), "ec2sim", 5*time.Second) {
		// and the hooks it was running (its process group; slurmd daemonized out of it)
		syscall.Kill(-pid, syscall.SIGKILL)
		log("stopped ec2sim")
	}
	entries, _ := os.ReadDir(filepath.Join(run1, "netns"))
	env := append(os.Environ(), "E2E_ROOT="+root)
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "e2e-") || strings.Contains(name, ".") {
			continue
		}
		cmd := exec.CommandContext(ctx, filepath.Join(root, "hooks/netns-down"), name)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			log("netns-down %s: %v: %s", name, err, out)
		}
		n++
	}
	// Namespaces whose hook died before recording them: ours all start with e2e-i-.
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], "e2e-i-") {
				cmd := exec.CommandContext(ctx, filepath.Join(root, "hooks/netns-down"), f[0])
				cmd.Env = env
				cmd.Run()
				n++
			}
		}
	}
	if n > 0 {
		log("removed %d node namespaces", n)
	}
	// Any slurmd left by a node whose namespace is gone (pid files are per node name).
	files, _ := filepath.Glob(filepath.Join(run1, "slurmd-*.pid"))
	for _, f := range files {
		stopPidFile(f, "slurmd", 3*time.Second)
	}
	unmountSlurmRoot(ctx, run1, log)
	if stopPidFile(filepath.Join(run1, "munged.pid"), "munged", 5*time.Second) {
		log("stopped munged (started by the harness)")
	}
	if b, err := os.ReadFile(filepath.Join(run1, "bridge.created")); err == nil {
		br := strings.TrimSpace(string(b))
		if br != "" {
			exec.CommandContext(ctx, "ip", "link", "del", br).Run()
			log("removed bridge %s", br)
		}
		os.Remove(filepath.Join(run1, "bridge.created"))
	}
	// Fresh state for the next run; logs are kept (in a per-run directory by the caller).
	for _, d := range []string{"state", "spool", "run", "knobs", "slurmbin", "jobs"} {
		if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
			return fmt.Errorf("removing %s: %w", filepath.Join(root, d), err)
		}
	}
	return nil
}

// stopPidFile stops the process in pidfile if its executable is the expected one (a
// recycled pid is left alone): SIGTERM, then SIGKILL after wait.
func stopPidFile(pidfile, exe string, wait time.Duration) bool {
	pid, err := readPid(pidfile)
	os.Remove(pidfile)
	if err != nil || pid <= 1 {
		return false
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	// Debian installs slurmctld-wlm and slurmd-wlm behind alternatives symlinks.
	if err != nil || !strings.HasPrefix(filepath.Base(strings.TrimSuffix(link, " (deleted)")), exe) {
		return false
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return true
}

// startMunge starts munged unless a working one answers; it records the pid only when it
// started it, so Cleanup stops only its own.
func startMunge(ctx context.Context, root string) error {
	works := func() bool {
		cred, err := exec.CommandContext(ctx, "munge", "-n").Output()
		if err != nil {
			return false
		}
		cmd := exec.CommandContext(ctx, "unmunge")
		cmd.Stdin = bytes.NewReader(cred)
		return cmd.Run() == nil
	}
	if works() {
		return nil
	}
	if _, err := os.Stat("/etc/munge/munge.key"); err != nil {
		if err := run(ctx, nil, "mungekey", "--create", "--keyfile=/etc/munge/munge.key"); err != nil {
			return fmt.Errorf("creating /etc/munge/munge.key: %w", err)
		}
	}
	for _, d := range []string{"/run/munge", "/var/log/munge", "/var/lib/munge"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"chown", "munge:munge", "/etc/munge", "/etc/munge/munge.key", "/run/munge", "/var/log/munge", "/var/lib/munge"},
		{"chmod", "700", "/etc/munge"}, {"chmod", "400", "/etc/munge/munge.key"},
		{"runuser", "-u", "munge", "--", "/usr/sbin/munged"},
	} {
		if err := run(ctx, nil, args[0], args[1:]...); err != nil {
			return fmt.Errorf("starting munged: %w", err)
		}
	}
	for range 50 {
		if works() {
			pid, err := readPid("/run/munge/munged.pid")
			if err == nil {
				writePid(filepath.Join(root, "run/munged.pid"), pid)
			}
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("munged started but `munge -n | unmunge` fails; see /var/log/munge/munged.log")
}

func run(ctx context.Context, env []string, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func writePid(path string, pid int) {
	os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func appendFile(path, s string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(s)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

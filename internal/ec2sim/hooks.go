package ec2sim

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
)

// HookEnv holds the endpoints hooks are told about.
type HookEnv struct {
	EC2Endpoint  string // EC2SIM_ENDPOINT
	IMDSEndpoint string // EC2SIM_IMDS_ENDPOINT and AWS_EC2_METADATA_SERVICE_ENDPOINT
}

// HookEnviron is the environment a hook runs with: ours plus the instance's EC2SIM_* variables.
func HookEnviron(info InstanceInfo, he HookEnv) []string {
	return append(os.Environ(),
		"EC2SIM_INSTANCE_ID="+info.InstanceID,
		"EC2SIM_PRIVATE_IP="+info.PrivateIP,
		"EC2SIM_SUBNET_ID="+info.SubnetID,
		"EC2SIM_AZ="+info.AvailabilityZone,
		"EC2SIM_REGION="+info.Region,
		"EC2SIM_INSTANCE_TYPE="+info.InstanceType,
		"EC2SIM_LIFECYCLE="+info.Lifecycle,
		"EC2SIM_IMDS_ENDPOINT="+he.IMDSEndpoint,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+he.IMDSEndpoint,
		"EC2SIM_ENDPOINT="+he.EC2Endpoint,
	)
}

// ExecHook runs argv (no shell) for an instance and returns an error carrying the hook's
// stderr when it fails.
func ExecHook(ctx context.Context, argv []string, info InstanceInfo, he HookEnv) error {
	if len(argv) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = HookEnviron(info, he)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hook %s for %s: %w; stderr: %s", argv[0], info.InstanceID, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// HookFunc adapts ExecHook to Options.OnLaunch/OnTerminate; failures are logged. A launch
// hook that fails leaves the instance running (it "did not boot").
func HookFunc(ctx context.Context, log *slog.Logger, kind string, argv []string, he func() HookEnv) func(InstanceInfo) {
	return func(info InstanceInfo) {
		if err := ExecHook(ctx, argv, info, he()); err != nil {
			log.Warn("ec2sim hook failed", "hook", kind, "instance", info.InstanceID, "err", err)
			return
		}
		log.Debug("ec2sim hook ran", "hook", kind, "instance", info.InstanceID)
	}
}

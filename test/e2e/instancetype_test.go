package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// instanceTypePartitions has node groups that give no numbers at all: generate-conf asks
// ec2sim's DescribeInstanceTypes and writes CPUs, the layout, RealMemory, Gres and Features.
//
// The "instances" are network namespaces on this machine, so slurmd reports the machine's
// CPUs and memory, not the instance type's. c5.large (2 vCPUs as 1 core x 2 threads, 4096 MiB,
// so RealMemory=3584) has as many CPUs as the e2e machines and less memory: slurmd's report
// is at least what the generated line says. g5.xlarge says CPUs=4 and one A10G; the harness's
// SlurmdParameters=config_overrides makes Slurm trust the configuration where the machine has
// fewer CPUs, and the generated gres.conf's GPU device is pointed at /dev/null.
const instanceTypePartitions = `{
  "Partitions": [
    {
      "PartitionName": "cpu",
      "NodeGroups": [{
        "NodeGroupName": "c5", "MaxNodes": 2, "Region": "us-east-1", "PurchasingOption": "on-demand",
        "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
        "LaunchTemplateOverrides": [{"InstanceType": "c5.large"}],
        "SubnetIds": ["subnet-11111111"]
      }]
    },
    {
      "PartitionName": "gpu",
      "NodeGroups": [{
        "NodeGroupName": "g5", "MaxNodes": 2, "Region": "us-east-1", "PurchasingOption": "on-demand",
        "LaunchTemplateSpecification": {"LaunchTemplateName": "template-name", "Version": "$Latest"},
        "LaunchTemplateOverrides": [{"InstanceType": "g5.xlarge"}],
        "SubnetIds": ["subnet-11111111"]
      }]
    }
  ]
}`

// startInstanceTypes starts the cluster with instanceTypePartitions and checks the NodeName
// lines generate-conf wrote from ec2sim's DescribeInstanceTypes.
func startInstanceTypes(t *testing.T, before func(*Cluster) error) (*Cluster, context.Context) {
	t.Helper()
	c, ctx := start(t, Config{Partitions: []byte(instanceTypePartitions), BeforeSlurmctld: before})
	conf, err := os.ReadFile(c.SlurmConf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nGresTypes=gpu\n",
		"\nNodeName=cpu-c5-[0-1] State=CLOUD CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=1 ThreadsPerCore=2 RealMemory=3584 Features=c5.large,c5,x86_64\n",
		"\nNodeName=gpu-g5-[0-1] State=CLOUD CPUs=4 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=2 RealMemory=15565 Gres=gpu:a10g:1 Features=g5.xlarge,g5,x86_64,a10g\n",
		"\n# cpu-c5: CPUs, Boards, SocketsPerBoard, CoresPerSocket, ThreadsPerCore, RealMemory, Features from EC2 (DescribeInstanceTypes, us-east-1)",
	} {
		if !strings.Contains(string(conf), want) {
			t.Fatalf("slurm.conf lacks %q:\n%s", strings.TrimSpace(want), conf)
		}
	}
	t.Cleanup(func() { os.Remove(filepath.Join(c.Etc, "gres.conf.aws")) }) // the scenarios share the directory
	return c, ctx
}

// TestInstanceTypeMem: nodes described from c5.large run a --mem job; a job asking for more
// memory than the generated RealMemory is refused at submission.
func TestInstanceTypeMem(t *testing.T) {
	c, ctx := startInstanceTypes(t, nil)
	tm := newTiming(t, 1)
	if id, err := c.Sbatch(ctx, "true", "-p", "cpu", "--mem=4000", outFlag(c)); err == nil {
		t.Errorf("sbatch --mem=4000 on c5.large nodes (RealMemory=3584) accepted as job %s, want refused", id)
	} else if !strings.Contains(err.Error(), "node configuration is not available") && !strings.Contains(err.Error(), "Memory specification can not be satisfied") {
		t.Errorf("sbatch --mem=4000: %v, want Slurm's refusal", err)
	}
	tm.Submit = time.Now()
	memJob, err := c.Sbatch(ctx, "hostname", "-p", "cpu", "--mem=3000", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	mj, at := waitJobState(t, ctx, c, memJob, 60*time.Second, "RUNNING", "COMPLETED")
	tm.Running = at
	_, tm.Done = waitJobState(t, ctx, c, memJob, 60*time.Second, "COMPLETED")
	if out := jobOutput(t, c, memJob); len(out) != 1 || out[0] != mj.NodeList || !strings.HasPrefix(mj.NodeList, "cpu-c5-") {
		t.Errorf("--mem job printed %v on %s, want a cpu-c5 node's name", out, mj.NodeList)
	}
	out, err := c.Slurm(ctx, "scontrol", "-o", "show", "node", mj.NodeList)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"RealMemory=3584", "CPUTot=2", "AvailableFeatures=c5.large,c5,x86_64"} {
		if !strings.Contains(out, w) {
			t.Errorf("node %s lacks %s: %s", mj.NodeList, w, out)
		}
	}
	if strings.Contains(out, "DRAIN") {
		t.Errorf("node %s drained: %s", mj.NodeList, out)
	}
	tm.Terminated = waitAllDown(t, ctx, c, time.Duration(15+10+30)*time.Second)
}

// TestInstanceTypeGPU: a --gres=gpu:1 job runs on a node described from g5.xlarge and sees
// its GPU.
//
// Slurm 22.05 loads gres.conf for CLOUD nodes in slurmctld, once, when slurmctld starts
// (read_config.c, _gres_reconfig: "Load in GRES for node now"; `scontrol reconfigure` does not
// do it again). A cloud node is allocated to its first job before its slurmd ever registers,
// so the count slurmctld found at start is the one the job is counted against. If gres.conf
// was not there when slurmctld started, it counted 0 GPUs, and the node's registration with 1
// is refused: "gres/gpu: Count changed on node gpu-g5-0 (0 != 1)", node INVAL ("count changed
// and jobs are using them"). So the controller's gres.conf is in place before slurmctld
// starts (BeforeSlurmctld), exactly as generate-conf wrote it: slurmctld counts File=
// /dev/nvidia0 without opening it.
//
// Stand-in device: the "instances" are network namespaces on a machine with no GPU, so the
// compute node's own gres.conf (its configuration directory, knob node-conf) points the
// device at /dev/null instead of /dev/nvidia0, which does not exist here. slurmd ignores a
// gpu line with a Count and no File (22.05, slurmd -G), so a device file it can see is needed.
// Everything else, the slurm.conf line and the controller's gres.conf, is the product's.
func TestInstanceTypeGPU(t *testing.T) {
	const gpuLine = "NodeName=gpu-g5-[0-1] Name=gpu Type=a10g File=/dev/nvidia0\n"
	c, ctx := startInstanceTypes(t, func(c *Cluster) error {
		gres, err := os.ReadFile(filepath.Join(c.Etc, "gres.conf.aws"))
		if err != nil {
			return fmt.Errorf("generate-conf wrote no gres.conf.aws: %w", err)
		}
		if !strings.Contains(string(gres), gpuLine) {
			return fmt.Errorf("gres.conf.aws lacks %q:\n%s", gpuLine, gres)
		}
		// The controller: the generated gres.conf as is, beside slurm.conf.
		if err := os.WriteFile(filepath.Join(c.Etc, "gres.conf"), gres, 0o644); err != nil {
			return err
		}
		// The compute node: the same slurm.conf, the stand-in device in its gres.conf.
		node := filepath.Join(c.Etc, "node")
		if err := os.MkdirAll(node, 0o755); err != nil {
			return err
		}
		conf, err := os.ReadFile(c.SlurmConf)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(node, "slurm.conf"), conf, 0o644); err != nil {
			return err
		}
		nodeGres := strings.Replace(string(gres), "File=/dev/nvidia0", "File=/dev/null", 1)
		if err := os.WriteFile(filepath.Join(node, "gres.conf"), []byte(nodeGres), 0o644); err != nil {
			return err
		}
		return c.Knob("node-conf", filepath.Join(node, "slurm.conf"))
	})
	t.Cleanup(func() { // the scenarios share the directory
		os.Remove(filepath.Join(c.Etc, "gres.conf"))
		os.RemoveAll(filepath.Join(c.Etc, "node"))
	})
	tm := newTiming(t, 1)
	tm.Submit = time.Now()
	gpuJob, err := c.Sbatch(ctx, `echo "$(hostname) gpus=${SLURM_JOB_GPUS:-none} cuda=${CUDA_VISIBLE_DEVICES:-none}"`, "-p", "gpu", "--gres=gpu:1", outFlag(c))
	if err != nil {
		t.Fatal(err)
	}
	gj, at := waitJobState(t, ctx, c, gpuJob, 60*time.Second, "RUNNING", "COMPLETED")
	tm.Running = at
	_, tm.Done = waitJobState(t, ctx, c, gpuJob, 60*time.Second, "COMPLETED")
	out := strings.Join(jobOutput(t, c, gpuJob), " ")
	t.Logf("--gres=gpu:1 job %s on %s printed %q", gpuJob, gj.NodeList, out)
	if want := gj.NodeList + " gpus=0 cuda=0"; !strings.HasPrefix(gj.NodeList, "gpu-g5-") || out != want {
		t.Errorf("--gres=gpu:1 job printed %q, want %q (a gpu-g5 node, GPU 0 in SLURM_JOB_GPUS and CUDA_VISIBLE_DEVICES)", out, want)
	}
	node, err := c.Slurm(ctx, "scontrol", "-o", "show", "node", gj.NodeList)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"RealMemory=15565", "CPUTot=4", "Gres=gpu:a10g:1", "AvailableFeatures=g5.xlarge,g5,x86_64,a10g"} {
		if !strings.Contains(node, w) {
			t.Errorf("node %s lacks %s: %s", gj.NodeList, w, node)
		}
	}
	for _, bad := range []string{"INVAL", "DRAIN", "DOWN"} {
		if strings.Contains(node, bad) {
			t.Errorf("node %s is %s: %s", gj.NodeList, bad, node)
		}
	}
	tm.Terminated = waitAllDown(t, ctx, c, time.Duration(15+10+30)*time.Second)
}

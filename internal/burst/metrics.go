package burst

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
)

// observe records the counts of nodes by Slurm state and instances by lifecycle for metrics.
func (s *ReconcileSummary) observe(v *inventory.View) {
	s.NodeStates = map[string]int{}
	s.InstanceCounts = map[string]int{}
	for _, n := range v.Nodes() {
		switch {
		case n.IsDown():
			s.NodeStates["down"]++
		case n.PoweredDown():
			s.NodeStates["powered_down"]++
		case n.PoweringUp():
			s.NodeStates["powering_up"]++
		case n.PoweringDown():
			s.NodeStates["powering_down"]++
		default:
			s.NodeStates[strings.ToLower(n.State)]++
		}
	}
	for _, in := range v.Instances() {
		s.InstanceCounts[in.Lifecycle+"/"+in.State]++
	}
}

// WriteMetrics writes the run's figures in the Prometheus node-exporter textfile format,
// atomically (temp file + rename) so the exporter never reads half a file.
func WriteMetrics(path string, s *ReconcileSummary, now time.Time) error {
	var b strings.Builder
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	sorted := func(m map[string]int) []string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}
	gauge("slurm_ec2_nodes", "Cloud nodes of this cluster by Slurm state, at the last reconcile.")
	for _, k := range sorted(s.NodeStates) {
		fmt.Fprintf(&b, "slurm_ec2_nodes{state=%q} %d\n", k, s.NodeStates[k])
	}
	gauge("slurm_ec2_instances", "EC2 instances with this cluster's tag by lifecycle and state.")
	for _, k := range sorted(s.InstanceCounts) {
		lc, st, _ := strings.Cut(k, "/")
		fmt.Fprintf(&b, "slurm_ec2_instances{lifecycle=%q,state=%q} %d\n", lc, st, s.InstanceCounts[k])
	}
	gauge("slurm_ec2_instance_health", "Live instances of this cluster with a pending scheduled event or a failed status check, at the last reconcile.")
	for _, k := range []string{"scheduled_event", "impaired"} {
		fmt.Fprintf(&b, "slurm_ec2_instance_health{problem=%q} %d\n", k, s.Health[k])
	}
	gauge("slurm_ec2_reconcile_actions", "Actions taken by the last reconcile, by kind and rule.")
	for _, k := range sorted(s.Actions) {
		kind, rule, _ := strings.Cut(k, "/")
		fmt.Fprintf(&b, "slurm_ec2_reconcile_actions{kind=%q,rule=%q} %d\n", kind, rule, s.Actions[k])
	}
	gauge("slurm_ec2_ec2_errors", "EC2 errors seen by the last reconcile, by error code.")
	for _, k := range sorted(s.EC2Errors) {
		fmt.Fprintf(&b, "slurm_ec2_ec2_errors{code=%q} %d\n", k, s.EC2Errors[k])
	}
	gauge("slurm_ec2_ec2_unreachable", "EC2 clients (region, profile) the last reconcile could not read; their node groups were skipped.")
	for _, k := range sorted(s.Unreachable) {
		region, profile, _ := strings.Cut(k, "/")
		fmt.Fprintf(&b, "slurm_ec2_ec2_unreachable{region=%q,profile=%q} %d\n", region, profile, s.Unreachable[k])
	}
	writeBackOffMetrics(&b, s.BackOff, now)
	gauge("slurm_ec2_reconcile_duration_seconds", "Wall time of the last reconcile.")
	fmt.Fprintf(&b, "slurm_ec2_reconcile_duration_seconds %.3f\n", s.Duration.Seconds())
	gauge("slurm_ec2_reconcile_last_run_timestamp_seconds", "When the last reconcile finished (Unix time).")
	fmt.Fprintf(&b, "slurm_ec2_reconcile_last_run_timestamp_seconds %d\n", now.Unix())

	tmp, err := os.CreateTemp(filepath.Dir(path), ".slurm-ec2-metrics-*")
	if err != nil {
		return fmt.Errorf("writing metrics to %s (MetricsFile): %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing metrics to %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing metrics to %s: %w", path, err)
	}
	return nil
}

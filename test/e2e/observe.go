package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Instance is an instance as ec2sim's admin API reports it.
type Instance struct {
	InstanceID       string            `json:"InstanceId"`
	InstanceType     string            `json:"InstanceType"`
	AvailabilityZone string            `json:"AvailabilityZone"`
	SubnetID         string            `json:"SubnetId"`
	PrivateIP        string            `json:"PrivateIpAddress"`
	Lifecycle        string            `json:"Lifecycle"`
	State            string            `json:"State"`
	StateReason      string            `json:"StateReason"`
	LaunchTime       time.Time         `json:"LaunchTime"`
	Tags             map[string]string `json:"Tags"`
}

// Live reports whether the instance is pending or running.
func (i Instance) Live() bool { return i.State == "pending" || i.State == "running" }

// admin calls ec2sim's JSON admin API.
func (c *Cluster) admin(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.EC2URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ec2sim admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("ec2sim admin %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ec2sim admin %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("ec2sim admin %s %s: decoding %q: %w", method, path, b, err)
		}
	}
	return nil
}

// Instances lists every instance ec2sim knows (terminated ones while retained).
func (c *Cluster) Instances(ctx context.Context) ([]Instance, error) {
	var out []Instance
	err := c.admin(ctx, http.MethodGet, "/ec2sim/instances", nil, &out)
	return out, err
}

// SetCapacity sets the capacity of one pool.
func (c *Cluster) SetCapacity(ctx context.Context, p Pool) error {
	return c.admin(ctx, http.MethodPost, "/ec2sim/capacity", p, nil)
}

// SpotInterrupt interrupts spot instances after notice.
func (c *Cluster) SpotInterrupt(ctx context.Context, notice time.Duration, ids ...string) error {
	n := notice.String()
	return c.admin(ctx, http.MethodPost, "/ec2sim/spot-interrupt", map[string]any{"InstanceIds": ids, "Notice": n}, nil)
}

// Counters returns ec2sim's per-action call counters (raw JSON objects).
func (c *Cluster) Counters(ctx context.Context) (map[string]map[string]any, error) {
	var out map[string]map[string]any
	err := c.admin(ctx, http.MethodGet, "/ec2sim/counters", nil, &out)
	return out, err
}

// Node is a Slurm node as `scontrol -o show node` reports it.
type Node struct {
	Name, Addr, Hostname string
	State                string   // e.g. IDLE+CLOUD+POWERED_DOWN
	Base                 string   // IDLE, ALLOCATED, MIXED, DOWN, ...
	Flags                []string // CLOUD, POWERED_DOWN, POWERING_UP, NOT_RESPONDING, ...
	Reason               string
}

// Has reports whether the node's state has flag (or base state) f.
func (n Node) Has(f string) bool { return n.Base == f || slices.Contains(n.Flags, f) }

// PoweredUp reports whether Slurm thinks the node has (or is getting) an instance.
func (n Node) PoweredUp() bool { return !n.Has("POWERED_DOWN") && !n.Has("POWERING_DOWN") }

// ParseNodes parses `scontrol -o show node` output: one node per line of Key=Value fields,
// where Reason= runs to the end of the line's known fields (it may contain spaces).
func ParseNodes(out string) []Node {
	var nodes []Node
	for _, line := range strings.Split(out, "\n") {
		// Reason= is the last field of a node record and is free text ("x=y" included).
		reason := ""
		if i := strings.Index(line, " Reason="); i >= 0 {
			line, reason = line[:i], strings.TrimSpace(line[i+len(" Reason="):])
		}
		kv := parseKV(line)
		name, ok := kv["NodeName"]
		if !ok || name == "" || strings.Contains(name, " ") {
			continue
		}
		n := Node{Name: name, Addr: kv["NodeAddr"], Hostname: kv["NodeHostName"], State: kv["State"], Reason: reason}
		parts := strings.Split(n.State, "+")
		n.Base = strings.TrimRight(parts[0], "*~#%!$@^-")
		n.Flags = parts[1:]
		nodes = append(nodes, n)
	}
	return nodes
}

// parseKV splits a one-line `scontrol -o show` record. A value may contain spaces (Reason,
// Comment, OS): a token without "=" belongs to the previous value.
func parseKV(line string) map[string]string {
	kv := map[string]string{}
	last := ""
	for _, tok := range strings.Fields(line) {
		k, v, ok := strings.Cut(tok, "=")
		if !ok || k == "" || strings.ContainsAny(k, "[]()") {
			if last != "" {
				kv[last] += " " + tok
			}
			continue
		}
		kv[k] = v
		last = k
	}
	return kv
}

// Nodes lists the cluster's nodes.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	out, err := c.Slurm(ctx, "scontrol", "-o", "show", "node")
	if err != nil {
		return nil, err
	}
	c.recordStates(out)
	return ParseNodes(out), nil
}

// recordStates appends to log/node-states.txt the first line seen of each distinct
// State + Reason (without Slurm's "[user@time]" suffix): the real strings of this release,
// from which internal/slurm/testdata is refreshed.
func (c *Cluster) recordStates(out string) {
	c.statesMu.Lock()
	defer c.statesMu.Unlock()
	if c.statesSeen == nil {
		c.statesSeen = map[string]bool{}
	}
	var add strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "NodeName=") {
			continue
		}
		reason := ""
		head := line
		if i := strings.Index(line, " Reason="); i >= 0 {
			head, reason = line[:i], line[i:]
			if j := strings.LastIndex(reason, " ["); j >= 0 {
				reason = reason[:j]
			}
		}
		key := parseKV(head)["State"] + "|" + reason
		if !c.statesSeen[key] {
			c.statesSeen[key] = true
			add.WriteString(line + "\n")
		}
	}
	if add.Len() > 0 {
		appendFile(filepath.Join(c.Root, "log/node-states.txt"), add.String())
	}
}

// Job is a Slurm job as `scontrol -o show job` reports it.
type Job struct {
	ID, State, Reason, NodeList, StdOut string
	Restarts                            int
}

// ParseJob parses one `scontrol -o show job ID` line.
func ParseJob(out string) (Job, bool) {
	for _, line := range strings.Split(out, "\n") {
		kv := parseKV(line)
		id, ok := kv["JobId"]
		if !ok {
			continue
		}
		j := Job{ID: id, State: kv["JobState"], Reason: kv["Reason"], NodeList: kv["NodeList"], StdOut: kv["StdOut"]}
		fmt.Sscanf(kv["Restarts"], "%d", &j.Restarts)
		return j, true
	}
	return Job{}, false
}

// Job returns the job's current record.
func (c *Cluster) Job(ctx context.Context, id string) (Job, error) {
	out, err := c.Slurm(ctx, "scontrol", "-o", "show", "job", id)
	if err != nil {
		return Job{}, err
	}
	j, ok := ParseJob(out)
	if !ok {
		return Job{}, fmt.Errorf("scontrol show job %s: no JobId in %q", id, out)
	}
	return j, nil
}

// Sbatch submits a job script and returns its id.
func (c *Cluster) Sbatch(ctx context.Context, script string, args ...string) (string, error) {
	a := append([]string{"--parsable"}, args...)
	a = append(a, "--wrap", script)
	out, err := c.Slurm(ctx, "sbatch", a...)
	if err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	return id, nil
}

// Hostnames expands a hostlist expression with scontrol.
func (c *Cluster) Hostnames(ctx context.Context, hostlist string) ([]string, error) {
	if hostlist == "" || hostlist == "(null)" {
		return nil, nil
	}
	out, err := c.Slurm(ctx, "scontrol", "show", "hostnames", hostlist)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

package burst

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
	"github.com/slurm-ec2/slurm-ec2/internal/inventory"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
)

// StatusRow is one line of `slurm-ec2 status`.
type StatusRow struct {
	Node       string    `json:"node"`
	SlurmState string    `json:"slurm_state"`
	Reason     string    `json:"reason,omitempty"`
	Instance   string    `json:"instance,omitempty"`
	Type       string    `json:"type,omitempty"`
	AZ         string    `json:"az,omitempty"`
	Lifecycle  string    `json:"lifecycle,omitempty"`
	PrivateIP  string    `json:"private_ip,omitempty"`
	State      string    `json:"instance_state,omitempty"`
	LaunchTime time.Time `json:"launch_time,omitzero"`
	Problem    string    `json:"problem,omitempty"`
}

// Status is the joined view for people and scripts.
type Status struct {
	Rows   []StatusRow    `json:"rows"`
	Totals map[string]int `json:"totals"`
	// Unreachable is the EC2 clients ("region" or "region/profile") that could not be read, with
	// why: their groups' instances are not in Rows.
	Unreachable map[string]string `json:"unreachable,omitempty"`
	// NodeGroups is each node group's failed launches or boots in a row, back-off and hold.
	NodeGroups []GroupBackOff `json:"node_groups"`
}

// Problems shown for instances.
const (
	problemOrphan        = "orphan"
	problemNotConfigured = "group not configured"
)

// GetStatus joins both views: one row per node that is not simply powered down, and one per
// instance no node of a configured group has. With allRegions, every region EC2 lists is looked
// at. An unreachable (region, profile) is listed in Unreachable and returned as the error, with
// the status of everything else.
func GetStatus(ctx context.Context, d *Deps, allRegions bool) (*Status, error) {
	v, err := inventory.Load(ctx, d.sources(), inventory.ClusterScope(d.Config, allRegions))
	if err != nil {
		return nil, err
	}
	now := d.now()
	cool := time.Duration(d.Config.CoolDownSeconds) * time.Second
	st := &Status{Totals: map[string]int{}}
	for k, kerr := range v.Failed() {
		if st.Unreachable == nil {
			st.Unreachable = map[string]string{}
		}
		st.Unreachable[k.String()] = firstLine(kerr.Error())
	}
	st.Totals["nodes"] = len(v.Nodes())
	health, hfailed := d.readHealth(ctx, v)
	for k, herr := range hfailed {
		d.log().Warn("could not read instance health", "region", k.Region, "profile", k.Profile, "err", herr)
	}
	grace := time.Duration(d.Config.HealthCheckGraceSeconds) * time.Second
	withHealth := func(problem string, in inventory.Listed) string {
		h, ok := health[in.ID]
		if !ok {
			return problem
		}
		hp := healthProblem(h, in.LaunchTime, now.Add(v.Skew(in.Key)), grace)
		st.Totals["health_problems"]++
		if problem == "" {
			return hp
		}
		return problem + "; " + hp
	}
	st.NodeGroups = backOffState(d.Config, nodesOf(v), d.backOffPolicy())
	shown := map[string]bool{}
	for _, n := range v.Nodes() {
		insts := v.Of(n.Name)
		if n.PoweredDown() && !n.IsDown() && len(insts) == 0 && !n.Has("DRAIN") {
			st.Totals["powered_down"]++
			continue
		}
		problem := nodeProblem(n, v, now, cool)
		if len(insts) == 0 {
			st.Rows = append(st.Rows, StatusRow{Node: n.Name, SlurmState: stateString(n), Reason: n.Reason, Problem: problem})
		}
		for _, in := range insts {
			shown[in.ID] = true
			p := problem
			if v.Unconfigured(in.Instance) {
				p = problemNotConfigured
			}
			st.Rows = append(st.Rows, row(n.Name, stateString(n), n.Reason, in.Instance, withHealth(p, in)))
		}
	}
	unclaimed := map[string]bool{}
	for _, in := range v.Unclaimed() {
		unclaimed[in.ID] = true
	}
	for _, in := range v.Live() {
		if shown[in.ID] {
			continue
		}
		switch {
		case v.Unconfigured(in.Instance):
			// Rule 9: kept while Slurm has its node powered up, an orphan after that.
			state := "-"
			if n := v.Node(v.NodeOf(in.ID)); n != nil {
				state = stateString(n)
			}
			st.Rows = append(st.Rows, row(in.Node(), state, "", in.Instance, problemNotConfigured))
		case unclaimed[in.ID]:
			st.Rows = append(st.Rows, row(in.Node(), "-", "", in.Instance, problemOrphan))
		}
	}
	for _, in := range v.Live() {
		st.Totals["instances_"+in.Lifecycle]++
		st.Totals["instances"]++
	}
	for _, r := range st.Rows {
		if r.Problem != "" {
			st.Totals["problems"]++
		}
	}
	st.Totals["unreachable"] = len(st.Unreachable)
	slices.SortStableFunc(st.Rows, func(a, b StatusRow) int { return strings.Compare(a.Node, b.Node) })
	return st, v.Err()
}

func row(node, state, reason string, in fleet.Instance, problem string) StatusRow {
	return StatusRow{Node: node, SlurmState: state, Reason: reason, Instance: in.ID, Type: in.Type, AZ: in.AZ,
		Lifecycle: in.Lifecycle, PrivateIP: in.PrivateIP, State: in.State, LaunchTime: in.LaunchTime, Problem: problem}
}

func stateString(n *slurm.Node) string {
	return strings.Join(append([]string{n.State}, n.Flags...), "+")
}

// nodeProblem names what is wrong with a node, "" when nothing is.
func nodeProblem(n *slurm.Node, v *inventory.View, now time.Time, cool time.Duration) string {
	p := ParseReason(n.Reason)
	claims := v.Claims(n.Name)
	if r, ok := parseBackOffReason(n.Reason); ok && n.IsDown() {
		if r.Held() {
			return "held"
		}
		return "back-off"
	}
	switch {
	case v.Unknown(n.Name):
		return "EC2 unreachable"
	case n.IsDown() && p.IsCapacity():
		if rule, done := downRule(n, p, now, cool); !done && rule == RuleCoolDownEnd {
			return "cool-down"
		}
		return "cool-down over"
	case n.IsDown() && (p.Ours || strings.HasPrefix(n.Reason, resumeTimeoutReason)):
		return "failed resume"
	case n.IsDown():
		return "down"
	case v.IsGone(n.Name):
		return "missing instance"
	case len(claims) > 1:
		return "duplicate"
	case !inventory.PoweredUp(n) && len(v.Of(n.Name)) > 0:
		return "instance of powered-down node"
	}
	return ""
}

// WriteTable prints the status as a table with totals at the bottom.
func (s *Status) WriteTable(w io.Writer, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSLURM STATE\tINSTANCE\tTYPE\tAZ\tLIFECYCLE\tPRIVATE IP\tAGE\tPROBLEM")
	for _, r := range s.Rows {
		age := "-"
		if !r.LaunchTime.IsZero() {
			age = now.Sub(r.LaunchTime).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.Node), r.SlurmState, dash(r.Instance), dash(r.Type),
			dash(r.AZ), dash(r.Lifecycle), dash(r.PrivateIP), age, dash(r.Problem))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "\n%d nodes (%d powered down, %d shown), %d live instances (%d on-demand, %d spot), %d problems\n",
		s.Totals["nodes"], s.Totals["powered_down"], len(s.Rows), s.Totals["instances"],
		s.Totals["instances_on-demand"], s.Totals["instances_spot"], s.Totals["problems"]); err != nil {
		return err
	}
	if err := writeBackOffTable(w, s.NodeGroups, now); err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(s.Unreachable))
	for _, k := range keys {
		if _, err := fmt.Fprintf(w, "EC2 %s unreachable (its node groups are not shown): %s\n", k, s.Unreachable[k]); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints the status as JSON.
func (s *Status) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

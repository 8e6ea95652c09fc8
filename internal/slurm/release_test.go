package slurm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The releases whose real output is recorded in testdata (see testdata/README.md): every
// distinct node State + Reason `scontrol -o show nodes` printed during the end-to-end
// scenarios (make e2e SLURM_VERSION=...), a SLURM_RESUME_FILE and `scontrol ping`.
var releases = []string{"22.05", "24.11", "26.05"}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (recorded by the e2e scenarios: see testdata/README.md)", err)
	}
	return b
}

// rawField is an independent, naive reading of one field of a `scontrol -o show node` line,
// to cross-check ParseNodes on real lines: the value after " Key=" up to the next space.
func rawField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Fields(v)[0]
		}
		return ""
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

// TestRecordedStatesParse: on every recorded line of every release, ParseNodes agrees with
// the naive reading (name, state and flags, address, reason) and knows every flag.
func TestRecordedStatesParse(t *testing.T) {
	known := []string{"CLOUD", "POWERED_DOWN", "POWERING_UP", "POWERING_DOWN", "POWER_DOWN", "POWER_UP",
		"NOT_RESPONDING", "DRAIN", "COMPLETING", "REBOOT_REQUESTED", "PLANNED", "RESERVED", "MAINTENANCE",
		"INVALID_REG", "DYNAMIC_NORM", "DYNAMIC_FUTURE", "FAIL"}
	for _, rel := range releases {
		t.Run(rel, func(t *testing.T) {
			in := readTestdata(t, "scontrol-"+rel+"-states.txt")
			nodes, notFound, err := ParseNodes(in)
			if err != nil || len(notFound) > 0 {
				t.Fatalf("ParseNodes: %v (not found %v)", err, notFound)
			}
			lines := strings.Split(strings.TrimSpace(string(in)), "\n")
			if len(nodes) != len(lines) {
				t.Fatalf("%d nodes from %d lines", len(nodes), len(lines))
			}
			for i, line := range lines {
				n := nodes[i]
				state := rawField(line, "State")
				wantBase, wantFlags, _ := strings.Cut(state, "+")
				var flags []string
				if wantFlags != "" {
					flags = strings.Split(wantFlags, "+")
				}
				if n.Name != rawField(line, "NodeName") || n.State != wantBase || !slices.Equal(n.Flags, flags) || n.Addr != rawField(line, "NodeAddr") {
					t.Errorf("line %d: parsed %s %s %v %s; the line says %s %s %s", i+1, n.Name, n.State, n.Flags, n.Addr,
						rawField(line, "NodeName"), state, rawField(line, "NodeAddr"))
				}
				for _, f := range n.Flags {
					if !slices.Contains(known, f) {
						t.Errorf("line %d: flag %s of %s is new: teach node.go what it means", i+1, f, state)
					}
				}
				if r, ok := strings.CutPrefix(line[strings.Index(line+" Reason=", " Reason="):], " Reason="); ok {
					if j := strings.LastIndex(r, " ["); j >= 0 {
						r = r[:j]
					}
					if n.Reason != strings.TrimSpace(r) {
						t.Errorf("line %d: reason %q, the line says %q", i+1, n.Reason, r)
					}
				} else if n.Reason != "" {
					t.Errorf("line %d: reason %q from a line without one", i+1, n.Reason)
				}
			}
		})
	}
}

// TestRecordedPowerSaveCycle: each release's recording holds every state of slurm-ec2's
// power-save cycle, and the predicates slurm-ec2 decides with read each one right.
func TestRecordedPowerSaveCycle(t *testing.T) {
	cloud := func(n Node) bool { return n.Has("CLOUD") }
	// pick: which recorded node shows the state; ok: what slurm-ec2 must read from it.
	cycle := []struct {
		what     string
		pick, ok func(Node) bool
		skip     string // release that does not show this state long enough to record it
	}{
		{"powered down (idle~)",
			func(n Node) bool { return cloud(n) && n.State == "IDLE" && n.PoweredDown() && len(n.Flags) == 2 },
			func(n Node) bool { return !n.PoweringUp() && !n.PoweringDown() && !n.IsDown() }, ""},
		{"powering up for a job (alloc#/mix#)",
			func(n Node) bool {
				return cloud(n) && n.Has("POWERING_UP") && (n.State == "ALLOCATED" || n.State == "MIXED")
			},
			func(n Node) bool { return n.PoweringUp() && !n.PoweredDown() && !n.Responding() }, ""},
		{"powered up and running a job",
			func(n Node) bool {
				return cloud(n) && (n.State == "ALLOCATED" || n.State == "MIXED") && len(n.Flags) == 1
			},
			func(n Node) bool { return !n.PoweringUp() && !n.PoweredDown() && !n.PoweringDown() && n.Responding() }, ""},
		{"powering down (idle%)",
			func(n Node) bool { return cloud(n) && n.Has("POWERING_DOWN") },
			func(n Node) bool { return n.PoweringDown() && !n.PoweringUp() }, ""},
		{"DOWN after ResumeTimeout, resume-fail's reason",
			func(n Node) bool { return cloud(n) && n.IsDown() && n.PoweredDown() },
			func(n Node) bool { return n.IsDown() && n.PoweredDown() && n.Reason != "" }, ""},
		{"taken out after a spot interruption, slurm-ec2's reason",
			func(n Node) bool {
				return cloud(n) && (strings.Contains(n.Reason, "spot interruption") || strings.Contains(n.Reason, "SpotInstanceTermination"))
			},
			// out of service, or on its way back to power saving (idle_on_node_suspend keeps the reason)
			func(n Node) bool { return n.Drained() || n.IsDown() || n.PoweringDown() || n.PoweredDown() },
			// 22.05 clears the reason when it powers the node down, within the sampling second
			"22.05"},
		{"asked to power down (POWER_DOWN)",
			func(n Node) bool { return cloud(n) && n.Has("POWER_DOWN") },
			func(n Node) bool { return n.PoweringDown() && !n.PoweringUp() }, ""},
	}
	for _, rel := range releases {
		t.Run(rel, func(t *testing.T) { checkCycle(t, rel, cycle) })
	}
}

func checkCycle(t *testing.T, rel string, cycle []struct {
	what     string
	pick, ok func(Node) bool
	skip     string
}) {
	nodes, _, err := ParseNodes(readTestdata(t, "scontrol-"+rel+"-states.txt"))
	if err != nil {
		t.Fatal(err)
	}
	{
		for _, w := range cycle {
			t.Run(w.what, func(t *testing.T) {
				if w.skip == rel {
					t.Skipf("Slurm %s shows this state for less than the recording's sampling second", rel)
				}
				found := 0
				for _, n := range nodes {
					if !w.pick(n) {
						continue
					}
					found++
					if !w.ok(n) {
						t.Errorf("%s %s %v reason %q: read wrong", n.Name, n.State, n.Flags, n.Reason)
					}
				}
				if found == 0 {
					t.Errorf("no recorded node of Slurm %s shows this state", rel)
				}
			})
		}
	}
}

func TestRecordedPing(t *testing.T) {
	for _, rel := range releases {
		t.Run(rel, func(t *testing.T) {
			cs := ParsePing(readTestdata(t, "ping-"+rel+"-up.txt"))
			if len(cs) != 1 || cs[0].Role != "primary" || !cs[0].Up || cs[0].Host == "" {
				t.Errorf("ParsePing = %+v, want one primary controller, up", cs)
			}
		})
	}
}

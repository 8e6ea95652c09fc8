package burst

import (
	"testing"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/fleet"
)

func TestReasonsRoundTrip(t *testing.T) {
	until := time.Date(2026, 11, 27, 4, 5, 0, 0, time.UTC)
	tests := map[string]struct {
		reason string
		want   ParsedReason
		cap    bool
	}{
		"capacity": {
			reason: capacityReason(fleet.LaunchError{Code: "InsufficientInstanceCapacity", InstanceType: "c5.xlarge", AZ: "us-east-1a"}),
			want:   ParsedReason{Ours: true, Code: "InsufficientInstanceCapacity"},
			cap:    true,
		},
		"capacity by subnet": {
			reason: capacityReason(fleet.LaunchError{Code: "InsufficientInstanceCapacity", InstanceType: "c5.xlarge", SubnetID: "subnet-1"}),
			want:   ParsedReason{Ours: true, Code: "InsufficientInstanceCapacity"},
			cap:    true,
		},
		"cool-down copy": {
			reason: coolDownReason("InsufficientInstanceCapacity", until),
			want:   ParsedReason{Ours: true, Code: "InsufficientInstanceCapacity", CoolDown: true, Until: until},
			cap:    true,
		},
		"throttled is not capacity": {
			reason: reasonPrefix + "RequestLimitExceeded CreateFleet",
			want:   ParsedReason{Ours: true, Code: "RequestLimitExceeded"},
		},
		"Slurm's own": {reason: "ResumeTimeout reached", want: ParsedReason{}},
		"empty":       {reason: "", want: ParsedReason{}},
		"lookalike":   {reason: "slurm-ec2 InsufficientInstanceCapacity", want: ParsedReason{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ParseReason(tc.reason)
			if got != tc.want {
				t.Fatalf("ParseReason(%q) = %+v, want %+v", tc.reason, got, tc.want)
			}
			if got.IsCapacity() != tc.cap {
				t.Fatalf("IsCapacity(%q) = %v, want %v", tc.reason, got.IsCapacity(), tc.cap)
			}
		})
	}
	if r := capacityReason(fleet.LaunchError{Code: "InsufficientInstanceCapacity", InstanceType: "c5.xlarge", AZ: "us-east-1a"}); r != "slurm-ec2: InsufficientInstanceCapacity c5.xlarge us-east-1a" {
		t.Fatalf("capacity reason = %q", r)
	}
}

func FuzzParseReason(f *testing.F) {
	f.Add("slurm-ec2: InsufficientInstanceCapacity c5.xlarge us-east-1a")
	f.Add("slurm-ec2: cool-down after InsufficientInstanceCapacity until 2026-11-27T04:05:00Z")
	f.Add("ResumeTimeout reached")
	f.Fuzz(func(t *testing.T, s string) {
		p := ParseReason(s)
		if p.CoolDown && !p.Ours {
			t.Fatalf("cool-down without ours: %q", s)
		}
	})
}

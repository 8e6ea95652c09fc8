package ec2sim

import (
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/imds"
)

// IMDSSource lets imds.NewHandler serve the Sim's instances. Terminated instances have no
// metadata service.
func (s *Sim) IMDSSource() imds.Source { return imdsSource{s} }

type imdsSource struct{ s *Sim }

func (m imdsSource) ByInstanceID(id string) (imds.Metadata, bool) {
	info, ok := m.s.Instance(id)
	if !ok || info.State == StateTerminated {
		return imds.Metadata{}, false
	}
	return m.s.metadata(info), true
}

func (m imdsSource) ByPrivateIP(ip string) (imds.Metadata, bool) {
	info, ok := m.s.InstanceByPrivateIP(ip)
	if !ok {
		return imds.Metadata{}, false
	}
	return m.s.metadata(info), true
}

func (s *Sim) metadata(info InstanceInfo) imds.Metadata {
	md := imds.Metadata{InstanceID: info.InstanceID, InstanceType: info.InstanceType, ImageID: info.ImageID,
		LocalIPv4: info.PrivateIP, LocalHostname: info.PrivateDNSName, AvailabilityZone: info.AvailabilityZone,
		Region: info.Region, Lifecycle: info.Lifecycle, TagsEnabled: info.MetadataTags, AccountID: s.opts.AccountID,
		LaunchTime: info.LaunchTime, Tags: map[string]string{}}
	for k, v := range info.Tags {
		if !strings.HasPrefix(k, "aws:") {
			md.Tags[k] = v
		}
	}
	for _, e := range info.Events {
		ev := imds.ScheduledEvent{Code: e.Code, Description: e.Description, EventID: e.InstanceEventID, State: "active", NotBefore: e.NotBefore}
		if e.Completed {
			ev.State = "completed"
		}
		if e.NotAfter != nil {
			ev.NotAfter = *e.NotAfter
		}
		md.Events = append(md.Events, ev)
	}
	if info.SpotActionTime != nil {
		md.SpotAction = &imds.SpotAction{Action: "terminate", Time: *info.SpotActionTime}
	}
	return md
}

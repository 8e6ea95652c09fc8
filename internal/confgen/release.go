package confgen

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

// Release is a Slurm major release ("24.11"). The zero Release is unknown: the snippet is
// then written for the oldest release slurm-ec2 supports (22.05).
type Release struct{ Major, Minor int }

func (r Release) String() string {
	if r.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%02d.%02d", r.Major, r.Minor)
}

// IsZero reports whether the release is unknown.
func (r Release) IsZero() bool { return r == Release{} }

// Before reports whether r is a known release older than o.
func (r Release) Before(o Release) bool {
	return !r.IsZero() && (r.Major < o.Major || r.Major == o.Major && r.Minor < o.Minor)
}

var releaseRE = regexp.MustCompile(`(?:^|[\s-])(\d{2})\.(\d{2})(?:\.\d+)?(?:[-.\w]*)?\s*$`)

// ParseRelease reads "24.11", "24.11.5", or what `scontrol version` and `slurmctld -V`
// print ("slurm 24.11.5", "slurm-wlm 24.11.5").
func ParseRelease(s string) (Release, error) {
	m := releaseRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Release{}, fmt.Errorf("%q is not a Slurm release: want YY.MM such as 24.11 (or `scontrol version` output)", s)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 17 || minor < 1 || minor > 12 {
		return Release{}, fmt.Errorf("%q is not a Slurm release: want YY.MM such as 24.11", s)
	}
	return Release{Major: major, Minor: minor}, nil
}

// noAddrCacheDefunct is the first release known to reject CommunicationParameters=NoAddrCache:
// Debian's 24.11.5 and 26.05.5 slurmctld log at start, for that line,
//
//	error: The CommunicationParameters option "NoAddrCache" is defunct, please remove it from slurm.conf.
//
// (observed in test/e2e; 22.05.8 accepts it and documents it in slurm.conf(5), the 24.11
// slurm.conf(5) no longer lists it). Releases 23.02-24.05 were not tried; they get the line.
var noAddrCacheDefunct = Release{Major: 24, Minor: 11}

// communicationParameters is the CommunicationParameters value for rel, "" for none.
func communicationParameters(rel Release) string {
	if rel.Before(noAddrCacheDefunct) || rel.IsZero() {
		return defaultCommunicationParameters
	}
	return ""
}

// Choices says, one line each, what the snippet for rel holds because of the release, for
// generate-conf to print; a SlurmConf setting the release rejects is named with its fix.
func Choices(cfg *config.Config, rel Release) []string {
	var out []string
	if v, given := config.Lookup(cfg.SlurmConf, "CommunicationParameters"); given {
		if !rel.Before(noAddrCacheDefunct) && !rel.IsZero() && strings.Contains(strings.ToLower(v), "noaddrcache") {
			out = append(out, fmt.Sprintf("%s: SlurmConf gives CommunicationParameters=%s, but Slurm %s logs \"NoAddrCache\" as defunct: remove it from SlurmConf", cfg.ConfigFile, v, rel))
		}
		return out
	}
	switch {
	case rel.IsZero():
		out = append(out, "Slurm release unknown: wrote CommunicationParameters=NoAddrCache (needed by 22.05 for cloud node addresses; Slurm 24.11 and later log it as defunct: pass --slurm-version)")
	case communicationParameters(rel) != "":
		out = append(out, fmt.Sprintf("Slurm %s: wrote CommunicationParameters=NoAddrCache (cloud node addresses change at every resume)", rel))
	default:
		out = append(out, fmt.Sprintf("Slurm %s: left out CommunicationParameters=NoAddrCache (defunct since %s: slurmctld logs an error for it)", rel, noAddrCacheDefunct))
	}
	return out
}

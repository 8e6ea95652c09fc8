package confgen

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
)

func TestParseRelease(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    Release
		wantErr bool
	}{
		"flag":                   {in: "24.11", want: Release{24, 11}},
		"patch":                  {in: "26.05.5", want: Release{26, 5}},
		"scontrol version 22.05": {in: "slurm 22.05.8\n", want: Release{22, 5}},
		"slurmctld -V debian":    {in: "slurm-wlm 24.11.5\n", want: Release{24, 11}},
		"rc suffix":              {in: "slurm 25.05.0-0rc1", want: Release{25, 5}},
		"empty":                  {in: "", wantErr: true},
		"words":                  {in: "latest", wantErr: true},
		"month 13":               {in: "24.13", wantErr: true},
		"ancient":                {in: "2.4", wantErr: true},
		"error text":             {in: "scontrol: fatal: Could not establish a configuration source", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseRelease(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseRelease(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseRelease(f *testing.F) {
	for _, s := range []string{"24.11", "slurm 22.05.8", "slurm-wlm 26.05.5\n", "", "99.99.99", "1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelease(s)
		if err != nil {
			if !r.IsZero() {
				t.Fatalf("error %v with a release %v", err, r)
			}
			return
		}
		back, err := ParseRelease(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, r, r.String(), back, err)
		}
	})
}

// TestWriteRelease: CommunicationParameters=NoAddrCache is written for 22.05 (and an unknown
// release, as before) and left out for the releases whose slurmctld logs it as defunct;
// nothing else in the snippet depends on the release.
func TestWriteRelease(t *testing.T) {
	cfg := load(t, filepath.Join(specDir, "config.json"), filepath.Join(specDir, "partitions-example1.json"))
	var base bytes.Buffer
	if err := Write(&base, cfg, nil, Release{}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		rel        Release
		noAddr     bool
		choiceHave string
	}{
		"unknown": {Release{}, true, "release unknown"},
		"22.05":   {Release{22, 5}, true, "Slurm 22.05: wrote CommunicationParameters=NoAddrCache"},
		"24.05":   {Release{24, 5}, true, "Slurm 24.05: wrote"},
		"24.11":   {Release{24, 11}, false, "Slurm 24.11: left out CommunicationParameters=NoAddrCache"},
		"26.05":   {Release{26, 5}, false, "Slurm 26.05: left out"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, cfg, nil, tc.rel); err != nil {
				t.Fatal(err)
			}
			has := strings.Contains(b.String(), "\nCommunicationParameters=NoAddrCache\n")
			if has != tc.noAddr {
				t.Errorf("NoAddrCache written = %v, want %v:\n%s", has, tc.noAddr, b.String())
			}
			without := strings.Replace(base.String(), "CommunicationParameters=NoAddrCache\n", "", 1)
			if !tc.noAddr && b.String() != without {
				t.Errorf("snippet for %v differs from the 22.05 one by more than NoAddrCache:\n%s", tc.rel, b.String())
			}
			choices := strings.Join(Choices(cfg, tc.rel), "\n")
			if !strings.Contains(choices, tc.choiceHave) {
				t.Errorf("Choices = %q, want it to say %q", choices, tc.choiceHave)
			}
		})
	}
}

// A NoAddrCache the administrator put in SlurmConf is written as given, with a fix to make.
func TestChoicesUserNoAddrCache(t *testing.T) {
	cfg := load(t, filepath.Join(specDir, "config.json"), filepath.Join(specDir, "partitions-example1.json"))
	cfg.SlurmConf = append(cfg.SlurmConf, config.KV{Key: "CommunicationParameters", Value: "NoAddrCache"})
	if got := strings.Join(Choices(cfg, Release{24, 11}), "\n"); !strings.Contains(got, "remove it from SlurmConf") {
		t.Errorf("Choices for 24.11 with SlurmConf NoAddrCache = %q, want the fix named", got)
	}
	if got := Choices(cfg, Release{22, 5}); len(got) != 0 {
		t.Errorf("Choices for 22.05 with SlurmConf CommunicationParameters = %q, want nothing to say", got)
	}
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/slurm-ec2/slurm-ec2/internal/config"
	"github.com/slurm-ec2/slurm-ec2/internal/hostlist"
)

// names100k is 100,000 node names in 4 groups with gaps (every 7th node missing), so the
// compressed form has many ranges.
func names100k() []string {
	var out []string
	for _, g := range []string{"aws-east1", "aws-east2", "aws-west1", "aws-west2"} {
		for i := 0; len(out) < 100000 && i < 30000; i++ {
			if i%7 != 3 {
				out = append(out, fmt.Sprintf("%s-%d", g, i))
			}
		}
	}
	if len(out) != 100000 {
		panic(fmt.Sprintf("names100k made %d names", len(out)))
	}
	return out
}

func BenchmarkHostlistCompress100k(b *testing.B) {
	names := names100k()
	b.ReportAllocs()
	for b.Loop() {
		_ = hostlist.Compress(names)
	}
}

func BenchmarkHostlistExpand100k(b *testing.B) {
	names := names100k()
	expr := hostlist.Compress(names)
	got, err := hostlist.Expand(expr)
	if err != nil {
		b.Fatal(err)
	}
	if !slices.Equal(got, names) {
		b.Fatalf("Expand(Compress(names)) gives %d names, want the %d given", len(got), len(names))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := hostlist.Expand(expr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfigLoad loads the benchmark cluster's config.json and partitions.json (4 node
// groups, 10,000 nodes), as every slurm-ec2 run does at start.
func BenchmarkConfigLoad(b *testing.B) {
	e := &env{work: b.TempDir()}
	e.configDir, e.slurmBin = filepath.Join(e.work, "etc"), filepath.Join(e.work, "bin")
	if err := os.MkdirAll(e.configDir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := e.writeConfig(); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(e.configDir)
	if err != nil {
		b.Fatalf("loading the benchmark config: %v", err)
	}
	if _, _, ok := cfg.LookupNode("aws-west2-2499"); !ok {
		b.Fatal("aws-west2-2499 is not a node of the benchmark config")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := config.Load(e.configDir); err != nil {
			b.Fatal(err)
		}
	}
}

// Command mkpkg builds the slurm-ec2 .deb and .rpm with nFPM (github.com/goreleaser/nfpm/v2):
// the static binary, the links Slurm runs, the systemd units, the lock directory's tmpfiles.d
// entry, the example configuration (as configuration files the package manager keeps) and the
// docs. Every file is owned by root and stamped with $SOURCE_DATE_EPOCH, so output is
// reproducible.
//
//	mkpkg -format deb -arch amd64 -version 1.2.3 -binary dist/slurm-ec2-linux-amd64 -o dist/slurm-ec2_1.2.3_amd64.deb
//	mkpkg -format rpm -arch arm64 -version 1.2.3 -binary dist/slurm-ec2-linux-arm64 -o dist/slurm-ec2-1.2.3-1.aarch64.rpm
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// SlurmPrograms are the names Slurm runs; each is a symlink to the one binary (argv[0] dispatch).
var SlurmPrograms = []string{"resume", "suspend", "resume-fail", "change-state"}

// versionRE accepts what both formats take: a leading digit, then letters, digits and . + ~.
// A '-' is turned into '.' for rpm (it separates version from release there).
var versionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// Options are the flags.
type Options struct {
	Format, Arch, Version, Binary, Root, Out string
	MTime                                    time.Time
}

// packageInfo describes the package for nFPM; sources are read from opts.Root at build time.
func packageInfo(o Options) (*nfpm.Info, error) {
	if o.Format != "deb" && o.Format != "rpm" {
		return nil, fmt.Errorf("-format %q: use deb or rpm", o.Format)
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return nil, fmt.Errorf("-arch %q: use amd64 or arm64", o.Arch)
	}
	v := strings.TrimPrefix(o.Version, "v")
	if !versionRE.MatchString(v) {
		return nil, fmt.Errorf("version %q must start with a digit: use e.g. 0.1.0 or 0.0~git20260101", o.Version)
	}
	if o.Format == "rpm" {
		v = strings.ReplaceAll(v, "-", ".")
	}
	src := func(rel string) string { return filepath.Join(o.Root, rel) }
	owned := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: o.MTime}
	}
	contents := files.Contents{
		{Source: o.Binary, Destination: "/usr/bin/slurm-ec2", FileInfo: owned(0o755)},
	}
	for _, name := range SlurmPrograms {
		// Relative within /usr (Debian policy 10.5); resolves to /usr/bin/slurm-ec2.
		contents = append(contents, &files.Content{Source: "../../bin/slurm-ec2", Destination: "/usr/lib/slurm-ec2/" + name,
			Type: files.TypeSymlink, FileInfo: owned(0o777)})
	}
	for _, f := range []struct{ src, dst, typ string }{
		{"deploy/systemd/slurm-ec2-reconcile.service", "/usr/lib/systemd/system/slurm-ec2-reconcile.service", ""},
		{"deploy/systemd/slurm-ec2-reconcile.timer", "/usr/lib/systemd/system/slurm-ec2-reconcile.timer", ""},
		{"deploy/systemd/slurm-ec2-sweep.service", "/usr/lib/systemd/system/slurm-ec2-sweep.service", ""},
		{"deploy/systemd/slurm-ec2-sweep.timer", "/usr/lib/systemd/system/slurm-ec2-sweep.timer", ""},
		{"deploy/systemd/slurmd.service.d/slurm-ec2.conf", "/usr/share/slurm-ec2/slurmd.service.d/slurm-ec2.conf", ""},
		{"deploy/packaging/tmpfiles.conf", "/usr/lib/tmpfiles.d/slurm-ec2.conf", ""},
		{"deploy/examples/config.json", "/usr/share/doc/slurm-ec2/examples/config.json", ""},
		{"deploy/examples/partitions.json", "/usr/share/doc/slurm-ec2/examples/partitions.json", ""},
		{"deploy/cloudformation/head-node.json", "/usr/share/doc/slurm-ec2/examples/head-node.json", ""},
		{"docs/deploy.md", "/usr/share/doc/slurm-ec2/deploy.md", ""},
		{"docs/configuration.md", "/usr/share/doc/slurm-ec2/configuration.md", ""},
		// Kept on upgrade when the admin changed them (dpkg conffiles, rpm %config(noreplace)).
		{"deploy/examples/config.json", "/etc/slurm-ec2/config.json", files.TypeConfigNoReplace},
		{"deploy/examples/partitions.json", "/etc/slurm-ec2/partitions.json", files.TypeConfigNoReplace},
	} {
		contents = append(contents, &files.Content{Source: src(f.src), Destination: f.dst, Type: f.typ, FileInfo: owned(0o644)})
	}
	// The configuration directory: root's, 0755, as slurm-ec2's trust check requires.
	contents = append(contents, &files.Content{Destination: "/etc/slurm-ec2", Type: files.TypeDir, FileInfo: owned(0o755)})
	info := &nfpm.Info{
		Name: "slurm-ec2", Arch: o.Arch, Platform: "linux", Version: v, VersionSchema: "none", Release: "1",
		Section: "admin", Priority: "optional",
		Maintainer: "slurm-ec2 maintainers <slurm-ec2@localhost>",
		Homepage:   "https://github.com/slurm-ec2/slurm-ec2",
		License:    "Apache-2.0",
		Description: "Slurm power saving programs that burst a cluster into Amazon EC2\n" +
			"One static binary acting as Slurm's ResumeProgram, SuspendProgram and\n" +
			"ResumeFailProgram, a reconcile loop run by a systemd timer, and the\n" +
			"compute node helper that starts slurmd under its EC2 Name tag.",
		MTime: o.MTime,
		Overridables: nfpm.Overridables{
			Recommends: []string{"slurm-client"},
			Contents:   contents,
			Umask:      0o022,
			Scripts: nfpm.Scripts{
				PostInstall: src("deploy/packaging/postinstall.sh"),
				PostRemove:  src("deploy/packaging/postremove.sh"),
			},
			RPM: nfpm.RPM{Summary: "Slurm power saving programs that burst a cluster into Amazon EC2", Group: "System Environment/Base",
				BuildHost: "slurm-ec2"},
		},
	}
	if o.Format == "deb" {
		info.Release = "" // the Debian version is the whole string
	}
	return info, nil
}

// build writes the package to w.
func build(o Options, w io.Writer) error {
	info, err := packageInfo(o)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return fmt.Errorf("reading the binary (run the build first): %w", err)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, o.Format); err != nil {
		return fmt.Errorf("preparing the %s: %w", o.Format, err)
	}
	p, err := nfpm.Get(o.Format)
	if err != nil {
		return err
	}
	if err := p.Package(info, w); err != nil {
		return fmt.Errorf("building the %s: %w", o.Format, err)
	}
	return nil
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkpkg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.Format, "format", "deb", "package format: deb or rpm")
	fs.StringVar(&o.Arch, "arch", "", "architecture: amd64 or arm64")
	fs.StringVar(&o.Version, "version", "", "package version (a leading v is dropped)")
	fs.StringVar(&o.Binary, "binary", "", "the linux slurm-ec2 binary for -arch")
	fs.StringVar(&o.Root, "root", ".", "repository root (deploy/ and docs/ are read from it)")
	fs.StringVar(&o.Out, "o", "", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Arch == "" || o.Version == "" || o.Binary == "" || o.Out == "" {
		fs.Usage()
		return errors.New("-arch, -version, -binary and -o are required")
	}
	o.MTime = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number: %w", s, err)
		}
		o.MTime = time.Unix(n, 0).UTC()
	}
	var buf bytes.Buffer
	if err := build(o, &buf); err != nil {
		return err
	}
	if err := os.WriteFile(o.Out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the package: %w", err)
	}
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mkpkg:", err)
		}
		os.Exit(2)
	}
}

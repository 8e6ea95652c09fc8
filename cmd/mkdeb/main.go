// Command mkdeb builds the slurm-ec2 Debian package without dpkg: an ar archive holding
// debian-binary, control.tar.gz and data.tar.gz (deb(5)). Output is reproducible: every
// timestamp is -mtime (default $SOURCE_DATE_EPOCH, else 0) and every file is owned by root.
//
//	mkdeb -arch amd64 -version 1.2.3 -binary dist/slurm-ec2-linux-amd64 -o dist/slurm-ec2_1.2.3_amd64.deb
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// entry is one path of the installed package.
type entry struct {
	Path     string // absolute, e.g. /usr/bin/slurm-ec2
	Mode     int64  // permission bits
	Data     []byte // file contents (nil for symlinks)
	Link     string // symlink target, if a symlink
	Conffile bool
}

// Package describes a .deb to build.
type Package struct {
	Name, Version, Arch, Maintainer, Description, Homepage string
	Recommends                                             string
	Entries                                                []entry
	Postinst, Postrm                                       string
	MTime                                                  time.Time
}

var (
	versionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)
	archRE    = regexp.MustCompile(`^[a-z0-9]+$`)
)

// Build returns the .deb bytes.
func (p *Package) Build() ([]byte, error) {
	if !versionRE.MatchString(p.Version) {
		return nil, fmt.Errorf("version %q is not a Debian version (must start with a digit): use e.g. 0.1.0 or 0.0~git20260101", p.Version)
	}
	if !archRE.MatchString(p.Arch) {
		return nil, fmt.Errorf("bad architecture %q", p.Arch)
	}
	sort.Slice(p.Entries, func(i, j int) bool { return p.Entries[i].Path < p.Entries[j].Path })
	data, size, err := p.dataTar()
	if err != nil {
		return nil, err
	}
	control, err := p.controlTar(size)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", control}, {"data.tar.gz", data}} {
		if err := writeArMember(&out, m.name, m.data, p.MTime); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// writeArMember writes one member of a common (System V/GNU) ar archive: a 60-byte header of
// space-padded ASCII fields, the data, and a newline pad to an even offset.
func writeArMember(w *bytes.Buffer, name string, data []byte, mtime time.Time) error {
	if len(name) > 15 {
		return fmt.Errorf("ar member name %q longer than 15 bytes", name)
	}
	hdr := fmt.Sprintf("%-16s%-12d%-6d%-6d%-8s%-10d`\n", name+"/", mtime.Unix(), 0, 0, "100644", len(data))
	if len(hdr) != 60 {
		return fmt.Errorf("ar header for %s is %d bytes, want 60", name, len(hdr))
	}
	w.WriteString(hdr)
	w.Write(data)
	if len(data)%2 == 1 {
		w.WriteByte('\n')
	}
	return nil
}

type tarWriter struct {
	buf  bytes.Buffer
	gz   *gzip.Writer
	tw   *tar.Writer
	dirs map[string]bool
	mt   time.Time
}

func newTar(mt time.Time) *tarWriter {
	t := &tarWriter{dirs: map[string]bool{}, mt: mt}
	t.gz, _ = gzip.NewWriterLevel(&t.buf, gzip.BestCompression)
	t.gz.ModTime = mt
	t.tw = tar.NewWriter(t.gz)
	return t
}

func (t *tarWriter) header(name string, typ byte, mode, size int64, link string) error {
	return t.tw.WriteHeader(&tar.Header{
		Name: name, Typeflag: typ, Mode: mode, Size: size, Linkname: link,
		ModTime: t.mt, Uname: "root", Gname: "root", Format: tar.FormatGNU,
	})
}

// mkdirAll adds ./a/, ./a/b/, ... once each, parents first.
func (t *tarWriter) mkdirAll(dir string) error {
	if dir == "/" || dir == "." || t.dirs[dir] {
		return nil
	}
	if err := t.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	t.dirs[dir] = true
	return t.header("."+dir+"/", tar.TypeDir, 0o755, 0, "")
}

func (t *tarWriter) file(name string, mode int64, data []byte) error {
	if err := t.header(name, tar.TypeReg, mode, int64(len(data)), ""); err != nil {
		return err
	}
	_, err := t.tw.Write(data)
	return err
}

func (t *tarWriter) close() ([]byte, error) {
	if err := t.tw.Close(); err != nil {
		return nil, err
	}
	if err := t.gz.Close(); err != nil {
		return nil, err
	}
	return t.buf.Bytes(), nil
}

func (p *Package) dataTar() ([]byte, int64, error) {
	t := newTar(p.MTime)
	if err := t.header("./", tar.TypeDir, 0o755, 0, ""); err != nil {
		return nil, 0, err
	}
	var size int64
	for _, e := range p.Entries {
		if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path {
			return nil, 0, fmt.Errorf("package path %q must be absolute and clean", e.Path)
		}
		if err := t.mkdirAll(path.Dir(e.Path)); err != nil {
			return nil, 0, err
		}
		var err error
		if e.Link != "" {
			err = t.header("."+e.Path, tar.TypeSymlink, 0o777, 0, e.Link)
		} else {
			err = t.file("."+e.Path, e.Mode, e.Data)
			size += int64(len(e.Data))
		}
		if err != nil {
			return nil, 0, fmt.Errorf("adding %s: %w", e.Path, err)
		}
	}
	b, err := t.close()
	return b, size, err
}

// ctlFile is one member of control.tar.gz.
type ctlFile struct {
	name string
	mode int64
	data string
}

func (p *Package) controlTar(dataSize int64) ([]byte, error) {
	var c strings.Builder
	fmt.Fprintf(&c, "Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: %s\n", p.Name, p.Version, p.Arch, p.Maintainer)
	fmt.Fprintf(&c, "Installed-Size: %d\nSection: admin\nPriority: optional\n", (dataSize+1023)/1024)
	if p.Recommends != "" {
		fmt.Fprintf(&c, "Recommends: %s\n", p.Recommends)
	}
	if p.Homepage != "" {
		fmt.Fprintf(&c, "Homepage: %s\n", p.Homepage)
	}
	summary, rest, _ := strings.Cut(strings.TrimSpace(p.Description), "\n")
	fmt.Fprintf(&c, "Description: %s\n", summary)
	for _, l := range strings.Split(rest, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			if rest != "" {
				c.WriteString(" .\n")
			}
			continue
		}
		fmt.Fprintf(&c, " %s\n", l)
	}
	var conffiles, md5sums strings.Builder
	for _, e := range p.Entries {
		if e.Conffile {
			fmt.Fprintln(&conffiles, e.Path)
		}
		if e.Link == "" {
			fmt.Fprintf(&md5sums, "%x  %s\n", md5.Sum(e.Data), strings.TrimPrefix(e.Path, "/"))
		}
	}
	t := newTar(p.MTime)
	if err := t.header("./", tar.TypeDir, 0o755, 0, ""); err != nil {
		return nil, err
	}
	files := []ctlFile{{"control", 0o644, c.String()}, {"md5sums", 0o644, md5sums.String()}}
	if conffiles.Len() > 0 {
		files = append(files, ctlFile{"conffiles", 0o644, conffiles.String()})
	}
	if p.Postinst != "" {
		files = append(files, ctlFile{"postinst", 0o755, p.Postinst})
	}
	if p.Postrm != "" {
		files = append(files, ctlFile{"postrm", 0o755, p.Postrm})
	}
	for _, f := range files {
		if err := t.file("./"+f.name, f.mode, []byte(f.data)); err != nil {
			return nil, err
		}
	}
	return t.close()
}

const postinst = `#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
`

const postrm = `#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
`

// slurmPrograms are the names Slurm runs; each is a symlink to the one binary (argv[0] dispatch).
var slurmPrograms = []string{"resume", "suspend", "resume-fail", "change-state"}

// slurmEC2Package assembles the package from the repository at root and the binary.
func slurmEC2Package(root, binary, version, arch string, mtime time.Time) (*Package, error) {
	read := func(rel string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return nil, fmt.Errorf("reading package input: %w", err)
		}
		return b, nil
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary (run the build first): %w", err)
	}
	p := &Package{
		Name: "slurm-ec2", Version: version, Arch: arch, MTime: mtime,
		Maintainer: "slurm-ec2 maintainers <slurm-ec2@localhost>",
		Homepage:   "https://github.com/slurm-ec2/slurm-ec2",
		Recommends: "slurm-client",
		Description: "Slurm power saving programs that burst a cluster into Amazon EC2\n" +
			"One static binary acting as Slurm's ResumeProgram, SuspendProgram and\n" +
			"ResumeFailProgram, a reconcile loop run by a systemd timer, and the\n" +
			"compute node helper that starts slurmd under its EC2 Name tag.",
		Postinst: postinst, Postrm: postrm,
		Entries: []entry{{Path: "/usr/bin/slurm-ec2", Mode: 0o755, Data: bin}},
	}
	for _, name := range slurmPrograms {
		// Relative, as Debian policy 10.5 asks within /usr; it resolves to /usr/bin/slurm-ec2.
		p.Entries = append(p.Entries, entry{Path: "/usr/lib/slurm-ec2/" + name, Link: "../../bin/slurm-ec2"})
	}
	files := []struct {
		src, dst string
		conf     bool
	}{
		{"deploy/systemd/slurm-ec2-reconcile.service", "/usr/lib/systemd/system/slurm-ec2-reconcile.service", false},
		{"deploy/systemd/slurm-ec2-reconcile.timer", "/usr/lib/systemd/system/slurm-ec2-reconcile.timer", false},
		{"deploy/systemd/slurm-ec2-sweep.service", "/usr/lib/systemd/system/slurm-ec2-sweep.service", false},
		{"deploy/systemd/slurm-ec2-sweep.timer", "/usr/lib/systemd/system/slurm-ec2-sweep.timer", false},
		{"deploy/systemd/slurmd.service.d/slurm-ec2.conf", "/usr/share/slurm-ec2/slurmd.service.d/slurm-ec2.conf", false},
		{"deploy/examples/config.json", "/usr/share/doc/slurm-ec2/examples/config.json", false},
		{"deploy/examples/partitions.json", "/usr/share/doc/slurm-ec2/examples/partitions.json", false},
		{"deploy/cloudformation/head-node.json", "/usr/share/doc/slurm-ec2/examples/head-node.json", false},
		{"docs/deploy.md", "/usr/share/doc/slurm-ec2/deploy.md", false},
		{"deploy/examples/config.json", "/etc/slurm-ec2/config.json", true},
		{"deploy/examples/partitions.json", "/etc/slurm-ec2/partitions.json", true},
	}
	for _, f := range files {
		b, err := read(f.src)
		if err != nil {
			return nil, err
		}
		p.Entries = append(p.Entries, entry{Path: f.dst, Mode: 0o644, Data: b, Conffile: f.conf})
	}
	return p, nil
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	arch := fs.String("arch", "", "Debian architecture: amd64 or arm64")
	version := fs.String("version", "", "package version (a leading v is dropped)")
	binary := fs.String("binary", "", "the linux slurm-ec2 binary for -arch")
	root := fs.String("root", ".", "repository root (deploy/ and docs/ are read from it)")
	out := fs.String("o", "", "output .deb (default slurm-ec2_VERSION_ARCH.deb)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *arch == "" || *version == "" || *binary == "" {
		fs.Usage()
		return errors.New("-arch, -version and -binary are required")
	}
	v := strings.TrimPrefix(*version, "v")
	if !versionRE.MatchString(v) {
		return fmt.Errorf("version %q is not a Debian version (must start with a digit): use e.g. 0.1.0 or 0.0~git20260101", *version)
	}
	mtime := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number: %w", s, err)
		}
		mtime = time.Unix(n, 0).UTC()
	}
	p, err := slurmEC2Package(*root, *binary, v, *arch, mtime)
	if err != nil {
		return err
	}
	deb, err := p.Build()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = fmt.Sprintf("slurm-ec2_%s_%s.deb", v, *arch)
	}
	if err := os.WriteFile(*out, deb, 0o644); err != nil {
		return fmt.Errorf("writing the package: %w", err)
	}
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mkdeb:", err)
		}
		os.Exit(2)
	}
}

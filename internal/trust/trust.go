// Package trust decides whether a file or directory may be believed by a program that runs as
// root or SlurmUser, the way sshd's StrictModes does: the path and every directory above it
// must be owned by root or by the user running us and must not be writable by its group or by
// others. A sticky directory writable by others (/tmp, /run/lock) is accepted on the way, since
// nobody can rename or replace what another user owns in it; the entry below it must then be
// ours. Files are opened with O_NOFOLLOW and what was opened is checked with fstat, so a
// symlink or hard link planted where a log or lock file goes leads nowhere.
package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Untrusted is a path another user could have written. Fix is a command that makes it safe.
type Untrusted struct {
	Path   string // the path at fault (the file itself or a directory above it)
	Of     string // the path that was checked, when Path is one of its directories
	Reason string // e.g. "owned by nobody (uid 65534)"
	Fix    string // e.g. "chown root /etc/slurm-ec2"
}

func (e *Untrusted) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Of != "" && e.Of != e.Path {
		fmt.Fprintf(&b, " (above %s)", e.Of)
	}
	fmt.Fprintf(&b, " is %s, so another user could change what slurm-ec2 reads, runs or writes", e.Reason)
	if e.Fix != "" {
		fmt.Fprintf(&b, ": run '%s'", e.Fix)
	}
	return b.String()
}

// ExitCode makes an untrusted path a configuration error: exit status 2.
func (e *Untrusted) ExitCode() int { return 2 }

// Checker holds the one user besides root whose files are trusted: the user running us.
type Checker struct{ UID int }

// Self trusts root and the effective user of this process.
func Self() Checker { return Checker{UID: os.Geteuid()} }

func (c Checker) owner(uid int) bool { return uid == 0 || uid == c.UID }

// File checks a file that is read or executed: a regular file, owned by root or us, not
// writable by group or others, and every directory above it (through symlinks, both the
// directories that hold the links and those of the file they lead to) trusted too.
func (c Checker) File(path string) error {
	return c.check(path, false)
}

// Dir checks a directory that files are created in, and every directory above it. A sticky
// directory writable by others is accepted: the files in it must then be checked when opened
// (OpenFile does that).
func (c Checker) Dir(path string) error {
	return c.check(path, true)
}

func (c Checker) check(path string, wantDir bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	// The directories of the path as written hold any symlinks on the way: check them (and
	// the links themselves), then the path the links lead to.
	if err := c.lexical(abs); err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	switch {
	case wantDir && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case !wantDir && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := c.entry(real, abs, fi, wantDir); err != nil {
		return err
	}
	for d := filepath.Dir(real); ; d = filepath.Dir(d) {
		di, err := os.Stat(d)
		if err != nil {
			return err
		}
		if err := c.entry(d, abs, di, true); err != nil {
			return err
		}
		if d == "/" || d == filepath.Dir(d) {
			return nil
		}
	}
}

// lexical checks each directory above abs as written, and any symlink on the way: a link in
// a sticky directory could have been planted by anyone, so it must be ours or root's.
func (c Checker) lexical(abs string) error {
	for p := abs; ; p = filepath.Dir(p) {
		li, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if li.Mode()&fs.ModeSymlink != 0 {
			if uid, ok := ownerOf(li); ok && !c.owner(uid) {
				return &Untrusted{Path: p, Of: abs, Reason: "a symlink " + ownedBy(uid), Fix: "rm " + p}
			}
		}
		if p != abs {
			di, err := os.Stat(p)
			if err != nil {
				return err
			}
			if err := c.entry(p, abs, di, true); err != nil {
				return err
			}
		}
		if p == "/" || p == filepath.Dir(p) {
			return nil
		}
	}
}

// entry applies the owner and mode rules to one path.
func (c Checker) entry(p, of string, fi fs.FileInfo, isDir bool) error {
	uid, ok := ownerOf(fi)
	if !ok {
		return nil // not a Unix file system's answer: nothing to check
	}
	var reasons, fixes []string
	if !c.owner(uid) {
		reasons = append(reasons, ownedBy(uid))
		fixes = append(fixes, "chown "+userName(c.UID)+" "+p)
	}
	perm := fi.Mode().Perm()
	sticky := isDir && fi.Mode()&fs.ModeSticky != 0
	if perm&0o022 != 0 && !sticky {
		who := "its group"
		switch {
		case perm&0o022 == 0o022:
			who = "its group and every user"
		case perm&0o002 != 0:
			who = "every user"
		}
		reasons = append(reasons, "writable by "+who)
		fixes = append(fixes, "chmod go-w "+p)
	}
	if len(reasons) == 0 {
		return nil
	}
	return &Untrusted{Path: p, Of: of, Reason: strings.Join(reasons, " and "), Fix: strings.Join(fixes, " && ")}
}

func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

func ownedBy(uid int) string {
	return "owned by " + userName(uid) + " (uid " + strconv.Itoa(uid) + ")"
}

// userName is the login name of uid, or the number when it has none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// ErrNotRegular is a log or lock file that is not a plain file of ours.
var ErrNotRegular = errors.New("not a regular file with a single link")

// OpenFile opens name for writing (flag is os.O_* as for os.OpenFile) without following a
// symlink in its last component and without blocking on a FIFO, then checks with fstat that
// what it opened is a regular file with one link, owned by root or us, not writable by group
// or others. A file of ours with group or other bits is made private (perm wins).
func (c Checker) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &Untrusted{Path: name, Reason: "a symlink", Fix: "rm " + name}
		}
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		_ = f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || (ok && st.Nlink != 1) {
		return fail(&Untrusted{Path: name, Reason: ErrNotRegular.Error(), Fix: "rm " + name})
	}
	if ok && !c.owner(int(st.Uid)) {
		return fail(&Untrusted{Path: name, Reason: ownedBy(int(st.Uid)), Fix: "rm " + name})
	}
	if extra := fi.Mode().Perm() &^ perm; extra != 0 {
		if ok && int(st.Uid) == c.UID {
			if err := f.Chmod(fi.Mode().Perm() & perm); err != nil {
				return fail(fmt.Errorf("making %s private: %w", name, err))
			}
		} else if extra&0o022 != 0 {
			return fail(&Untrusted{Path: name, Reason: "writable by its group or others", Fix: "chmod go-w " + name})
		}
	}
	return f, nil
}

// EnsureDir makes dir (mode perm) if it is missing, its parent being trusted, and then checks
// dir itself as Dir does.
func (c Checker) EnsureDir(dir string, perm fs.FileMode) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(dir)
		if err := c.Dir(parent); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	return c.Dir(dir)
}

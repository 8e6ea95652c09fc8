package burst

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/trust"
)

// lockDirError is a lock directory or file another user could have written: a configuration
// problem (exit 2) the operator fixes with the command it names; nothing was launched.
type lockDirError struct{ err error }

func (e *lockDirError) Error() string { return e.err.Error() }
func (e *lockDirError) Unwrap() error { return e.err }
func (e *lockDirError) ExitCode() int { return 2 }

// lockGroups takes an exclusive flock on each node group's lock file, in sorted order (no
// deadlock between processes taking overlapping sets), and returns the function that releases
// them. Locks vanish with the process, so a killed resume never leaves one behind.
func (d *Deps) lockGroups(ctx context.Context, groups []string) (unlock func(), err error) {
	if d.LockDir == "" || len(groups) == 0 {
		return func() {}, nil
	}
	t := trust.Self()
	if err := t.EnsureDir(d.LockDir, 0o700); err != nil {
		return nil, &lockDirError{fmt.Errorf("lock directory (LockDir in config.json): %w", err)}
	}
	names := slices.Clone(groups)
	slices.Sort(names)
	names = slices.Compact(names)
	var files []*os.File
	unlock = func() {
		for _, f := range files {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			_ = f.Close()
		}
	}
	for _, g := range names {
		p := filepath.Join(d.LockDir, fmt.Sprintf(".slurm-ec2-%s-%s.lock", d.Cluster, g))
		// No symlink followed, and what was opened must be a plain file of ours (trust.OpenFile):
		// a link planted in a shared lock directory leads nowhere.
		f, err := t.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			unlock()
			var ut *trust.Untrusted
			if errors.As(err, &ut) {
				return nil, &lockDirError{fmt.Errorf("lock file: %w", err)}
			}
			return nil, fmt.Errorf("opening lock file %s (LockDir must be writable by SlurmUser): %w", p, err)
		}
		if err := flockContext(ctx, f); err != nil {
			_ = f.Close()
			unlock()
			return nil, fmt.Errorf("locking %s: %w", p, err)
		}
		files = append(files, f)
	}
	return unlock, nil
}

// flockContext waits for an exclusive lock until ctx ends: a stuck holder cannot hang us forever.
func flockContext(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another slurm-ec2 process: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

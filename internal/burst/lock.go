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
)

// lockGroups takes an exclusive flock on each node group's lock file, in sorted order (no
// deadlock between processes taking overlapping sets), and returns the function that releases
// them. Locks vanish with the process, so a killed resume never leaves one behind.
func (d *Deps) lockGroups(ctx context.Context, groups []string) (unlock func(), err error) {
	if d.LockDir == "" || len(groups) == 0 {
		return func() {}, nil
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
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o640)
		if err != nil {
			unlock()
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

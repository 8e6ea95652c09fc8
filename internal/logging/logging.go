// Package logging builds the program's slog logger from the LogLevel and LogFileName of
// config.json: text records to the log file and to stderr.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/slurm-ec2/slurm-ec2/internal/trust"
)

// LevelCritical is the spec's CRITICAL, above slog's Error.
const LevelCritical = slog.LevelError + 4

// MaxFileSize is the size past which the log file is rotated to <name>.1 when opened.
const MaxFileSize = 50 << 20

// LogSettings are the logging keys of config.json.
type LogSettings struct {
	Level string // CRITICAL, ERROR, WARNING, INFO or DEBUG; empty means DEBUG
	File  string // log file; empty means stderr only
}

// Level maps a level name of the spec (case-insensitive; WARN is accepted too) to slog.
func Level(name string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "CRITICAL":
		return LevelCritical, nil
	case "ERROR":
		return slog.LevelError, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "DEBUG", "":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("unknown log level %q: use CRITICAL, ERROR, WARNING, INFO or DEBUG", name)
}

// New returns a logger that writes text records at cfg.Level to cfg.File and to stderr,
// and the Closer of the file. If the file cannot be opened (its directory must exist) the
// logger writes to stderr only and says so once. The file is created 0640 and appended to;
// if it is already over MaxFileSize it is first renamed to <name>.1, replacing that.
func New(cfg LogSettings, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	level, err := Level(cfg.Level)
	if err != nil {
		return nil, nil, err
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: levelNames}
	if stderr == nil {
		stderr = io.Discard
	}
	errH := slog.NewTextHandler(stderr, opts)
	if cfg.File == "" {
		return slog.New(errH), nopCloser{}, nil
	}
	f, err := openLog(cfg.File)
	if err != nil {
		l := slog.New(errH)
		l.Warn("logging to stderr only: cannot open the log file", "file", cfg.File, "err", err)
		return l, nopCloser{}, nil
	}
	return slog.New(tee{slog.NewTextHandler(f, opts), errH}), f, nil
}

// openLog opens the log file for appending as a program running as root must: its directory
// trusted (owned by root or us, not writable by group or others unless sticky), no symlink
// followed, and the file opened checked to be a plain file of ours (trust.OpenFile).
func openLog(name string) (*os.File, error) {
	t := trust.Self()
	if err := t.Dir(filepath.Dir(name)); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	if st, err := os.Lstat(name); err == nil && st.Mode().IsRegular() && st.Size() > MaxFileSize {
		if err := os.Rename(name, name+".1"); err != nil {
			return nil, fmt.Errorf("rotating %s: %w", name, err)
		}
	}
	// A log names instances, addresses and nodes: never world-readable, even if an older file was.
	f, err := t.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	return f, nil
}

// levelNames prints the spec's level names (WARNING, CRITICAL) instead of slog's.
func levelNames(groups []string, a slog.Attr) slog.Attr {
	if a.Key != slog.LevelKey || len(groups) > 0 {
		return a
	}
	l, ok := a.Value.Any().(slog.Level)
	if !ok {
		return a
	}
	switch {
	case l >= LevelCritical:
		a.Value = slog.StringValue("CRITICAL")
	case l >= slog.LevelError:
		a.Value = slog.StringValue("ERROR")
	case l >= slog.LevelWarn:
		a.Value = slog.StringValue("WARNING")
	case l >= slog.LevelInfo:
		a.Value = slog.StringValue("INFO")
	default:
		a.Value = slog.StringValue("DEBUG")
	}
	return a
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// tee sends each record to every handler.
type tee []slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t tee) WithGroup(name string) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

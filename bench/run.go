package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/slurm"
	"github.com/slurm-ec2/slurm-ec2/internal/slurm/fakeslurm"
)

// procResult is one run of the real binary.
type procResult struct {
	Wall     time.Duration `json:"wall_ns"`
	CPU      time.Duration `json:"cpu_ns"` // user + system
	MaxRSSKB int64         `json:"max_rss_kib"`
	Exit     int           `json:"exit"`
	Summary  map[string]string
	Stderr   string `json:"-"`
	start    time.Time
}

// runBinary runs slurm-ec2 with args as Slurm would (an argument list, no shell), its stdout and
// stderr captured, and returns wall time from start to exit, CPU time and peak RSS (rusage) and
// the attributes of the INFO line whose msg is summaryMsg.
func (e *env) runBinary(ctx context.Context, summaryMsg string, args ...string) (*procResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append(args[:1:1], append([]string{"--config-dir", e.configDir}, args[1:]...)...)...)
	cmd.Env = e.childEnv()
	cmd.Dir = e.work
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := &procResult{start: time.Now()}
	err := cmd.Run()
	r.Wall = time.Since(r.start)
	r.Stderr = stderr.String()
	if cmd.ProcessState == nil {
		return nil, fmt.Errorf("running %s %s: %w", e.bin, args[0], err)
	}
	r.Exit = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.MaxRSSKB = ru.Maxrss // KiB on Linux
	}
	r.Summary = findSummary(r.Stderr, summaryMsg)
	if r.Summary == nil {
		return r, fmt.Errorf("%s %s printed no %q line (exit %d); stderr:\n%s", filepath.Base(e.bin), args[0], summaryMsg, r.Exit, tail(r.Stderr, 2000))
	}
	return r, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// findSummary returns the key=value attributes of the last slog text line with msg.
func findSummary(stderr, msg string) map[string]string {
	var out map[string]string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		kv := parseLogfmt(sc.Text())
		if kv["msg"] == msg {
			out = kv
		}
	}
	return out
}

// parseLogfmt splits one slog TextHandler line into keys and values (quoted values unquoted).
func parseLogfmt(line string) map[string]string {
	kv := map[string]string{}
	for len(line) > 0 {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			break
		}
		key := line[:eq]
		if strings.ContainsAny(key, " \"") {
			break
		}
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			end := 1
			for end < len(line) && line[end] != '"' {
				if line[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end, len(line)-1)
			q := line[:end+1]
			if uq, err := unquote(q); err == nil {
				val = uq
			} else {
				val = strings.Trim(q, `"`)
			}
			line = line[end+1:]
		} else {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				sp = len(line)
			}
			val, line = line[:sp], line[sp:]
		}
		kv[key] = val
	}
	return kv
}

func unquote(q string) (string, error) {
	var s string
	err := json.Unmarshal([]byte(q), &s)
	return s, err
}

// slurmCalls reads the stand-in's record of scontrol/sinfo invocations.
func (e *env) slurmCalls() ([]fakeslurm.Call, error) {
	b, err := os.ReadFile(filepath.Join(e.slurmDir, "calls.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the recorded scontrol calls: %w", err)
	}
	var calls []fakeslurm.Call
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 256<<20)
	for sc.Scan() {
		var c fakeslurm.Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return nil, fmt.Errorf("calls.jsonl line %q: %w", tail(sc.Text(), 200), err)
		}
		calls = append(calls, c)
	}
	return calls, sc.Err()
}

// lastAddressUpdate is when the last `scontrol update ... nodeaddr=` finished, or zero.
func lastAddressUpdate(calls []fakeslurm.Call) time.Time {
	var t time.Time
	for _, c := range calls {
		if c.Kind() != "update" {
			continue
		}
		if slices.ContainsFunc(c.Argv, func(a string) bool { return strings.HasPrefix(strings.ToLower(a), "nodeaddr=") }) && c.Time.After(t) {
			t = c.Time
		}
	}
	return t
}

// writeNodes replaces the stand-in's node table and forgets recorded calls.
func (e *env) writeNodes(nodes []slurm.Node) error {
	b, err := json.Marshal(map[string]any{"nodes": nodes})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.slurmDir, "nodes.json"), b, 0o644); err != nil {
		return fmt.Errorf("writing the scontrol stand-in's node table: %w", err)
	}
	if err := os.Remove(filepath.Join(e.slurmDir, "calls.jsonl")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clearing recorded scontrol calls: %w", err)
	}
	return nil
}

func (e *env) readNodes() (map[string]slurm.Node, error) {
	b, err := os.ReadFile(filepath.Join(e.slurmDir, "nodes.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the scontrol stand-in's node table: %w", err)
	}
	var t struct{ Nodes []slurm.Node }
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decoding nodes.json: %w", err)
	}
	m := make(map[string]slurm.Node, len(t.Nodes))
	for _, n := range t.Nodes {
		m[n.Name] = n
	}
	return m, nil
}

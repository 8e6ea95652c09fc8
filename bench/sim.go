package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/latency"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
)

// simServer is ec2sim served over loopback HTTP from this process, with latency and throttling
// that can be switched between runs: each run starts with full token buckets (as a burst after a
// quiet period does), and the 10,000-instance steady state for reconcile is built with both off.
type simServer struct {
	sim  *ec2sim.Sim
	srv  *http.Server
	URL  string
	lat  switchLatency
	thr  switchThrottle
	done chan error
}

type switchLatency struct {
	mu sync.Mutex
	m  *latency.Model
}

func (s *switchLatency) For(action string, n int) time.Duration {
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	if m == nil {
		return 0
	}
	return m.For(action, n)
}

type switchThrottle struct {
	mu sync.Mutex
	l  *throttle.Limiter
}

func (s *switchThrottle) AllowCall(c throttle.Call) bool {
	s.mu.Lock()
	l := s.l
	s.mu.Unlock()
	return l == nil || l.AllowCall(c)
}

// profile names an ec2sim setting, as the -latency and -throttle flags of bin/ec2sim do.
type profile struct {
	Latency  string `json:"latency"`  // "none" or "aws"
	Throttle string `json:"throttle"` // "none" or "aws"
}

func (p profile) String() string { return "latency=" + p.Latency + " throttle=" + p.Throttle }

func startSim(log *slog.Logger) (*simServer, error) {
	s := &simServer{done: make(chan error, 1)}
	s.sim = ec2sim.New(ec2sim.Options{Latency: &s.lat, Throttle: &s.thr, Seed: 1, Logger: log,
		ShutdownDelay: 2 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback for ec2sim: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// set resets the world (instances, counters) unless keep, and installs fresh latency and
// throttling: full buckets, the jitter generator at its seed.
func (s *simServer) set(p profile, keep bool) error {
	if !keep {
		s.sim.Reset()
	}
	s.sim.ResetCounters()
	lm, err := latency.Parse(p.Latency)
	if err != nil {
		return err
	}
	s.lat.mu.Lock()
	s.lat.m = &lm
	s.lat.mu.Unlock()
	s.thr.mu.Lock()
	switch p.Throttle {
	case "none":
		s.thr.l = nil
	case "aws":
		s.thr.l = throttle.New(throttle.AWS(), nil)
	default:
		s.thr.mu.Unlock()
		return fmt.Errorf("throttle profile %q: want none or aws", p.Throttle)
	}
	s.thr.mu.Unlock()
	return nil
}

func (s *simServer) close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

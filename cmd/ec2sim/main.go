// Command ec2sim is an EC2 emulator that speaks the EC2 Query protocol and IMDSv2.
//
//	ec2sim -listen 127.0.0.1:0 [-world FILE] [-latency none|aws|SPEC] [-throttle none|aws]
//	       [-imds-listen ADDR] [-boot-delay D] [-shutdown-delay D]
//	       [-on-launch CMD] [-on-terminate CMD] [-verify-sigv4 FILE] [-log-level L]
//
// It prints "ec2sim listening on http://ADDR" once it accepts connections and stops
// gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/imds"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/latency"
	"github.com/slurm-ec2/slurm-ec2/internal/ec2sim/throttle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address of the EC2 API (port 0 picks one)")
	worldFile := fs.String("world", "", "world JSON file (default: the built-in world)")
	lat := fs.String("latency", "none", "latency model: none, aws, or a latency spec/file")
	thr := fs.String("throttle", "none", "throttling: none or aws")
	imdsListen := fs.String("imds-listen", "", "address of the IMDSv2 server (default off)")
	boot := fs.Duration("boot-delay", 0, "time from pending to running")
	shutdown := fs.Duration("shutdown-delay", 0, "time from shutting-down to terminated")
	onLaunch := fs.String("on-launch", "", "command run when an instance becomes running (split on spaces, no shell)")
	onTerminate := fs.String("on-terminate", "", "command run when an instance becomes terminated")
	sigv4 := fs.String("verify-sigv4", "", "JSON file of access key -> secret; verify signatures")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "ec2sim: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	opts := ec2sim.Options{Logger: log, BootDelay: *boot, ShutdownDelay: *shutdown}
	if *worldFile != "" {
		w, err := ec2sim.LoadWorld(*worldFile)
		if err != nil {
			fmt.Fprintf(stderr, "ec2sim: %v\n", err)
			return 2
		}
		opts.World = w
	}
	switch *lat {
	case "none", "":
	case "aws":
		opts.Latency = latency.AWS()
	default:
		m, err := latency.Parse(*lat)
		if err != nil {
			fmt.Fprintf(stderr, "ec2sim: -latency: %v\n", err)
			return 2
		}
		opts.Latency = m
	}
	switch *thr {
	case "none", "":
	case "aws":
		opts.Throttle = throttle.New(throttle.AWS(), time.Now)
	default:
		fmt.Fprintf(stderr, "ec2sim: -throttle %q: want none or aws\n", *thr)
		return 2
	}
	if *sigv4 != "" {
		b, err := os.ReadFile(*sigv4)
		if err == nil {
			err = json.Unmarshal(b, &opts.Credentials)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ec2sim: -verify-sigv4: %v\n", err)
			return 2
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "ec2sim: %v\n", err)
		return 1
	}
	var imdsLn net.Listener
	if *imdsListen != "" {
		if imdsLn, err = net.Listen("tcp", *imdsListen); err != nil {
			fmt.Fprintf(stderr, "ec2sim: -imds-listen: %v\n", err)
			return 1
		}
	}
	he := ec2sim.HookEnv{EC2Endpoint: "http://" + ln.Addr().String()}
	if imdsLn != nil {
		he.IMDSEndpoint = "http://" + imdsLn.Addr().String()
	}
	heFn := func() ec2sim.HookEnv { return he }
	if *onLaunch != "" {
		opts.OnLaunch = ec2sim.HookFunc(ctx, log, "on-launch", strings.Fields(*onLaunch), heFn)
	}
	if *onTerminate != "" {
		opts.OnTerminate = ec2sim.HookFunc(ctx, log, "on-terminate", strings.Fields(*onTerminate), heFn)
	}
	sim := ec2sim.New(opts)

	servers := []*http.Server{{Handler: sim, ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{ln}
	if imdsLn != nil {
		servers = append(servers, &http.Server{Handler: imds.NewHandler(sim.IMDSSource(), time.Now), ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, imdsLn)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	go sim.Run(ctx, 100*time.Millisecond)
	fmt.Fprintf(stdout, "ec2sim listening on http://%s\n", ln.Addr())
	if imdsLn != nil {
		log.Info("IMDS listening", "url", he.IMDSEndpoint)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "err", err)
			return 1
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	log.Info("ec2sim stopped")
	return 0
}

# slurm-ec2: see README.md. `make help` lists the targets.
SHELL   := /bin/bash
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/slurm-ec2/slurm-ec2/internal/cli.Version=$(VERSION)
export CGO_ENABLED := 0

.PHONY: help build test lint e2e e2e-all e2e-roots-clean bench demo faults fuzz clean deps check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/slurm-ec2 and bin/ec2sim (static)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/slurm-ec2 ./cmd/slurm-ec2
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ec2sim ./cmd/ec2sim
	@for l in resume suspend resume-fail change-state; do ln -sf slurm-ec2 $(BIN)/$$l; done

# staticcheck, pinned: installed from the Go module proxy into bin/tools on first use (checksums
# verified by the Go toolchain), so `make lint` gives the same verdict on every machine.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(BIN)/tools/staticcheck

$(STATICCHECK):
	GOBIN=$(CURDIR)/$(BIN)/tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt check, go vet and staticcheck
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(STATICCHECK) -version | grep -qF '($(STATICCHECK_VERSION:v%=%))' || \
	  { echo "$(STATICCHECK) is not $(STATICCHECK_VERSION): rm it and rerun make lint"; exit 1; }
	$(STATICCHECK) ./...

test: lint ## lint, then every Go test with the race detector (unit, integration over ec2sim, fidelity when awscli/boto3 exist)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...

# Debian packages the tests need: real Slurm and munge for the end-to-end tests, and the EC2
# clients nobody here wrote (awscli, boto3) for ec2sim's fidelity test.
# mmdebstrap builds the root filesystems of the other Slurm releases the e2e tests run.
DEB_PACKAGES := slurmctld slurmd slurm-client munge awscli python3-boto3 iproute2 util-linux procps \
	ca-certificates git make gcc rpm mmdebstrap

deps: ## install the Debian packages the tests need (root; daemons are not started)
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  [ "$$(id -u)" = 0 ] || { echo "make deps: need root to install:" $$missing; exit 1; }; \
	  made=0; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  rc=$$?; [ $$made = 1 ] && rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi
	$(GO) mod download

FUZZTIME ?= 10
fuzz: ## run every fuzz target (config, hostlist, scontrol output, SLURM_RESUME_FILE, EC2 query, ...) for FUZZTIME seconds each
	GO=$(GO) test/faults/fuzz.sh $(FUZZTIME)

check: deps build test fuzz e2e-all ## everything CI runs: packages, build, lint, all Go tests, fuzzing, real-Slurm end to end on 22.05, 24.11 and 26.05

clean: ## remove build output
	rm -rf $(BIN)

# SLURM_VERSION=22.05|24.11|26.05 runs that Slurm release (Debian 12, 13, unstable) from a root
# filesystem built once with mmdebstrap under /var/cache/slurm-ec2-e2e/<release> (see
# test/e2e/slurm-root.sh); unset: this machine's Slurm packages.
SLURM_VERSION ?=
e2e: build ## real Slurm + ec2sim end-to-end scenarios (root; SLURM_VERSION=22.05|24.11|26.05, default the machine's Slurm; ~20 min)
	@if [ -n "$(SLURM_VERSION)" ]; then test/e2e/slurm-root.sh $(SLURM_VERSION) >/dev/null; fi
	SLURM_EC2_E2E=1 E2E_SLURM_VERSION=$(SLURM_VERSION) $(GO) test -count=1 -v -timeout 40m ./test/e2e/ $(E2E_FLAGS)

# Every scenario on each release, one release after the other; a summary table per release.
E2E_RELEASES ?= 22.05 24.11 26.05
# E2E_FIRST_ONLY: scenarios run on the first release only, to keep CI inside its 90 minutes. The
# back-off scenario watches a broken image for five minutes by design; what it relies on from each
# release (reasons, AdminComment, job states) is asserted on every release by TestBackOffSlurmFacts.
E2E_FIRST_ONLY ?= TestScenario9BackOffNeverBoots
e2e-all: build ## every end-to-end scenario on each of E2E_RELEASES (22.05 24.11 26.05; ~50 min), E2E_FIRST_ONLY on the first only
	@rc=0; first=1; for v in $(E2E_RELEASES); do \
	  echo "=== make e2e SLURM_VERSION=$$v"; start=$$(date +%s); \
	  flags='$(E2E_FLAGS)'; if [ $$first = 0 ] && [ -n '$(E2E_FIRST_ONLY)' ]; then flags="$$flags -skip $(E2E_FIRST_ONLY)"; fi; first=0; \
	  $(MAKE) --no-print-directory e2e SLURM_VERSION=$$v E2E_FLAGS="$$flags" || rc=1; \
	  echo "=== make e2e SLURM_VERSION=$$v: $$(( $$(date +%s) - start )) s"; \
	done; exit $$rc

e2e-roots-clean: ## delete the cached Slurm root filesystems (rebuilt on the next SLURM_VERSION run)
	rm -rf --one-file-system $${SLURM_EC2_E2E_CACHE:-/var/cache/slurm-ec2-e2e}

demo: ## one-command demo on a fresh Debian machine (root): installs Slurm, builds, bursts jobs into ec2sim; KEEP=1 leaves it running; SLURM_VERSION=24.11|26.05 for another release
	SLURM_VERSION=$(SLURM_VERSION) test/e2e/demo.sh

include deploy/dist.mk

faults: ## fault matrix against ec2sim + fake Slurm (SIGKILL, throttling, 5xx, skew...): prints cases, faults, invariant
	@mkdir -p $(BIN); rm -f $(BIN)/faults-table.txt; rc=0; \
	  $(GO) test -count=1 -timeout 15m ./test/faults/ -args -table $(CURDIR)/$(BIN)/faults-table.txt > $(BIN)/faults.out 2>&1 || rc=$$?; \
	  grep -E '^(--- FAIL|FAIL|ok|panic)|invariant: ' $(BIN)/faults.out || true; \
	  cat $(BIN)/faults-table.txt 2>/dev/null || tail -50 $(BIN)/faults.out; exit $$rc

bench: build ## resume/suspend 1..5,000 nodes and reconcile 10,000 against ec2sim with EC2's latency and throttling (~15 min): BENCHMARKS.md, docs/bench.svg
	$(GO) run ./bench -bin $(BIN)/slurm-ec2 $(BENCH_FLAGS)

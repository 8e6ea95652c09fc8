# slurm-ec2: see README.md. `make help` lists the targets.
SHELL   := /bin/bash
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/slurm-ec2/slurm-ec2/internal/cli.Version=$(VERSION)
export CGO_ENABLED := 0

.PHONY: help build test lint e2e bench demo faults fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/slurm-ec2 and bin/ec2sim (static)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/slurm-ec2 ./cmd/slurm-ec2
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ec2sim ./cmd/ec2sim
	@for l in resume suspend resume-fail change-state; do ln -sf slurm-ec2 $(BIN)/$$l; done

lint: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint ## lint, then every Go test (unit, integration over ec2sim, fidelity when awscli/boto3 exist)
	$(GO) test -count=1 ./...

clean: ## remove build output
	rm -rf $(BIN)

# deploy/dist.mk: release artifacts. The Makefile includes it and provides GO, VERSION and LDFLAGS.
#   make dist                  dist/slurm-ec2-linux-{amd64,arm64}, dist/slurm-ec2_<v>_{amd64,arm64}.deb, dist/SHA256SUMS
#   make dist VERSION=v0.3.0   a release; the .deb version drops the leading v
DIST        ?= dist
DIST_ARCHES ?= amd64 arm64
# Debian versions must start with a digit. A release tag (v1.2.3 or 1.2.3) loses its v; anything
# else (a git describe such as 1125343-dirty, or dev) becomes 0.0~<it>, which sorts before releases.
DEB_VERSION ?= $(shell printf '%s' '$(VERSION)' | sed -E 's/^v?([0-9]+\.[0-9])/\1/; t; s/^/0.0~/' | tr -c 'A-Za-z0-9.+~-' '.')
# Reproducible packages: file times are the last commit's time.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

.PHONY: dist
dist: ## static linux/amd64 and linux/arm64 binaries plus a .deb for each in dist/
	@mkdir -p $(DIST)
	$(GO) build -o $(DIST)/.mkdeb ./cmd/mkdeb
	@set -e; for arch in $(DIST_ARCHES); do \
	  echo "dist: linux/$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/slurm-ec2-linux-$$arch ./cmd/slurm-ec2; \
	  $(DIST)/.mkdeb -arch $$arch -version '$(DEB_VERSION)' -binary $(DIST)/slurm-ec2-linux-$$arch -o $(DIST)/slurm-ec2_$(DEB_VERSION)_$$arch.deb; \
	done
	@rm -f $(DIST)/.mkdeb
	cd $(DIST) && sha256sum slurm-ec2-linux-* slurm-ec2_*.deb > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

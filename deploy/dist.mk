# deploy/dist.mk: release artifacts. The Makefile includes it and provides GO, VERSION and LDFLAGS.
#   make dist                  dist/slurm-ec2-linux-{amd64,arm64}, a .deb and an .rpm for each, dist/SHA256SUMS
#   make dist VERSION=v0.3.0   a release; the package version drops the leading v
# Packages are built by cmd/mkpkg with nFPM (github.com/goreleaser/nfpm/v2).
DIST        ?= dist
DIST_ARCHES ?= amd64 arm64
# Package versions must start with a digit. A release tag (v1.2.3 or 1.2.3) loses its v; anything
# else (a git describe such as 1125343-dirty, or dev) becomes 0.0~<it>, which sorts before releases
# in both dpkg and rpm. mkpkg turns '-' into '.' for rpm, where '-' separates the release.
PKG_VERSION ?= $(shell printf '%s' '$(VERSION)' | sed -E 's/^v?([0-9]+\.[0-9])/\1/; t; s/^/0.0~/' | tr -c 'A-Za-z0-9.+~-' '.')
RPM_VERSION  = $(subst -,.,$(PKG_VERSION))
# Reproducible packages: file times are the last commit's time.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

.PHONY: dist
dist: ## static linux/amd64 and linux/arm64 binaries plus a .deb and an .rpm for each in dist/
	@mkdir -p $(DIST)
	$(GO) build -o $(DIST)/.mkpkg ./cmd/mkpkg
	@set -e; for arch in $(DIST_ARCHES); do \
	  echo "dist: linux/$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/slurm-ec2-linux-$$arch ./cmd/slurm-ec2; \
	  $(DIST)/.mkpkg -format deb -arch $$arch -version '$(PKG_VERSION)' -binary $(DIST)/slurm-ec2-linux-$$arch -o $(DIST)/slurm-ec2_$(PKG_VERSION)_$$arch.deb; \
	  rpmarch=$$( [ $$arch = amd64 ] && echo x86_64 || echo aarch64 ); \
	  $(DIST)/.mkpkg -format rpm -arch $$arch -version '$(PKG_VERSION)' -binary $(DIST)/slurm-ec2-linux-$$arch -o $(DIST)/slurm-ec2-$(RPM_VERSION)-1.$$rpmarch.rpm; \
	done
	@rm -f $(DIST)/.mkpkg
	cd $(DIST) && sha256sum slurm-ec2-linux-* slurm-ec2_*.deb slurm-ec2-*.rpm > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

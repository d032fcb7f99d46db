# Berth — build, test, run and benchmark.
#
#   make run     build (and the VM image when missing), then `berth start`: boot the VM
#                (2 CPUs, 2 GiB, 64 GiB sparse disk, your home folder shared) and forward
#                the docker socket
#   make stop    `berth stop`: shut the VM down
#   make run-native / stop-native   the engine natively on this Linux host (root), no VM
#   make test    everything CI runs: deps, build, the VM image, gofmt, vet (linux + windows),
#                the darwin type-check (check-darwin),
#                tests (with e2e/: the real VM under QEMU), the desktop app's tests
#                (test-ui: vitest, a real browser, a real window), fuzz smoke
#   make gui     the desktop app (Wails) into build/bin/
#   make dist    release artefacts into build/dist/: the Linux tarball and .deb, the
#                Windows installer, the macOS bundle's inputs, each with SHA256SUMS
#   make bench   Berth's engine against Debian's dockerd with the same docker CLI; the VM's
#                boot time against the floor, idle memory, published-port throughput
#
# Works from a clean clone on Debian/Ubuntu as root, or through sudo otherwise.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

export PATH := $(PATH):/usr/local/go/bin
GO ?= go

MODULE  := github.com/berthdesktop/berth
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(MODULE)/internal/version.Version=$(VERSION)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

# Root runs commands directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# Debian packages the build, the tests and the benchmark need.
DEB_PACKAGES := busybox-static docker.io docker-compose iproute2 procps curl git ca-certificates util-linux docker-registry apache2-utils

# The host's architecture, naming the VM image folder build/vm/<arch>.
HOST_ARCH := $(shell $(GO) env GOARCH 2>/dev/null || echo amd64)

# The boot benchmark of the host's architecture (vmimage: BenchmarkBootAmd64, ...Arm64).
VM_BENCH_ARCH := $(if $(filter arm64,$(HOST_ARCH)),Arm64,Amd64)

# Where `make run` and `make run-native` keep their data, sockets and logs.
BERTH_HOME  ?= $(HOME)/.berth
RUN_DIR     := $(BERTH_HOME)/run
ENGINE_SOCK := $(RUN_DIR)/docker.sock
ENGINE_PID  := $(RUN_DIR)/engine.pid
ENGINE_LOG  := $(RUN_DIR)/engine.log

# Seconds each fuzz target runs in `make test`.
FUZZTIME ?= 3s
# Timeout of the whole `go test ./...`.
TEST_TIMEOUT ?= 20m

.PHONY: deps build test fmt-check vet vet-windows unit fuzz-smoke run stop run-native stop-native bench clean

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -q; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "deps: all present ($(DEB_PACKAGES))"; \
	fi
	@command -v $(GO) >/dev/null || { echo "deps: Go toolchain not found (expected in PATH or /usr/local/go/bin)"; exit 1; }

build:
	@mkdir -p bin
	GOOS=linux $(GOBUILD) -o bin/berth-agent ./cmd/berth-agent
	$(GOBUILD) -o bin/berth ./cmd/berth

fmt-check:
	@out="$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

vet-windows:
	GOOS=windows $(GO) build ./...
	GOOS=windows $(GO) vet ./...

# The integration tests in cmd/berth-agent use the bin/berth-agent just built; the
# QEMU tests and e2e/ boot the VM image that vmimage (re)builds from this tree.
unit: build vmimage
	$(SUDO) env "PATH=$$PATH" BERTH_AGENT=$(CURDIR)/bin/berth-agent $(GO) test -timeout $(TEST_TIMEOUT) ./...

# Runs every fuzz target in the module for FUZZTIME.
fuzz-smoke: build
	@for f in $$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort); do \
		dir=$$(dirname $$f); \
		for t in $$(grep -oE '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
			echo "fuzz $$dir $$t ($(FUZZTIME))"; \
			ok=0; for try in 1 2; do \
				if $(SUDO) env "PATH=$$PATH" BERTH_AGENT=$(CURDIR)/bin/berth-agent $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$dir >bin/fuzz.log 2>&1; then ok=1; break; fi; \
				grep -q 'Failing input written' bin/fuzz.log && break; \
				grep -q 'context deadline exceeded' bin/fuzz.log || break; \
				echo "fuzz $$dir $$t: the fuzzing engine's own deadline fired with no failing input; once more"; \
			done; \
			[ $$ok = 1 ] || { cat bin/fuzz.log; exit 1; }; \
		done; \
	done

test: deps build vmimage fmt-check vet vet-windows check-darwin unit test-ui fuzz-smoke
	@echo "make test: all passed"

run: deps build
	@if [ ! -f build/vm/$(HOST_ARCH)/vmlinuz ] || [ ! -f build/vm/$(HOST_ARCH)/initrd.img ]; then \
		echo "no VM image in build/vm/$(HOST_ARCH): building it (make vmimage)"; \
		$(MAKE) vmimage VMIMAGE_ARCHES=$(HOST_ARCH); \
	fi
	$(SUDO) env BERTH_HOME=$(BERTH_HOME) BERTH_VM_DIR=$(CURDIR)/build/vm/$(HOST_ARCH) bin/berth start

stop: build
	$(SUDO) env BERTH_HOME=$(BERTH_HOME) bin/berth stop

run-native: deps build
	@mkdir -p $(BERTH_HOME)/engine $(RUN_DIR)
	@if [ -f $(ENGINE_PID) ] && $(SUDO) kill -0 "$$(cat $(ENGINE_PID))" 2>/dev/null; then \
		echo "engine already running (pid $$(cat $(ENGINE_PID)))"; \
	else \
		echo "Starting Berth's engine natively on this Linux host (no VM)"; \
		$(SUDO) sh -c 'nohup "$$1" engine --data-root "$$2" --exec-root "$$3" -H "unix://$$4" >"$$5" 2>&1 & echo $$! >"$$6"' \
			sh $(CURDIR)/bin/berth-agent $(BERTH_HOME)/engine $(RUN_DIR)/exec $(ENGINE_SOCK) $(ENGINE_LOG) $(ENGINE_PID); \
	fi
	@for i in $$(seq 1 100); do \
		if $(SUDO) curl -fsS --unix-socket $(ENGINE_SOCK) http://localhost/_ping >/dev/null 2>&1; then break; fi; \
		if ! $(SUDO) kill -0 "$$(cat $(ENGINE_PID))" 2>/dev/null; then \
			echo "the engine exited; its log ($(ENGINE_LOG)):"; cat $(ENGINE_LOG); exit 1; fi; \
		sleep 0.2; \
	done; \
	$(SUDO) curl -fsS --unix-socket $(ENGINE_SOCK) http://localhost/_ping >/dev/null || { echo "no answer on $(ENGINE_SOCK); log: $(ENGINE_LOG)"; exit 1; }
	@echo
	@echo "Berth's engine is running natively on this Linux host (pid $$(cat $(ENGINE_PID)))."
	@echo "Containers run directly on this machine, as root."
	@echo "Point the docker CLI at it with"
	@echo "    export DOCKER_HOST=unix://$(ENGINE_SOCK)"
	@echo "or"
	@echo "    docker context create berth --docker host=unix://$(ENGINE_SOCK) && docker context use berth"
	@echo "Log: $(ENGINE_LOG).  Stop it with: make stop-native"

stop-native:
	@if [ -f $(ENGINE_PID) ] && $(SUDO) kill -0 "$$(cat $(ENGINE_PID))" 2>/dev/null; then \
		pid=$$(cat $(ENGINE_PID)); $(SUDO) kill -TERM $$pid; \
		for i in $$(seq 1 100); do $(SUDO) kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
		echo "engine stopped"; \
	else \
		echo "engine not running"; \
	fi
	@rm -f $(ENGINE_PID)

# The engine against dockerd; then the VM: boot to docker ready against the floor
# (median of 5), idle memory, and published-port throughput against the channel.
bench: deps build vmimage
	$(SUDO) env "PATH=$$PATH" BERTH_AGENT=$(CURDIR)/bin/berth-agent \
		$(GO) test -run '^$$' -bench '^Benchmark(VsDockerd|RegistryVsDockerd|BuildVsDockerd|NetworkVsDockerd)$$' -benchtime 1x -timeout 30m -v ./cmd/berth-agent
	$(SUDO) env "PATH=$$PATH" $(GO) test -count=1 -run '^$$' -bench '^BenchmarkBoot$(VM_BENCH_ARCH)$$' -benchtime 5x -timeout 30m ./vmimage/
	$(SUDO) env "PATH=$$PATH" $(GO) test -count=1 -run '^$$' -bench '^BenchmarkVM$$' -benchtime 1x -timeout 30m ./e2e/

clean:
	rm -rf bin
include vmimage/vmimage.mk
include ui.mk
include darwin.mk
include dist.mk

# VM image: kernel + initrd per architecture, from Debian's packages, into
# build/vm/<arch>/{vmlinuz,initrd.img,manifest.json}. Downloads are cached in
# build/vm/cache. Included by the main Makefile.

VMIMAGE_ARCHES ?= amd64 arm64

# Debian packages the image build and its QEMU boot tests need (`make deps`).
DEB_PACKAGES += qemu-system-x86 qemu-system-arm qemu-utils e2fsprogs cpio kmod
VMIMAGE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: vmimage vmimage-test vmimage-bench

# Needs root (apt-get download, dpkg --add-architecture): sudo otherwise.
vmimage:
	$(SUDO) env "PATH=$$PATH" $(GO) run ./vmimage -out build/vm -cache build/vm/cache -version $(VMIMAGE_VERSION) $(VMIMAGE_ARCHES)

# Reproducibility and the QEMU boot tests (amd64 and arm64, TCG).
vmimage-test:
	$(SUDO) env "PATH=$$PATH" $(GO) test -count=1 -timeout 20m ./vmimage/ ./guestagent/pid1/ ./guestagent/link/

# Boot time to the agent's ready line against the floor (the same kernel
# with an init that powers off at once), median of 5.
vmimage-bench:
	$(SUDO) env "PATH=$$PATH" $(GO) test -count=1 -timeout 30m -run '^$$' -bench 'Boot' -benchtime 5x ./vmimage/

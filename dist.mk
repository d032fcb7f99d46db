# Release artefacts into build/dist/<os>/, each folder with a SHA256SUMS file.
# Included by the main Makefile.
#
#   make dist   linux/    berth-<version>-linux-amd64.tar.gz and berth_<version>_amd64.deb:
#                         the berth CLI, the desktop app when `make gui` built it
#                         (build/bin/berth-desktop) and the amd64 VM image. The .deb
#                         installs under /usr/lib/berth with berth and berth-desktop
#                         in /usr/bin, and depends on QEMU and its virtiofsd.
#               windows/  the NSIS installer, made by makensis from
#                         build/windows/installer/project.nsi with berth.exe, the
#                         desktop app's berth-desktop.exe and the amd64 VM image
#               darwin/   the macOS bundle's inputs, for a Mac to finish: build/darwin,
#                         the arm64 VM image and the list of darwin binaries to build
#                         there (nothing darwin builds here: cgo and Apple's SDK)
#
# Both VM images come from build/vm/<arch>, built first when missing. The same commit
# gives the same bytes: SOURCE_DATE_EPOCH is the commit's time, tarballs have sorted
# entries, fixed owners, modes and times and gzip -n, dpkg-deb is given
# SOURCE_DATE_EPOCH and root ownership, and Go builds with -trimpath.

DIST_DIR   := build/dist
DIST_STAGE := $(DIST_DIR)/.stage
DIST_VERSION := $(VERSION)
# A Debian version must start with a digit: v1.2.3-4-gabc -> 1.2.3+4+gabc; an
# untagged abc123-dirty -> 0~gabc123+dirty.
DIST_DEB_VERSION := $(shell v=$$(printf '%s' '$(DIST_VERSION)' | sed 's/^v\([0-9]\)/\1/'); printf '%s' "$$v" | grep -Eq '^[0-9]+\.' || v="0~g$$v"; printf '%s' "$$v" | tr -c 'A-Za-z0-9.+~' '+')
ifeq ($(origin SOURCE_DATE_EPOCH),undefined)
SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
endif
DIST_COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

DIST_TAR := tar --sort=name --format=gnu --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner --mode=u+rwX,go+rX,go-w
DIST_GZ  := gzip -n -9
# The VM image files a package carries.
DIST_VM_FILES := vmlinuz initrd.img manifest.json
DIST_DESKTOP  := build/bin/berth-desktop

LINUX_NAME := berth-$(DIST_VERSION)-linux-amd64
LINUX_TREE := $(DIST_STAGE)/$(LINUX_NAME)
DEB_ROOT   := $(DIST_STAGE)/deb
DEB_FILE   := berth_$(DIST_DEB_VERSION)_amd64.deb
DEB_MAINTAINER ?= Berth authors <maintainers@berth.invalid>
# QEMU for amd64 guests, and the virtiofsd app/machine/qemu runs for the shared
# folders: QEMU's own at /usr/lib/qemu/virtiofsd (qemu-system-common up to 7.2), or
# the separate virtiofsd package that replaces it from QEMU 8 on.
DEB_DEPENDS := qemu-system-x86, qemu-system-common (<< 1:8.0~) | virtiofsd
# The desktop app's libraries (Wails on GTK 3 and WebKitGTK 4.1).
DEB_DEPENDS_DESKTOP := libgtk-3-0, libwebkit2gtk-4.1-0

WIN_NSI   := build/windows/installer/project.nsi
WIN_STAGE := $(DIST_STAGE)/windows
WIN_FILE  := berth-$(DIST_VERSION)-windows-amd64-installer.exe

DARWIN_NAME := berth-$(DIST_VERSION)-darwin-arm64-inputs
DARWIN_TREE := $(DIST_STAGE)/$(DARWIN_NAME)

# dist_sums writes folder $(1)'s SHA256SUMS, over its files in name order.
define dist_sums
cd $(1) && sums="$$(find . -maxdepth 1 -type f ! -name SHA256SUMS ! -name '.*' -printf '%P\n' | LC_ALL=C sort | xargs -r sha256sum --)" && printf '%s\n' "$$sums" > SHA256SUMS
endef

.PHONY: dist dist-prep dist-linux dist-windows dist-darwin

dist: dist-linux dist-windows dist-darwin
	@rm -rf $(DIST_STAGE)
	@echo "dist: $(DIST_VERSION) (commit $(DIST_COMMIT), SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH)) in $(DIST_DIR)/"
	@for d in linux windows darwin; do \
		if [ -s $(DIST_DIR)/$$d/SHA256SUMS ]; then echo "$$d/"; sed 's/^/    /' $(DIST_DIR)/$$d/SHA256SUMS; fi; \
	done

# The VM images, built when missing; build/dist is kept out of git.
dist-prep:
	@mkdir -p $(DIST_DIR) && printf '*\n' > $(DIST_DIR)/.gitignore
	@missing=""; \
	for arch in amd64 arm64; do \
		for f in $(DIST_VM_FILES); do [ -f build/vm/$$arch/$$f ] || { missing="$$missing $$arch"; break; }; done; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "dist: no VM image for$$missing in build/vm: building it (make vmimage)"; \
		$(MAKE) vmimage VMIMAGE_ARCHES="$$missing"; \
	fi
	@for arch in amd64 arm64; do \
		v=$$(sed -n 's/^ *"agentVersion": *"\([^"]*\)".*/\1/p' build/vm/$$arch/manifest.json); \
		[ "$$v" = "$(DIST_VERSION)" ] || echo "dist: note: the $$arch VM image's agent is $$v, not $(DIST_VERSION) (make vmimage rebuilds it)"; \
	done

dist-linux: dist-prep
	rm -rf $(DIST_DIR)/linux $(LINUX_TREE) $(DEB_ROOT)
	mkdir -p $(DIST_DIR)/linux $(LINUX_TREE)/bin $(LINUX_TREE)/build/vm/amd64
	GOOS=linux GOARCH=amd64 $(GOBUILD) -o $(LINUX_TREE)/bin/berth ./cmd/berth
	@if [ -f $(DIST_DESKTOP) ]; then \
		install -m 0755 $(DIST_DESKTOP) $(LINUX_TREE)/bin/; \
		echo "dist: with the desktop app ($(DIST_DESKTOP))"; \
	else \
		echo "dist: no $(DIST_DESKTOP): the Linux packages carry the berth CLI only (make gui builds the desktop app)"; \
	fi
	install -m 0644 $(addprefix build/vm/amd64/,$(DIST_VM_FILES)) $(LINUX_TREE)/build/vm/amd64/
	install -m 0644 README.md $(LINUX_TREE)/README.md
	$(DIST_TAR) -C $(DIST_STAGE) -cf - $(LINUX_NAME) | $(DIST_GZ) > $(DIST_DIR)/linux/$(LINUX_NAME).tar.gz
	@# The .deb: the same tree under /usr/lib/berth (the CLI finds the image
	@# beside its folder, as in a source tree), links in /usr/bin.
	mkdir -p $(DEB_ROOT)/DEBIAN $(DEB_ROOT)/usr/lib/berth $(DEB_ROOT)/usr/bin $(DEB_ROOT)/usr/share/doc/berth
	cp -R $(LINUX_TREE)/bin $(LINUX_TREE)/build $(DEB_ROOT)/usr/lib/berth/
	ln -s ../lib/berth/bin/berth $(DEB_ROOT)/usr/bin/berth
	install -m 0644 README.md $(DEB_ROOT)/usr/share/doc/berth/README.md
	@depends='$(DEB_DEPENDS)'; \
	if [ -f $(LINUX_TREE)/bin/berth-desktop ]; then \
		depends="$$depends, $(DEB_DEPENDS_DESKTOP)"; \
		ln -s ../lib/berth/bin/berth-desktop $(DEB_ROOT)/usr/bin/berth-desktop; \
		mkdir -p $(DEB_ROOT)/usr/share/applications $(DEB_ROOT)/usr/share/pixmaps; \
		install -m 0644 build/appicon.png $(DEB_ROOT)/usr/share/pixmaps/berth.png; \
		printf '%s\n' '[Desktop Entry]' 'Type=Application' 'Name=Berth' 'Comment=Containers on your desktop' \
			'Exec=berth-desktop' 'Icon=berth' 'Terminal=false' 'Categories=Development;System;' \
			> $(DEB_ROOT)/usr/share/applications/berth.desktop; \
	fi; \
	chmod -R u+rwX,go+rX,go-w $(DEB_ROOT); \
	size=$$(du -sk --apparent-size $(DEB_ROOT)/usr | cut -f1); \
	{ \
		echo "Package: berth"; \
		echo "Version: $(DIST_DEB_VERSION)"; \
		echo "Architecture: amd64"; \
		echo "Maintainer: $(DEB_MAINTAINER)"; \
		echo "Installed-Size: $$size"; \
		echo "Depends: $$depends"; \
		echo "Recommends: docker-cli | docker.io | docker-ce-cli"; \
		echo "Section: admin"; \
		echo "Priority: optional"; \
		echo "Homepage: https://$(MODULE)"; \
		echo "Description: containers on your desktop"; \
		echo " Berth boots a small Linux VM under QEMU whose guest agent is the container"; \
		echo " engine, and forwards the Docker Engine API to a local socket, so the docker"; \
		echo " CLI and Compose work unchanged. This package has the berth CLI, the desktop"; \
		echo " app when it was built, and the amd64 VM image."; \
	} > $(DEB_ROOT)/DEBIAN/control; \
	chmod 0644 $(DEB_ROOT)/DEBIAN/control; \
	find $(DEB_ROOT) -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DIST_DIR)/linux/$(DEB_FILE)
	@$(call dist_sums,$(DIST_DIR)/linux)

# The installer script (build/windows/installer/project.nsi) is given every input
# as an absolute path: BERTH_VERSION, BERTH_CLI (berth.exe), BERTH_DESKTOP and
# ARG_WAILS_AMD64_BINARY (the desktop app, Wails' name for it), BERTH_VM_DIR (the
# amd64 image's folder) and OUTFILE (the installer to write).
dist-windows: dist-prep
	rm -rf $(DIST_DIR)/windows $(WIN_STAGE)
	@if [ ! -f $(WIN_NSI) ]; then \
		echo "dist: no Windows installer: $(WIN_NSI) does not exist yet"; exit 0; \
	fi; \
	if ! command -v makensis >/dev/null; then \
		echo "dist: no Windows installer: makensis is not installed (Debian/Ubuntu: apt-get install nsis)"; exit 0; \
	fi; \
	if [ ! -f $(DIST_DESKTOP).exe ]; then \
		echo "dist: no Windows installer: $(DIST_DESKTOP).exe is not built (make gui)"; exit 0; \
	fi; \
	mkdir -p $(DIST_DIR)/windows $(WIN_STAGE)/vm; \
	GOOS=windows GOARCH=amd64 $(GOBUILD) -o $(WIN_STAGE)/berth.exe ./cmd/berth; \
	install -m 0644 $(addprefix build/vm/amd64/,$(DIST_VM_FILES)) $(WIN_STAGE)/vm/; \
	makensis -V2 \
		-DBERTH_VERSION=$(DIST_VERSION) \
		-DBERTH_CLI=$(CURDIR)/$(WIN_STAGE)/berth.exe \
		-DBERTH_DESKTOP=$(CURDIR)/$(DIST_DESKTOP).exe \
		-DARG_WAILS_AMD64_BINARY=$(CURDIR)/$(DIST_DESKTOP).exe \
		-DBERTH_VM_DIR=$(CURDIR)/$(WIN_STAGE)/vm \
		-DOUTFILE=$(CURDIR)/$(DIST_DIR)/windows/$(WIN_FILE) \
		$(WIN_NSI); \
	[ -f $(DIST_DIR)/windows/$(WIN_FILE) ] || { echo "dist: makensis wrote no $(DIST_DIR)/windows/$(WIN_FILE) (does $(WIN_NSI) use OUTFILE?)"; exit 1; }; \
	$(call dist_sums,$(DIST_DIR)/windows)

# The macOS bundle's inputs, laid out as in a checkout of the same commit: a Mac
# unpacks them over it and builds the binaries listed in darwin-binaries.txt.
dist-darwin: dist-prep
	rm -rf $(DIST_DIR)/darwin $(DARWIN_TREE)
	mkdir -p $(DIST_DIR)/darwin $(DARWIN_TREE)/build/vm/arm64
	@if [ -d build/darwin ]; then \
		cp -R build/darwin $(DARWIN_TREE)/build/darwin; \
	else \
		echo "dist: no build/darwin yet: the macOS inputs carry the VM image and the binary list only"; \
	fi
	install -m 0644 $(addprefix build/vm/arm64/,$(DIST_VM_FILES)) $(DARWIN_TREE)/build/vm/arm64/
	@{ \
		echo "# The darwin binaries of Berth $(DIST_VERSION), commit $(DIST_COMMIT), built on a Mac"; \
		echo "# from that commit with these inputs unpacked over it. One line each:"; \
		echo "# output<TAB>GOOS/GOARCH<TAB>CGO_ENABLED<TAB>command"; \
		printf '%s\t%s\t%s\t%s\n' \
			bin/berth darwin/arm64 0 "go build -trimpath -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth" \
			build/bin/Berth.app darwin/arm64 1 "wails build -platform darwin/arm64 -skipbindings -trimpath -ldflags '-X $(MODULE)/internal/version.Version=$(DIST_VERSION)'"; \
		echo "# build/darwin's recipe assembles Berth.app from them and the VM image in build/vm/arm64."; \
	} > $(DARWIN_TREE)/darwin-binaries.txt
	$(DIST_TAR) -C $(DIST_STAGE) -cf - $(DARWIN_NAME) | $(DIST_GZ) > $(DIST_DIR)/darwin/$(DARWIN_NAME).tar.gz
	@$(call dist_sums,$(DIST_DIR)/darwin)

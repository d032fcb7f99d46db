# The desktop app: the frontend (frontend/, Vite + React), the Wails window
# (main.go over app/ui) and their tests. Included by the main Makefile.
#
#   make gui       the desktop app for this OS into build/bin/ (berth-desktop),
#                  and the Windows one (berth-desktop.exe) cross-built
#   make test-ui   the frontend's unit tests (vitest), app/ui's, the Wails builds,
#                  and the desktop tests of e2e/: a real browser (Debian's chromium
#                  driven by playwright-core) against the dev build's Go backend,
#                  and the production window under Xvfb, against a running VM

# Debian packages of the Wails build (GTK, WebKitGTK 4.1) and of the window and
# browser tests.
DEB_PACKAGES += gcc pkg-config libgtk-3-dev libwebkit2gtk-4.1-dev xvfb xauth x11-utils imagemagick \
	xdotool chromium dbus dbus-x11 at-spi2-core

WAILS_VERSION := v2.13.0
GOBIN_DIR     := $(shell $(GO) env GOPATH 2>/dev/null)/bin
WAILS         := $(GOBIN_DIR)/wails
# The front end's toolchain (Vite 8) needs Node.js 20.19 or newer.
NODE_MIN      := 20.19.0
WAILS_TAGS    := webkit2_41
DESKTOP_BIN   := build/bin/berth-desktop
DESKTOP_DEV   := build/bin/berth-desktop-dev

.PHONY: deps-ui frontend gui gui-windows test-ui

deps-ui: deps
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "deps-ui: installing Node.js and npm from Debian"; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; \
	fi
	@v=$$(node --version | tr -d v); \
	if [ "$$(printf '%s\n%s\n' "$(NODE_MIN)" "$$v" | sort -V | head -1)" != "$(NODE_MIN)" ]; then \
		echo "deps-ui: Node.js $$v is too old: the front end (Vite 8) needs $(NODE_MIN) or newer."; \
		echo "         Install a newer Node.js (https://nodejs.org, or your distribution's backports) and run make again."; \
		exit 1; \
	fi
	@[ -x $(WAILS) ] && $(WAILS) version 2>/dev/null | grep -q '$(WAILS_VERSION)' || \
		{ echo "deps-ui: go install wails $(WAILS_VERSION)"; $(GO) install github.com/wailsapp/wails/v2/cmd/wails@$(WAILS_VERSION); }
	@[ -f frontend/node_modules/.package-lock.json ] && cmp -s frontend/package-lock.json frontend/node_modules/.lock-stamp || \
		{ cd frontend && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.lock-stamp; }
	@[ -f e2e/ui/node_modules/.package-lock.json ] && cmp -s e2e/ui/package-lock.json e2e/ui/node_modules/.lock-stamp || \
		{ cd e2e/ui && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.lock-stamp; }

# frontend/dist, which main.go embeds.
frontend: deps-ui
	cd frontend && npm run build

gui: frontend
	cd $(CURDIR) && PATH="$$PATH:$(GOBIN_DIR)" $(WAILS) build -tags $(WAILS_TAGS) -skipbindings -s -trimpath \
		-ldflags '-X $(MODULE)/internal/version.Version=$(VERSION)'
	$(MAKE) gui-windows
	@echo "desktop app: $(DESKTOP_BIN) (and $(DESKTOP_BIN).exe for Windows)"

gui-windows:
	PATH="$$PATH:$(GOBIN_DIR)" $(WAILS) build -platform windows/amd64 -skipbindings -s -trimpath \
		-ldflags '-X $(MODULE)/internal/version.Version=$(VERSION)'

# The dev build serves the frontend and the bound Go methods to a browser.
$(DESKTOP_DEV): frontend
	CGO_ENABLED=1 $(GO) build -tags dev,$(WAILS_TAGS) -trimpath -o $(DESKTOP_DEV) .

test-ui: gui $(DESKTOP_DEV) build vmimage
	cd frontend && npm test
	$(GO) test -count=1 ./app/ui/
	$(SUDO) env "PATH=$$PATH" BERTH_DESKTOP=$(CURDIR)/$(DESKTOP_BIN) BERTH_DESKTOP_DEV=$(CURDIR)/$(DESKTOP_DEV) \
		BERTH_UI_ARTIFACTS=$(CURDIR)/build/ui-artifacts \
		$(GO) test -count=1 -timeout 20m -run '^TestDesktop' -v ./e2e/

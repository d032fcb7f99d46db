# macOS code, checked from any OS. Included by the main Makefile.
#
#   make check-darwin   type-check every package for darwin/arm64 and darwin/amd64,
#                       test files included, without and with the "desktop" tag
#                       (the Wails app's main package): cgo is on, so the files a
#                       real Mac build compiles are the ones checked, against the
#                       real APIs of vz, Wails and systray. Nothing darwin builds
#                       here (cgo + the Apple SDK): internal/typecheck lists the
#                       packages with go/packages, never runs a C compiler, and
#                       type-checks them with go/types, faking package "C".
#                       Errors in our packages fail the target; the dependencies'
#                       are not ours and are ignored.

GO ?= go

DARWIN_ARCHES    ?= arm64 amd64
DARWIN_TAGS      ?= "" desktop
DARWIN_PACKAGES  ?= ./...
TYPECHECK_BIN    := bin/typecheck

.PHONY: check-darwin

check-darwin:
	@mkdir -p $(dir $(TYPECHECK_BIN))
	$(GO) build -o $(TYPECHECK_BIN) ./internal/typecheck
	@for arch in $(DARWIN_ARCHES); do \
		for tags in $(DARWIN_TAGS); do \
			$(TYPECHECK_BIN) -v -goos darwin -goarch $$arch -tags "$$tags" -test $(DARWIN_PACKAGES) || exit 1; \
		done; \
	done

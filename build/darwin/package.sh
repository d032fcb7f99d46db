#!/bin/sh
# Berth for macOS: the app bundle, its signature, the disk image and its
# notarization. Runs on macOS only (Xcode's command line tools, Go, the
# Wails CLI, Node.js for the frontend), from anywhere in the repository.
#
#   build/darwin/package.sh bundle     build/bin/Berth.app: `wails build` (the window,
#                                      Contents/MacOS/berth-desktop, and Info.plist from
#                                      build/darwin/Info.plist), the berth CLI beside it
#                                      (Contents/MacOS/berth, which runs the VM), and the
#                                      VM image in Contents/Resources/vm/<arch>/
#   build/darwin/package.sh sign       codesign both programs with the hardened runtime and
#                                      build/darwin/entitlements.plist, then the bundle
#   build/darwin/package.sh dmg        build/bin/Berth-<version>-<arch>.dmg (hdiutil, with a
#                                      link to /Applications), signed, and its SHA256SUMS
#   build/darwin/package.sh notarize   submit the disk image to Apple (xcrun notarytool),
#                                      wait, staple the ticket, check it with spctl
#   build/darwin/package.sh all        bundle, sign, dmg, and notarize when credentials are set
#
# Settings (environment):
#   ARCH            arm64 (default) or amd64
#   VERSION         the version stamped into the programs (default: git describe)
#   VM_DIR          the VM image to ship (default build/vm/$ARCH: vmlinuz, initrd.img,
#                   manifest.json, which `make vmimage` builds on Linux)
#   SIGN_IDENTITY   a "Developer ID Application: ..." identity in the keychain; "-" (the
#                   default) signs ad hoc, which runs on this Mac only and cannot be notarized
#   NOTARY_PROFILE  a notarytool keychain profile (xcrun notarytool store-credentials), or
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   an app-specific password instead
set -eu

die() {
	echo "package.sh: $*" >&2
	exit 1
}

if [ "$(uname -s)" != Darwin ]; then
	die "builds, signs and notarizes the macOS app and must run on macOS (this is $(uname -s)); on Linux, \`make -f darwin.mk check-darwin\` type-checks the macOS code"
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

MODULE=$(go list -m)
ARCH=${ARCH:-arm64}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
VM_DIR=${VM_DIR:-build/vm/$ARCH}
SIGN_IDENTITY=${SIGN_IDENTITY:--}
ENTITLEMENTS=build/darwin/entitlements.plist
APP=build/bin/Berth.app
DMG=build/bin/Berth-$VERSION-$ARCH.dmg
LDFLAGS="-s -w -X $MODULE/internal/version.Version=$VERSION"

case $ARCH in
arm64 | amd64) ;;
*) die "ARCH=$ARCH: arm64 or amd64" ;;
esac

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"
}

bundle() {
	need go "install Go (https://go.dev/dl)"
	need wails "go install github.com/wailsapp/wails/v2/cmd/wails@v2.13.0"
	need npm "install Node.js 20.19 or newer"
	for f in vmlinuz initrd.img manifest.json; do
		[ -f "$VM_DIR/$f" ] || die "no VM image in $VM_DIR ($f is missing): build it with \`make vmimage\` on Linux and copy build/vm/$ARCH here, or name it with VM_DIR"
	done
	grep -q "\"arch\": *\"$ARCH\"" "$VM_DIR/manifest.json" || die "$VM_DIR/manifest.json is not an $ARCH image"

	# The window: wails builds the frontend, the "desktop" build of main.go,
	# and the bundle (Info.plist from build/darwin/Info.plist, the icon from
	# build/appicon.png).
	rm -rf "$APP"
	wails build -platform "darwin/$ARCH" -skipbindings -trimpath -ldflags "$LDFLAGS"
	[ -x "$APP/Contents/MacOS/berth-desktop" ] || die "wails build made no $APP/Contents/MacOS/berth-desktop"

	# The CLI beside the window (app/ui finds it there); its daemon runs
	# the VM, and app/machine/vz is cgo.
	CGO_ENABLED=1 GOOS=darwin GOARCH=$ARCH go build -trimpath -ldflags "$LDFLAGS" \
		-o "$APP/Contents/MacOS/berth" ./cmd/berth

	# The VM image, sealed with the bundle.
	res="$APP/Contents/Resources/vm/$ARCH"
	mkdir -p "$res"
	cp "$VM_DIR/vmlinuz" "$VM_DIR/initrd.img" "$VM_DIR/manifest.json" "$res/"
	chmod 0644 "$res"/*
	echo "package.sh: $APP (berth-desktop, berth, vm/$ARCH)"
}

sign() {
	[ -d "$APP" ] || die "no $APP: run \`package.sh bundle\` first"
	need codesign "install Xcode's command line tools (xcode-select --install)"
	ts=--timestamp
	if [ "$SIGN_IDENTITY" = - ]; then
		ts=--timestamp=none
		echo "package.sh: signing ad hoc (SIGN_IDENTITY is unset): the app runs on this Mac only"
	fi
	# Inside out: the CLI, then the bundle, whose signature covers the
	# main program, Info.plist and Resources.
	codesign --force --options runtime $ts --entitlements "$ENTITLEMENTS" \
		--identifier com.berthdesktop.berth.cli --sign "$SIGN_IDENTITY" "$APP/Contents/MacOS/berth"
	codesign --force --options runtime $ts --entitlements "$ENTITLEMENTS" \
		--sign "$SIGN_IDENTITY" "$APP"
	codesign --verify --strict --deep --verbose=2 "$APP"
	for prog in berth-desktop berth; do
		codesign -d --entitlements - "$APP/Contents/MacOS/$prog" 2>/dev/null |
			grep -q com.apple.security.virtualization ||
			die "$prog was signed without com.apple.security.virtualization"
	done
	echo "package.sh: $APP signed ($SIGN_IDENTITY)"
}

dmg() {
	[ -d "$APP" ] || die "no $APP: run \`package.sh bundle\` and \`package.sh sign\` first"
	need hdiutil "hdiutil comes with macOS"
	stage=$(mktemp -d)
	trap 'rm -rf "$stage"' EXIT
	# ditto keeps the signature's extended attributes and the symlinks.
	ditto "$APP" "$stage/Berth.app"
	ln -s /Applications "$stage/Applications"
	rm -f "$DMG"
	hdiutil create -volname Berth -srcfolder "$stage" -fs HFS+ -format UDZO -imagekey zlib-level=9 -ov "$DMG"
	rm -rf "$stage"
	trap - EXIT
	if [ "$SIGN_IDENTITY" != - ]; then
		codesign --force --timestamp --sign "$SIGN_IDENTITY" "$DMG"
	fi
	(cd "$(dirname "$DMG")" && shasum -a 256 "$(basename "$DMG")" >"SHA256SUMS.darwin-$ARCH")
	echo "package.sh: $DMG"
}

notarize() {
	[ -f "$DMG" ] || die "no $DMG: run \`package.sh dmg\` first"
	[ "$SIGN_IDENTITY" != - ] || die "an ad hoc signature cannot be notarized: set SIGN_IDENTITY to a Developer ID Application identity"
	need xcrun "install Xcode's command line tools (xcode-select --install)"
	if [ -n "${NOTARY_PROFILE:-}" ]; then
		xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
	elif [ -n "${APPLE_ID:-}" ] && [ -n "${APPLE_TEAM_ID:-}" ] && [ -n "${APPLE_APP_PASSWORD:-}" ]; then
		xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
			--password "$APPLE_APP_PASSWORD" --wait
	else
		die "no notarization credentials: set NOTARY_PROFILE, or APPLE_ID, APPLE_TEAM_ID and APPLE_APP_PASSWORD"
	fi
	xcrun stapler staple "$DMG"
	xcrun stapler validate "$DMG"
	spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
	# The checksum covers the stapled image.
	(cd "$(dirname "$DMG")" && shasum -a 256 "$(basename "$DMG")" >"SHA256SUMS.darwin-$ARCH")
	echo "package.sh: $DMG notarized"
}

case ${1:-} in
bundle) bundle ;;
sign) sign ;;
dmg) dmg ;;
notarize) notarize ;;
all)
	bundle
	sign
	dmg
	if [ "$SIGN_IDENTITY" != - ] && { [ -n "${NOTARY_PROFILE:-}" ] || [ -n "${APPLE_ID:-}" ]; }; then
		notarize
	else
		echo "package.sh: not notarized (needs a Developer ID identity and notarytool credentials)"
	fi
	;;
*)
	sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac

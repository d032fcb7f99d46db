//go:build linux

package engine

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/berthdesktop/berth/guestagent/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// normalizePlatform spells p as the OCI image index does: amd64, arm64
// (no v8 variant), arm with v7 when unsaid, 386; an empty OS is linux and
// an empty architecture this engine's own (containerd's rules).
func normalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "" {
		p.OS = "linux"
	}
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "":
		p.Architecture = goruntime.GOARCH
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i486", "i586", "i686":
		p.Architecture = "386"
	}
	switch p.Architecture {
	case "arm64":
		if p.Variant == "v8" || p.Variant == "8" {
			p.Variant = ""
		}
	case "arm":
		if p.Variant == "" {
			p.Variant = "v7"
		}
		if !strings.HasPrefix(p.Variant, "v") {
			p.Variant = "v" + p.Variant
		}
	case "amd64":
		if p.Variant == "v1" {
			p.Variant = ""
		}
	}
	return p
}

// formatPlatform writes p as os/arch[/variant].
func formatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// variantLevel is the number of an arm "vN" or amd64 "vN" variant (0 when
// unsaid or unknown).
func variantLevel(v string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(v, "v"))
	return n
}

// platformMatches reports whether an image built for have runs as the
// platform want, as containerd's platforms.Only matches: same OS and
// architecture, and an older arm (or amd64 micro-architecture) variant
// serves a newer one.
func platformMatches(want, have ocispec.Platform) bool {
	want, have = normalizePlatform(want), normalizePlatform(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	switch want.Architecture {
	case "arm", "amd64":
		return variantLevel(have.Variant) <= variantLevel(want.Variant)
	}
	return want.Variant == have.Variant
}

// imagePlatform is the platform an image's config says it is for.
func imagePlatform(img *image.Image) ocispec.Platform {
	return normalizePlatform(ocispec.Platform{
		OS:           img.Config.OS,
		Architecture: img.Config.Architecture,
		Variant:      img.Config.Variant,
	})
}

// binfmtDir is where the kernel lists binfmt_misc handlers.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// qemuNames are the binfmt_misc handler names of emulated architectures.
var qemuNames = map[string]string{
	"amd64": "x86_64", "386": "i386", "arm64": "aarch64", "arm": "arm",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el",
}

// canRun reports whether this engine can run binaries of platform p: its
// own architecture (and 386 on amd64), or one the kernel emulates through
// a binfmt_misc handler fixed at registration (flag F), the only kind that
// works inside a container's root.
func canRun(p ocispec.Platform, binfmtDir string) bool {
	p = normalizePlatform(p)
	if p.OS != "linux" {
		return false
	}
	if p.Architecture == goruntime.GOARCH || (goruntime.GOARCH == "amd64" && p.Architecture == "386") {
		return true
	}
	name, ok := qemuNames[p.Architecture]
	if !ok {
		return false
	}
	data, err := os.ReadFile(filepath.Join(binfmtDir, "qemu-"+name))
	if err != nil {
		return false
	}
	enabled := false
	for _, line := range strings.Split(string(data), "\n") {
		if line == "enabled" {
			enabled = true
		}
		if flags, ok := strings.CutPrefix(line, "flags:"); ok && enabled && strings.Contains(flags, "F") {
			return true
		}
	}
	return false
}

// checkPlatform refuses a requested platform the image does not provide
// (dockerd's 404, so that the client pulls the right one) or that this
// engine cannot run.
func checkPlatform(ref string, img *image.Image, want ocispec.Platform, binfmtDir string) error {
	want = normalizePlatform(want)
	if !platformMatches(want, imagePlatform(img)) {
		return notFound("image with reference %s was found but does not provide the specified platform (%s)", ref, formatPlatform(want))
	}
	if !canRun(want, binfmtDir) {
		return invalid("image with reference %s is for platform %s, which this engine (linux/%s) cannot run: no emulator is registered for it", ref, formatPlatform(want), goruntime.GOARCH)
	}
	return nil
}

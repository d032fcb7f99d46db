package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Config is one image build.
type Config struct {
	Arch     string // amd64 or arm64
	RepoRoot string // the module root, where ./cmd/berth-agent is
	OutDir   string // the image goes to OutDir/<arch>/
	CacheDir string // downloaded packages go to CacheDir/<arch>/
	Version  string // agent version stamped into the binary
	Log      *slog.Logger
}

// Modules asked for, in three lists that pid1 loads as one graph, two at a
// time, earlier lists first: the devices pid1 needs at once
// (etc/berth/modules.load: the disk, the serial port, the network,
// virtiofs and fuse), then those only the engine needs (etc/berth/modules-engine.load),
// which the engine's start waits for, then those that can come last
// (etc/berth/modules-late.load: vsock, which only the channel's vsock
// transport waits for, and the power button's). Each module comes after its
// dependencies; a later list leaves out what an earlier one has; those the
// kernel lacks (or has built in) are skipped.
var (
	bootModules = []string{
		// The network first: its DHCP exchange is the longest wait before
		// the engine starts, and goes on while the disk mounts.
		"virtio_pci", "virtio_mmio", "virtio_net", "virtio_blk", "virtio_console", "virtiofs",
		// FUSE shares (Hyper-V) need /dev/fuse; virtiofs needs fuse too.
		"fuse",
	}
	lateModules = []string{
		"vsock", "vmw_vsock_virtio_transport", "evdev", "button", "gpio_keys",
	}
	engineModules = []string{
		"overlay", "veth", "bridge", "br_netfilter",
		"nf_tables", "nft_nat", "nft_masq", "nft_chain_nat", "nft_fib_ipv4", "nft_ct",
		// netlink handles open an XFRM socket beside the route one.
		"xfrm_user",
		// Rosetta's handler of x86-64 binaries (berth.rosetta).
		"binfmt_misc",
	}
)

// userPackages are the packages mke2fs and resize2fs come from, and
// busybox-static for `berth shell`.
var userPackages = []string{"e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1", "libc6", "busybox-static"}

// busyboxPath is the static busybox in the initrd; /bin/sh links to it. It
// runs its applets without a link per applet (Debian builds it with
// FEATURE_SH_STANDALONE), so the shell has ls, ps, mount, ... as they are.
const busyboxPath = "bin/busybox"

// userExecutables are copied with their libraries.
var userExecutables = []string{"sbin/mke2fs", "sbin/resize2fs"}

// sourceDateEpoch is the mtime of every initrd entry.
const sourceDateEpoch = 0

// Output is one built file and its digest.
type Output struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes one built image.
type Manifest struct {
	Arch          string    `json:"arch"`
	KernelRelease string    `json:"kernelRelease"`
	AgentVersion  string    `json:"agentVersion"`
	AgentSHA256   string    `json:"agentSha256"`
	InitSHA256    string    `json:"initSha256"`
	Packages      []Package `json:"packages"`
	Modules       []string  `json:"modules"`
	Outputs       []Output  `json:"outputs"`
}

// Build assembles the image of cfg.Arch and returns its manifest.
func Build(ctx context.Context, cfg Config) (*Manifest, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Arch != "amd64" && cfg.Arch != "arm64" {
		return nil, fmt.Errorf("unsupported architecture %q", cfg.Arch)
	}
	if err := ensureForeignArch(ctx, cfg.Arch); err != nil {
		return nil, fmt.Errorf("enable architecture %s: %w", cfg.Arch, err)
	}
	cache := filepath.Join(cfg.CacheDir, cfg.Arch)
	m := &Manifest{Arch: cfg.Arch, AgentVersion: cfg.Version}

	// Inputs: the kernel meta package names the versioned kernel.
	meta, err := fetchPackage(ctx, cache, "linux-image-cloud-"+cfg.Arch, cfg.Arch)
	if err != nil {
		return nil, err
	}
	metaCtl, err := showPackage(ctx, meta.Name, cfg.Arch)
	if err != nil {
		return nil, err
	}
	kernelName, err := KernelDependency(metaCtl["Depends"])
	if err != nil {
		return nil, err
	}
	names := append([]string{kernelName}, userPackages...)
	m.Packages = append(m.Packages, meta)
	for _, n := range names {
		p, err := fetchPackage(ctx, cache, n, cfg.Arch)
		if err != nil {
			return nil, err
		}
		m.Packages = append(m.Packages, p)
	}

	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", cfg.OutDir, err)
	}
	work, err := os.MkdirTemp(cfg.OutDir, ".work-"+cfg.Arch+"-")
	if err != nil {
		return nil, fmt.Errorf("make work dir: %w", err)
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	for _, p := range m.Packages[1:] {
		if err := extractPackage(ctx, filepath.Join(cache, p.File), root); err != nil {
			return nil, err
		}
	}
	kver := strings.TrimSuffix(strings.TrimPrefix(kernelName, "linux-image-"), "-unsigned")
	m.KernelRelease = kver
	vmlinuz := filepath.Join(root, "boot", "vmlinuz-"+kver)
	if _, err := os.Stat(vmlinuz); err != nil {
		return nil, fmt.Errorf("kernel image: %w", err)
	}

	a := NewArchive()
	// Modules in dependency order; each list leaves out what an earlier
	// one has.
	if err := run0(ctx, "depmod", "-b", root, kver); err != nil {
		return nil, err
	}
	loaded := map[string]bool{}
	for _, l := range []struct {
		file string
		want []string
	}{{"etc/berth/modules.load", bootModules}, {"etc/berth/modules-engine.load", engineModules}, {"etc/berth/modules-late.load", lateModules}} {
		mods, err := orderedModules(ctx, root, kver, l.want, loaded)
		if err != nil {
			return nil, err
		}
		var list strings.Builder
		for _, mod := range mods {
			if err := a.Add(Entry{Path: mod.Path, Mode: modeFile | 0o644, Source: filepath.Join(root, mod.Path)}); err != nil {
				return nil, err
			}
			m.Modules = append(m.Modules, "/"+mod.Path)
			list.WriteString("/" + mod.Path + ":")
			for _, d := range mod.Deps {
				list.WriteString(" /" + d)
			}
			list.WriteString("\n")
		}
		if err := a.Add(Entry{Path: l.file, Mode: modeFile | 0o644, Data: []byte(list.String())}); err != nil {
			return nil, err
		}
	}
	// mke2fs and resize2fs with their libraries and configuration.
	files, err := ELFClosure(root, cfg.Arch, userExecutables)
	if err != nil {
		return nil, err
	}
	files = append(files, "etc/mke2fs.conf", busyboxPath)
	for _, f := range files {
		if err := addHostFile(a, root, f); err != nil {
			return nil, err
		}
	}
	// The agent (the engine), and PID 1 in a binary of its own (/init),
	// which starts without the engine's package initialisation.
	agent := filepath.Join(work, "berth-agent")
	if err := buildAgent(ctx, cfg, agent, "./cmd/berth-agent"); err != nil {
		return nil, err
	}
	if m.AgentSHA256, err = fileSHA256(agent); err != nil {
		return nil, err
	}
	initBin := filepath.Join(work, "berth-init")
	if err := buildAgent(ctx, cfg, initBin, "./cmd/berth-init"); err != nil {
		return nil, err
	}
	if m.InitSHA256, err = fileSHA256(initBin); err != nil {
		return nil, err
	}
	entries := []Entry{
		{Path: "berth-agent", Mode: modeFile | 0o755, Source: agent},
		{Path: "init", Mode: modeFile | 0o755, Source: initBin},
		{Path: "bin/sh", Mode: modeSymlink | 0o777, Link: "busybox"},
		{Path: "dev/console", Mode: modeCharDev | 0o600, DevMajor: 5, DevMinor: 1},
		{Path: "dev", Mode: modeDir | 0o755},
		{Path: "proc", Mode: modeDir | 0o555},
		{Path: "sys", Mode: modeDir | 0o555},
		{Path: "run", Mode: modeDir | 0o755},
		{Path: "var/run", Mode: modeSymlink | 0o777, Link: "../run"},
		{Path: "tmp", Mode: modeDir | 0o1777},
		{Path: "root", Mode: modeDir | 0o700},
		{Path: "var/lib/berth", Mode: modeDir | 0o711},
	}
	for _, e := range entries {
		if err := a.Add(e); err != nil {
			return nil, err
		}
	}

	dest := filepath.Join(cfg.OutDir, cfg.Arch)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", dest, err)
	}
	var initrd bytes.Buffer
	if err := a.WriteTo(&initrd, sourceDateEpoch); err != nil {
		return nil, fmt.Errorf("write initrd: %w", err)
	}
	kernel, err := os.ReadFile(vmlinuz)
	if err != nil {
		return nil, fmt.Errorf("read kernel: %w", err)
	}
	for _, o := range []struct {
		name string
		data []byte
	}{{"vmlinuz", kernel}, {"initrd.img", initrd.Bytes()}} {
		if err := atomicfile.Write(filepath.Join(dest, o.name), o.data, 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(o.data)
		m.Outputs = append(m.Outputs, Output{Name: o.name, Size: int64(len(o.data)), SHA256: hex.EncodeToString(sum[:])})
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dest, "manifest.json"), append(mj, '\n'), 0o644); err != nil {
		return nil, err
	}
	log.Info("vmimage: built", "arch", cfg.Arch, "kernel", kver, "initrdBytes", initrd.Len(), "modules", len(m.Modules))
	return m, nil
}

// addHostFile adds root/rel to the archive as a file or symlink with its
// permission bits.
func addHostFile(a *Archive, root, rel string) error {
	full := filepath.Join(root, rel)
	fi, err := os.Lstat(full)
	if err != nil {
		return fmt.Errorf("initrd input %s: %w", rel, err)
	}
	perm := uint32(fi.Mode().Perm())
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(full)
		if err != nil {
			return fmt.Errorf("initrd input %s: %w", rel, err)
		}
		return a.Add(Entry{Path: rel, Mode: modeSymlink | 0o777, Link: target})
	}
	return a.Add(Entry{Path: rel, Mode: modeFile | perm, Source: full})
}

// moduleDep is one module file to load and the module files (root-relative)
// that must be loaded before it: its dependencies and soft dependencies.
type moduleDep struct {
	Path string
	Deps []string
}

func run0(ctx context.Context, name string, args ...string) error {
	_, err := run(ctx, "", name, args...)
	return err
}

// orderedModules returns the module files for want and everything they
// need, each after what it needs, without repeats and without those in
// loaded (in an earlier list), which it adds to; a module's dependencies
// name those of earlier lists too. The kernel tree must have been through
// depmod.
func orderedModules(ctx context.Context, root, kver string, want []string, loaded map[string]bool) ([]moduleDep, error) {
	showDepends := func(mod string) ([]string, error) {
		text, err := run(ctx, "", "modprobe", "-d", root, "-S", kver, "--show-depends", mod)
		if err != nil {
			return nil, err
		}
		paths, err := ParseShowDepends(string(text), root)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", mod, err)
		}
		return paths, nil
	}
	var out []moduleDep
	seen := loaded
	for _, mod := range want {
		paths, err := showDepends(mod)
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				continue // absent from this kernel, or built in
			}
			return nil, err
		}
		for _, p := range paths {
			if seen[p] {
				continue
			}
			seen[p] = true
			// What this module itself needs is what modprobe lists before it.
			own, err := showDepends(strings.TrimSuffix(path.Base(p), ".ko"))
			if err != nil {
				return nil, err
			}
			if len(own) == 0 || own[len(own)-1] != p {
				return nil, fmt.Errorf("module %s: modprobe lists %v", p, own)
			}
			// Each comes earlier in this list or in an earlier one.
			deps := append([]string(nil), own[:len(own)-1]...)
			out = append(out, moduleDep{Path: p, Deps: deps})
		}
	}
	return out, nil
}

// ParseShowDepends turns `modprobe --show-depends` output into module file
// paths relative to root ("builtin" lines need no file).
func ParseShowDepends(text, root string) ([]string, error) {
	var out []string
	prefix := strings.TrimSuffix(root, "/") + "/"
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "builtin" {
			continue
		}
		if f[0] != "insmod" || len(f) < 2 {
			return nil, fmt.Errorf("unexpected modprobe line %q", line)
		}
		if !strings.HasPrefix(f[1], prefix) || !strings.HasSuffix(f[1], ".ko") {
			return nil, fmt.Errorf("module path %q is not an uncompressed module under the kernel root", f[1])
		}
		rel := path.Clean(strings.TrimPrefix(f[1], prefix))
		if strings.HasPrefix(rel, "../") || path.IsAbs(rel) || rel == ".." {
			return nil, fmt.Errorf("module path %q escapes the kernel root", f[1])
		}
		out = append(out, rel)
	}
	return out, nil
}

// buildAgent cross-compiles a static guest binary (pkg: ./cmd/berth-agent
// or ./cmd/berth-init) reproducibly.
func buildAgent(ctx context.Context, cfg Config, out, pkg string) error {
	ldflags := "-s -w -buildid= -X github.com/berthdesktop/berth/guestagent/pid1.Version=" + cfg.Version
	cmd := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, pkg}
	return goCommand(ctx, cfg.RepoRoot, cfg.Arch, cmd...)
}

func goCommand(ctx context.Context, dir, arch string, args ...string) error {
	goBin := filepath.Join(runtimeGOROOT(), "bin", "go")
	c := commandEnv(ctx, dir, goBin, args, "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s (GOARCH=%s): %w: %s", strings.Join(args, " "), arch, err, out)
	}
	return nil
}

// sortedKeys is used for stable logging of maps.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

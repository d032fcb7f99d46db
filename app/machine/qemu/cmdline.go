package qemu

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthdesktop/berth/app/machine"
)

// hostEnv is what the driver found out about the host before building a
// command line; tests fill it by hand.
type hostEnv struct {
	// KVM: /dev/kvm is usable and the guest has the host's architecture.
	KVM bool
	// VsockCID is the guest CID for vhost-vsock; 0 means no vsock device and
	// the virtio-serial fallback instead.
	VsockCID uint32
	// DirectIO: the disk's filesystem accepts O_DIRECT (cache=none).
	DirectIO bool
	// Now is the host clock written to berth.time.
	Now time.Time
}

// Names of the runtime files in Config.StateDir.
const (
	qmpSocket  = "qmp.sock"
	linkSocket = "link.sock"
	pidFile    = "qemu.pid"
	qemuLog    = "qemu.log"
)

func fsSocket(i int) string { return fmt.Sprintf("fs%d.sock", i) }

// maxSocketPath is the longest unix socket path Linux accepts (sun_path
// minus the terminating NUL).
const maxSocketPath = 107

// binaryFor returns the QEMU system emulator for arch.
func binaryFor(arch machine.Arch) string {
	if arch == machine.ArchARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// optEscape escapes a value for a QEMU -drive/-chardev option list, where a
// comma is written twice.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// kernelCmdline is the guest kernel command line: console, panic handling,
// the berth.* parameters of docs/CHANNEL.md, then cfg.Cmdline.
func kernelCmdline(cfg machine.Config, env hostEnv) string {
	console := "ttyS0"
	if cfg.Arch == machine.ArchARM64 {
		console = "ttyAMA0"
	}
	words := []string{"console=" + console, "quiet", "panic=-1"}
	if env.VsockCID != 0 {
		words = append(words, "berth.link=vsock")
	} else {
		words = append(words, "berth.link=serial")
	}
	words = append(words, "berth.time="+strconv.FormatInt(env.Now.Unix(), 10))
	if len(cfg.Shares) > 0 {
		shares := make([]string, len(cfg.Shares))
		for i, s := range cfg.Shares {
			shares[i] = s.Tag + "=" + s.GuestPath
		}
		words = append(words, "berth.shares="+strings.Join(shares, ","))
	}
	words = append(words, cfg.Cmdline...)
	return strings.Join(words, " ")
}

// buildArgs turns cfg into QEMU's arguments (without the binary).
func buildArgs(cfg machine.Config, env hostEnv) ([]string, error) {
	state := cfg.StateDir
	for _, name := range []string{qmpSocket, linkSocket, fsSocket(len(cfg.Shares))} {
		if p := filepath.Join(state, name); len(p) > maxSocketPath {
			return nil, fmt.Errorf("%w: StateDir: socket path %s is longer than %d bytes", machine.ErrInvalidConfig, p, maxSocketPath)
		}
	}
	args := []string{"-name", optEscape(cfg.Name)}
	arm := cfg.Arch == machine.ArchARM64
	switch {
	case env.KVM:
		args = append(args, "-accel", "kvm", "-cpu", "host")
	case arm:
		args = append(args, "-accel", "tcg,thread=multi", "-cpu", "cortex-a57")
	default:
		args = append(args, "-accel", "tcg,thread=multi", "-cpu", "max")
	}
	if arm {
		args = append(args, "-M", "virt")
	} else {
		args = append(args, "-M", "q35")
	}
	args = append(args,
		"-smp", strconv.Itoa(cfg.CPUs),
		"-m", strconv.Itoa(cfg.MemoryMiB),
		"-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
	)
	if cfg.ConsoleLogPath != "" {
		args = append(args, "-chardev", "file,id=con0,path="+optEscape(cfg.ConsoleLogPath), "-serial", "chardev:con0")
	} else {
		args = append(args, "-serial", "null")
	}
	args = append(args, "-kernel", cfg.Kernel)
	if cfg.Initrd != "" {
		args = append(args, "-initrd", cfg.Initrd)
	}
	args = append(args, "-append", kernelCmdline(cfg, env))
	args = append(args,
		"-qmp", "unix:"+filepath.Join(state, qmpSocket)+",server=on,wait=off",
		"-pidfile", filepath.Join(state, pidFile),
		"-device", "virtio-rng-pci",
	)
	if cfg.Disk.Path != "" {
		cache := "cache=none,aio=threads"
		if !env.DirectIO {
			cache = "cache=writeback,aio=threads"
		}
		args = append(args,
			"-drive", "file="+optEscape(cfg.Disk.Path)+",format=raw,if=none,id=d0,"+cache+",discard=unmap",
			"-device", "virtio-blk-pci,drive=d0",
		)
	}
	if env.VsockCID != 0 {
		args = append(args, "-device", "vhost-vsock-pci,guest-cid="+strconv.FormatUint(uint64(env.VsockCID), 10))
	} else {
		args = append(args,
			"-device", "virtio-serial-pci",
			"-chardev", "socket,id=link,path="+optEscape(filepath.Join(state, linkSocket))+",server=on,wait=off",
			"-device", "virtserialport,chardev=link,name=berth.link",
		)
	}
	netdev := "user,id=n0"
	if cfg.Subnet != "" {
		// QEMU's user network: the guest gets .15, the gateway (the
		// host's loopback) is .2 and the resolver .3 of this network.
		netdev += ",net=" + cfg.Subnet
	}
	args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0")
	if len(cfg.Shares) > 0 {
		// vhost-user-fs needs guest memory shared with virtiofsd.
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", cfg.MemoryMiB),
			"-numa", "node,memdev=mem",
		)
		for i, s := range cfg.Shares {
			id := "fs" + strconv.Itoa(i)
			args = append(args,
				"-chardev", "socket,id="+id+",path="+optEscape(filepath.Join(state, fsSocket(i))),
				"-device", "vhost-user-fs-pci,chardev="+id+",tag="+s.Tag,
			)
		}
	}
	return args, nil
}

// virtiofsdArgs is the command line of QEMU's virtiofsd for share i.
func virtiofsdArgs(cfg machine.Config, i int) []string {
	return []string{
		"--socket-path=" + filepath.Join(cfg.StateDir, fsSocket(i)),
		"-o", "source=" + cfg.Shares[i].HostPath,
		"-o", "cache=auto",
		"-o", "sandbox=chroot",
		"-o", "xattr",
	}
}

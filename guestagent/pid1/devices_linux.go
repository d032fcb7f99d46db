package pid1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berthdesktop/berth/guestagent/link"
)

// linkVirtioPorts creates /dev/virtio-ports/NAME for every named
// virtio-serial port, as udev would. Port names arrive from the host shortly
// after the device appears, so when wantLink is set it waits (up to 3 s) for
// the channel's port.
func linkVirtioPorts(log *slog.Logger, wantLink bool) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		found := makePortLinks(log)
		if !wantLink || found[link.SerialPortName] || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func makePortLinks(log *slog.Logger) map[string]bool {
	found := map[string]bool{}
	dirs, _ := filepath.Glob("/sys/class/virtio-ports/*")
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "name"))
		name := strings.TrimSpace(string(raw))
		if err != nil || name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			continue
		}
		dev := filepath.Base(d)
		if _, err := os.Stat(filepath.Join("/dev", dev)); err != nil {
			continue
		}
		if err := os.MkdirAll("/dev/virtio-ports", 0o755); err != nil {
			log.Warn("berth: virtio-ports dir", "err", err)
			return found
		}
		l := filepath.Join("/dev/virtio-ports", name)
		_ = os.Remove(l)
		if err := os.Symlink("../"+dev, l); err != nil {
			log.Warn("berth: virtio port link", "name", name, "err", err)
			continue
		}
		found[name] = true
	}
	return found
}

// waitForPath waits up to d for path to exist.
func waitForPath(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		_, err := os.Stat(path)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setupDisk makes the data disk's filesystem on first boot, mounts it at the
// data root, and grows it online when the device has grown.
func (g *guest) setupDisk() error {
	dev := g.params.Disk
	if err := waitForPath(dev, 5*time.Second); err != nil {
		return fmt.Errorf("data disk %s: %w", dev, err)
	}
	sb, err := readSuperblock(dev)
	if errors.Is(err, ErrNoFilesystem) {
		g.log.Info("berth: making filesystem on the data disk", "device", dev)
		out, mkErr := g.reaper.run(context.Background(), "mke2fs", "-t", "ext4", "-q", "-F", "-L", "berth-data",
			"-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", dev)
		if mkErr != nil {
			return fmt.Errorf("mke2fs %s: %w: %s", dev, mkErr, out)
		}
		sb, err = readSuperblock(dev)
	}
	if err != nil {
		return err
	}
	if err := mount(dev, DataRoot, "ext4", unix.MS_NOATIME, "discard"); err != nil {
		return err
	}
	g.mounts = append(g.mounts, DataRoot)
	size, err := deviceSize(dev)
	if err != nil {
		return err
	}
	if NeedsGrow(size, sb) {
		g.log.Info("berth: growing the data filesystem", "device", dev, "from", sb.Bytes(), "to", size)
		out, err := g.reaper.run(context.Background(), "resize2fs", dev)
		if err != nil {
			return fmt.Errorf("resize2fs %s: %w: %s", dev, err, out)
		}
	}
	return nil
}

// NeedsGrow tells whether a device of devBytes holds room for the filesystem
// sb to grow by at least 16 MiB.
func NeedsGrow(devBytes uint64, sb Superblock) bool {
	return devBytes > sb.Bytes() && devBytes-sb.Bytes() >= 16<<20
}

func readSuperblock(dev string) (Superblock, error) {
	f, err := os.Open(dev)
	if err != nil {
		return Superblock{}, fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	buf := make([]byte, superblockSize)
	if _, err := f.ReadAt(buf, superblockOffset); err != nil {
		return Superblock{}, fmt.Errorf("read superblock of %s: %w", dev, err)
	}
	sb, err := ParseSuperblock(buf)
	if err != nil {
		return Superblock{}, fmt.Errorf("%s: %w", dev, err)
	}
	return sb, nil
}

func deviceSize(dev string) (uint64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dev, err)
	}
	defer f.Close()
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		return 0, fmt.Errorf("size of %s: %w", dev, errno)
	}
	return size, nil
}

// ShareStaging is where the one device of a multiple-directory share
// (berth.sharedev) is mounted; each share is a bind mount of one of its
// directories.
const ShareStaging = "/run/berth-shares"

// mountShares mounts each virtiofs share at its path: each its own device,
// or, with berth.sharedev, each a directory of that one device.
func (g *guest) mountShares() {
	if g.params.ShareDev != "" {
		dev := g.params.ShareDev
		mounted, err := mountShareDirs(func(staging string) error {
			return mount(dev, staging, "virtiofs", unix.MS_NOSUID|unix.MS_NODEV, "")
		}, ShareStaging, g.params.Shares, g.log)
		if err != nil {
			g.log.Error("berth: shares", "device", dev, "err", err)
		}
		g.mounts = append(g.mounts, mounted...)
		return
	}
	for _, s := range g.params.Shares {
		if err := mount(s.Tag, s.Path, "virtiofs", 0, ""); err != nil {
			g.log.Error("berth: share", "tag", s.Tag, "path", s.Path, "err", err)
			continue
		}
		g.mounts = append(g.mounts, s.Path)
	}
}

// mountShareDirs mounts a multiple-directory share: mountDevice mounts the
// device at staging, which is then made private (nothing mounted under a
// share propagates back to it), and each share's directory (named by its
// tag) is bind-mounted at its path. A share whose directory is missing or
// not a directory is logged and left out. It returns the paths mounted,
// staging first; the error is the device's.
func mountShareDirs(mountDevice func(staging string) error, staging string, shares []Share, log *slog.Logger) ([]string, error) {
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return nil, fmt.Errorf("share staging %s: %w", staging, err)
	}
	if err := mountDevice(staging); err != nil {
		return nil, err
	}
	mounted := []string{staging}
	if err := unix.Mount("", staging, "", unix.MS_PRIVATE, ""); err != nil {
		log.Warn("berth: make share staging private", "path", staging, "err", err)
	}
	for _, s := range shares {
		src := filepath.Join(staging, s.Tag)
		// Lstat: a symlink at the device's root must not lead the bind
		// mount elsewhere in the guest.
		fi, err := os.Lstat(src)
		if err != nil || !fi.IsDir() {
			log.Error("berth: share directory", "dir", s.Tag, "path", s.Path, "err", fmt.Errorf("%s is not a directory of the share (%v)", src, err))
			continue
		}
		if err := mount(src, s.Path, "", unix.MS_BIND, ""); err != nil {
			log.Error("berth: share", "dir", s.Tag, "path", s.Path, "err", err)
			continue
		}
		mounted = append(mounted, s.Path)
	}
	return mounted, nil
}

// watchPowerButton waits for a power key press on any input device.
func watchPowerButton(log *slog.Logger, onPress func()) {
	seen := map[string]bool{}
	for tries := 0; tries < 50; tries++ {
		devs, _ := filepath.Glob("/dev/input/event*")
		for _, d := range devs {
			if seen[d] {
				continue
			}
			seen[d] = true
			go readPowerKey(log, d, onPress)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readPowerKey(log *slog.Logger, dev string, onPress func()) {
	f, err := os.Open(dev)
	if err != nil {
		log.Debug("berth: input device", "device", dev, "err", err)
		return
	}
	defer f.Close()
	buf := make([]byte, 64*inputEventSize)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		evs, err := ParseInputEvents(buf[:n-n%inputEventSize])
		if err != nil {
			continue
		}
		for _, e := range evs {
			if e.IsPowerPress() {
				log.Info("berth: power button pressed", "device", dev)
				onPress()
			}
		}
	}
}

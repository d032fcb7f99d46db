package pid1

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SwapPath is the VM's swap file, on the data disk.
const SwapPath = DataRoot + "/swapfile"

// setupSwap makes the swap file the size berth.swap asks (MiB) and turns
// it on; with no swap asked, a swap file left from before is removed.
func (g *guest) setupSwap() error {
	mib := g.params.SwapMiB
	if mib <= 0 {
		if err := os.Remove(SwapPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", SwapPath, err)
		}
		return nil
	}
	size := int64(mib) << 20
	if fi, err := os.Stat(SwapPath); err != nil || fi.Size() != size {
		if err := makeSwapFile(SwapPath, size, os.Getpagesize()); err != nil {
			os.Remove(SwapPath)
			return err
		}
	}
	p, err := unix.BytePtrFromString(SwapPath)
	if err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); errno != 0 {
		return fmt.Errorf("swapon %s: %w", SwapPath, errno)
	}
	g.log.Info("berth: swap on", "file", SwapPath, "MiB", mib)
	return nil
}

// makeSwapFile writes a swap file of size bytes: allocated (swap files
// may have no holes), with the version 1 header mkswap writes.
func makeSwapFile(path string, size int64, pageSize int) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("swap file: %w", err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		return fmt.Errorf("swap file %s: allocate %d bytes: %w", path, size, err)
	}
	hdr, err := SwapHeader(size, pageSize)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("swap file %s: %w", path, err)
	}
	return f.Sync()
}

// swapOff turns the swap file off (before the data disk is unmounted).
func swapOff() {
	p, err := unix.BytePtrFromString(SwapPath)
	if err != nil {
		return
	}
	unix.Syscall(unix.SYS_SWAPOFF, uintptr(unsafe.Pointer(p)), 0, 0)
}

package qemu

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// KVM ioctls and structure offsets of linux/kvm.h (x86).
const (
	kvmGetAPIVersion       = 0xAE00
	kvmCreateVM            = 0xAE01
	kvmGetVCPUMmapSize     = 0xAE04
	kvmCreateVCPU          = 0xAE41
	kvmSetUserMemoryRegion = 0x4020AE46
	kvmRun                 = 0xAE80
	kvmSetRegs             = 0x4090AE82
	kvmGetSregs            = 0x8138AE83
	kvmSetSregs            = 0x4138AE84
	kvmGetMSRs             = 0xC008AE88
	kvmSetMSRs             = 0x4008AE89
	kvmExitHLT             = 5
	msrArchCapabilities    = 0x10a
)

// kvmWorks runs a one-instruction guest (HLT in real mode) on /dev/kvm and
// checks that a vCPU accepts the feature MSR value KVM itself advertises,
// as QEMU sets it. Opening /dev/kvm is not enough: nested hosts can open it
// and run trivial guests yet reject their own feature MSRs, and there QEMU
// aborts with -cpu host and a Linux guest hangs in early boot.
func kvmWorks() bool {
	res := make(chan error, 1)
	go func() { res <- runHLTGuest() }()
	select {
	case err := <-res:
		return err == nil
	case <-time.After(2 * time.Second):
		// A vCPU that does not come back: KVM is unusable. The probe's
		// thread stays blocked; that happens once per process at most.
		return false
	}
}

func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

func runHLTGuest() error {
	kvm, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(kvm)
	if v, err := ioctl(kvm, kvmGetAPIVersion, 0); err != nil || v != 12 {
		return fmt.Errorf("kvm api version %d: %v", v, err)
	}
	vmfd, err := ioctl(kvm, kvmCreateVM, 0)
	if err != nil {
		return fmt.Errorf("create vm: %w", err)
	}
	defer unix.Close(int(vmfd))
	mem, err := unix.Mmap(-1, 0, 0x2000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	mem[0x1000] = 0xF4 // hlt
	var region [32]byte
	binary.LittleEndian.PutUint32(region[0:], 0)                                         // slot
	binary.LittleEndian.PutUint32(region[4:], 0)                                         // flags
	binary.LittleEndian.PutUint64(region[8:], 0)                                         // guest_phys_addr
	binary.LittleEndian.PutUint64(region[16:], uint64(len(mem)))                         // memory_size
	binary.LittleEndian.PutUint64(region[24:], uint64(uintptr(unsafe.Pointer(&mem[0])))) // userspace_addr
	if _, err := ioctl(int(vmfd), kvmSetUserMemoryRegion, uintptr(unsafe.Pointer(&region[0]))); err != nil {
		return fmt.Errorf("set memory: %w", err)
	}
	vcpu, err := ioctl(int(vmfd), kvmCreateVCPU, 0)
	if err != nil {
		return fmt.Errorf("create vcpu: %w", err)
	}
	defer unix.Close(int(vcpu))
	size, err := ioctl(kvm, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return err
	}
	run, err := unix.Mmap(int(vcpu), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	defer unix.Munmap(run)
	var sregs [312]byte
	if _, err := ioctl(int(vcpu), kvmGetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fmt.Errorf("get sregs: %w", err)
	}
	binary.LittleEndian.PutUint64(sregs[0:], 0)  // cs.base
	binary.LittleEndian.PutUint16(sregs[12:], 0) // cs.selector
	if _, err := ioctl(int(vcpu), kvmSetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fmt.Errorf("set sregs: %w", err)
	}
	var regs [144]byte
	binary.LittleEndian.PutUint64(regs[128:], 0x1000) // rip
	binary.LittleEndian.PutUint64(regs[136:], 0x2)    // rflags
	if _, err := ioctl(int(vcpu), kvmSetRegs, uintptr(unsafe.Pointer(&regs[0]))); err != nil {
		return fmt.Errorf("set regs: %w", err)
	}
	if _, err := ioctl(int(vcpu), kvmRun, 0); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if reason := binary.LittleEndian.Uint32(run[8:]); reason != kvmExitHLT {
		return fmt.Errorf("vcpu exit reason %d, want HLT", reason)
	}
	// struct kvm_msrs with one struct kvm_msr_entry.
	var msrs [24]byte
	binary.LittleEndian.PutUint32(msrs[0:], 1)
	binary.LittleEndian.PutUint32(msrs[8:], msrArchCapabilities)
	if n, err := ioctl(kvm, kvmGetMSRs, uintptr(unsafe.Pointer(&msrs[0]))); err != nil || n != 1 {
		return nil // the feature MSR is not advertised: nothing to check
	}
	if n, err := ioctl(int(vcpu), kvmSetMSRs, uintptr(unsafe.Pointer(&msrs[0]))); err != nil || n != 1 {
		return fmt.Errorf("vcpu rejects the advertised IA32_ARCH_CAPABILITIES value %#x", binary.LittleEndian.Uint64(msrs[16:]))
	}
	return nil
}

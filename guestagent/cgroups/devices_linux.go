package cgroups

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices controller: device access is decided by an eBPF
// program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. Its
// context is struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32
// minor; }, with the device type in the low 16 bits of access_type and the
// access (mknod, read, write) in the high 16; it returns 1 to allow.

const (
	devTypeBlock = 1 // BPF_DEVCG_DEV_BLOCK
	devTypeChar  = 2 // BPF_DEVCG_DEV_CHAR
	accMknod     = 1 // BPF_DEVCG_ACC_MKNOD
	accRead      = 2
	accWrite     = 4

	progTypeCgroupDevice = 15 // BPF_PROG_TYPE_CGROUP_DEVICE
	attachCgroupDevice   = 6  // BPF_CGROUP_DEVICE
)

// insn is one eBPF instruction.
type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

// eBPF opcodes used here.
const (
	opLdxW    = 0x61 // dst = *(u32 *)(src + off)
	opAnd32K  = 0x54 // dst &= imm
	opRsh32K  = 0x74 // dst >>= imm
	opMov32K  = 0xb4 // dst = imm
	opMov32X  = 0xbc // dst = src
	opJneK    = 0x55 // if dst != imm goto +off
	opJneX    = 0x5d // if dst != src goto +off
	opExit    = 0x95
	regCtx    = 1
	regType   = 2
	regAccess = 3
	regMajor  = 4
	regMinor  = 5
	regTmp    = 1 // the context is not needed after the loads
	regRet    = 0
)

func encode(prog []insn) []byte {
	b := make([]byte, 8*len(prog))
	for i, in := range prog {
		b[8*i] = in.op
		b[8*i+1] = in.dst | in.src<<4
		binary.LittleEndian.PutUint16(b[8*i+2:], uint16(in.off))
		binary.LittleEndian.PutUint32(b[8*i+4:], uint32(in.imm))
	}
	return b
}

// accessMask parses "rwm".
func accessMask(a string) (int32, error) {
	var m int32
	for _, c := range a {
		switch c {
		case 'r':
			m |= accRead
		case 'w':
			m |= accWrite
		case 'm':
			m |= accMknod
		default:
			return 0, fmt.Errorf("invalid device access %q", a)
		}
	}
	if m == 0 {
		m = accRead | accWrite | accMknod
	}
	return m, nil
}

// DeviceProgram compiles OCI device rules into eBPF. As in the OCI spec
// the last matching rule wins, so rules are checked last to first; a
// device no rule matches is denied.
func DeviceProgram(rules []specs.LinuxDeviceCgroup) ([]byte, error) {
	prog := []insn{
		{op: opLdxW, dst: regType, src: regCtx, off: 0},
		{op: opAnd32K, dst: regType, imm: 0xffff},
		{op: opLdxW, dst: regAccess, src: regCtx, off: 0},
		{op: opRsh32K, dst: regAccess, imm: 16},
		{op: opLdxW, dst: regMajor, src: regCtx, off: 4},
		{op: opLdxW, dst: regMinor, src: regCtx, off: 8},
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		var block []insn
		// Each check jumps past the rest of the block when it fails;
		// offsets are filled in once the block is complete.
		switch r.Type {
		case "", "a":
		case "c":
			block = append(block, insn{op: opJneK, dst: regType, imm: devTypeChar})
		case "b":
			block = append(block, insn{op: opJneK, dst: regType, imm: devTypeBlock})
		default:
			return nil, fmt.Errorf("device rule %d: invalid type %q", i, r.Type)
		}
		acc, err := accessMask(r.Access)
		if err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
		if acc != accRead|accWrite|accMknod {
			block = append(block,
				insn{op: opMov32X, dst: regTmp, src: regAccess},
				insn{op: opAnd32K, dst: regTmp, imm: acc},
				insn{op: opJneX, dst: regTmp, src: regAccess})
		}
		if r.Major != nil && *r.Major >= 0 {
			block = append(block, insn{op: opJneK, dst: regMajor, imm: int32(*r.Major)})
		}
		if r.Minor != nil && *r.Minor >= 0 {
			block = append(block, insn{op: opJneK, dst: regMinor, imm: int32(*r.Minor)})
		}
		allow := int32(0)
		if r.Allow {
			allow = 1
		}
		block = append(block, insn{op: opMov32K, dst: regRet, imm: allow}, insn{op: opExit})
		conditional := false
		for j := range block {
			if block[j].op == opJneK || block[j].op == opJneX {
				block[j].off = int16(len(block) - j - 1)
				conditional = true
			}
		}
		prog = append(prog, block...)
		if !conditional {
			// Matches everything: the verifier rejects what follows as
			// unreachable, and it would never run.
			return encode(prog), nil
		}
	}
	prog = append(prog, insn{op: opMov32K, dst: regRet, imm: 0}, insn{op: opExit})
	return encode(prog), nil
}

// progLoadAttr is the BPF_PROG_LOAD part of union bpf_attr.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// progAttachAttr is the BPF_PROG_ATTACH part of union bpf_attr.
type progAttachAttr struct {
	targetFD     uint32
	attachBPFFD  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBPFFD uint32
}

// deviceFiltersWork reports whether this kernel loads device filters.
func deviceFiltersWork() bool {
	code, err := DeviceProgram([]specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}})
	if err != nil {
		return false
	}
	fd, err := loadDeviceProgram(code)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// attachDeviceFilter loads the program for rules and attaches it to the
// cgroup dir, replacing the one attached before.
func attachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	code, err := DeviceProgram(rules)
	if err != nil {
		return err
	}
	fd, err := loadDeviceProgram(code)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(cg)
	at := progAttachAttr{targetFD: uint32(cg), attachBPFFD: uint32(fd), attachType: attachCgroupDevice}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&at)), unsafe.Sizeof(at)); errno != 0 {
		return fmt.Errorf("attach device filter to %s: %w", dir, errno)
	}
	return nil
}

// loadDeviceProgram loads code as a cgroup device program and returns its fd.
func loadDeviceProgram(code []byte) (int, error) {
	license := []byte("Apache-2.0\x00")
	attr := progLoadAttr{
		progType: progTypeCgroupDevice,
		insnCnt:  uint32(len(code) / 8),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "berth_devices")
	var fd uintptr
	var errno unix.Errno
	// The verifier answers EAGAIN when a signal interrupts it; libbpf
	// retries too.
	for try := 0; try < 10; try++ {
		fd, _, errno = unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if errno != unix.EAGAIN && errno != unix.EINTR {
			break
		}
	}
	// The attribute holds the buffers' addresses as integers.
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if errno != 0 {
		// Load again with the verifier's log, to say why.
		logBuf := make([]byte, 1<<16)
		attr.logLevel, attr.logSize = 1, uint32(len(logBuf))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&logBuf[0])))
		unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(code)
		runtime.KeepAlive(license)
		runtime.KeepAlive(logBuf)
		log := strings.TrimRight(string(logBuf), "\x00")
		if i := strings.LastIndex(strings.TrimSpace(log), "\n"); i >= 0 {
			log = strings.TrimSpace(log)[i+1:]
		}
		return -1, fmt.Errorf("load device filter: %w: %s", errno, log)
	}
	return int(fd), nil
}

package seccomp

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run simulates the filter. The VM loads words big-endian, so the fields of
// seccomp_data are laid out big-endian here to read back as the kernel's
// native-endian values.
func run(t *testing.T, prog []bpf.RawInstruction, auditArch uint32, nr uint32, args ...uint64) uint32 {
	t.Helper()
	insns, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], auditArch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
	}
	v, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

var dockerCaps = strings.Fields(`CAP_CHOWN CAP_DAC_OVERRIDE CAP_FSETID CAP_FOWNER CAP_MKNOD CAP_NET_RAW
CAP_SETGID CAP_SETUID CAP_SETFCAP CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_SYS_CHROOT CAP_KILL CAP_AUDIT_WRITE`)

func TestDefaultProfileDecisions(t *testing.T) {
	const eperm, enosys = retErrno | 1, retErrno | 38
	type call struct {
		name string
		args []uint64
		want uint32
	}
	tests := []struct {
		goarch string
		info   *arch.Info
		caps   []string
		calls  []call
	}{
		{"amd64", arch.X86_64, dockerCaps, []call{
			{"read", nil, retAllow},
			{"execve", nil, retAllow},
			{"arch_prctl", nil, retAllow},
			{"chroot", nil, retAllow},
			{"mount", nil, eperm},
			{"unshare", []uint64{unix.CLONE_NEWUSER}, eperm},
			{"keyctl", nil, eperm},
			{"reboot", nil, eperm},
			{"clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_THREAD}, retAllow},
			{"clone", []uint64{unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}, eperm},
			{"clone", []uint64{unix.CLONE_NEWUSER}, eperm},
			{"clone3", nil, enosys},
			{"personality", []uint64{0}, retAllow},
			{"personality", []uint64{0xffffffff}, retAllow},
			{"personality", []uint64{0x0040000}, eperm},
			{"personality", []uint64{1 << 32}, eperm},
			{"socket", []uint64{unix.AF_INET}, retAllow},
			{"socket", []uint64{unix.AF_VSOCK}, eperm},
			{"socket", []uint64{unix.AF_VSOCK | 1<<32}, retAllow},
			{"ptrace", nil, retAllow},
		}},
		{"amd64", arch.X86_64, append([]string{"CAP_SYS_ADMIN"}, dockerCaps...), []call{
			{"mount", nil, retAllow},
			{"clone", []uint64{unix.CLONE_NEWNS}, retAllow},
			{"clone3", nil, retAllow},
		}},
		{"arm64", arch.AARCH64, dockerCaps, []call{
			{"openat", nil, retAllow},
			{"mount", nil, eperm},
			{"clone", []uint64{unix.CLONE_NEWPID}, eperm},
			{"clone", []uint64{uint64(unix.SIGCHLD)}, retAllow},
			{"clone3", nil, enosys},
		}},
	}
	for _, tt := range tests {
		prog, err := Compile(Default(tt.caps, tt.goarch), tt.goarch)
		if err != nil {
			t.Fatalf("%s: %v", tt.goarch, err)
		}
		for _, c := range tt.calls {
			nr, ok := tt.info.SyscallNames[c.name]
			if !ok {
				t.Fatalf("no syscall %s on %s", c.name, tt.goarch)
			}
			if got := run(t, prog, uint32(tt.info.ID), uint32(nr), c.args...); got != c.want {
				t.Errorf("%s %d caps: %s%v = %#x, want %#x", tt.goarch, len(tt.caps), c.name, c.args, got, c.want)
			}
		}
		if got := run(t, prog, 0x1234, 0); got != retKillProcess {
			t.Errorf("%s: foreign arch = %#x, want kill", tt.goarch, got)
		}
	}
}

func TestCompat32(t *testing.T) {
	prog, err := Compile(Default(dockerCaps, "amd64"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, prog, uint32(arch.I386.ID), uint32(arch.I386.SyscallNames["getpid"])); got != retAllow {
		t.Errorf("i386 getpid = %#x", got)
	}
	if got := run(t, prog, uint32(arch.I386.ID), uint32(arch.I386.SyscallNames["mount"])); got != retErrno|1 {
		t.Errorf("i386 mount = %#x", got)
	}
}

func TestOperators(t *testing.T) {
	nr := uint32(arch.X86_64.SyscallNames["getpid"])
	tests := []struct {
		op   specs.LinuxSeccompOperator
		v    uint64
		arg  uint64
		want bool
	}{
		{specs.OpEqualTo, 5, 5, true}, {specs.OpEqualTo, 5, 6, false}, {specs.OpEqualTo, 1 << 33, 1 << 33, true},
		{specs.OpNotEqual, 5, 5, false}, {specs.OpNotEqual, 5, 5 | 1<<32, true},
		{specs.OpGreaterThan, 5, 6, true}, {specs.OpGreaterThan, 5, 5, false}, {specs.OpGreaterThan, 5, 1 << 32, true},
		{specs.OpGreaterEqual, 5, 5, true}, {specs.OpGreaterEqual, 1 << 32, 5, false},
		{specs.OpLessThan, 5, 4, true}, {specs.OpLessThan, 5, 5, false}, {specs.OpLessThan, 1 << 32, 7, true},
		{specs.OpLessEqual, 5, 5, true}, {specs.OpLessEqual, 5, 1<<32 | 1, false},
	}
	for _, tt := range tests {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{
			Names: []string{"getpid"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: tt.v, Op: tt.op}},
		}}}
		prog, err := Compile(s, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, prog, uint32(arch.X86_64.ID), nr, 0, 0, tt.arg) == retAllow
		if got != tt.want {
			t.Errorf("%s %#x against %#x = %v, want %v", tt.op, tt.arg, tt.v, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	bad := []*specs.LinuxSeccomp{
		nil,
		{DefaultAction: "SCMP_ACT_NOPE"},
		{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6}}}}},
	}
	for i, s := range bad {
		if _, err := Compile(s, "amd64"); err == nil {
			t.Errorf("case %d compiled", i)
		}
	}
	if _, err := Compile(Default(nil, "amd64"), "mips"); err == nil {
		t.Error("mips compiled")
	}
}

// TestLoadHelper is the body of TestLoad, run in a child process because a
// filter cannot be removed once loaded.
func TestLoadHelper(t *testing.T) {
	if os.Getenv("SECCOMP_TEST_CHILD") != "1" {
		t.Skip("helper for TestLoad")
	}
	runtime.LockOSThread()
	prog, err := Compile(Default(dockerCaps, runtime.GOARCH), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := Load(prog); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unshare(unix.CLONE_NEWUSER); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unshare(CLONE_NEWUSER) under the default profile = %v, want EPERM", err)
	}
	if unix.Getpid() == 0 {
		t.Fatal("getpid failed")
	}
}

func TestLoad(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("profile compiles for amd64 and arm64 only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SECCOMP_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLoadHelper") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

func TestX32(t *testing.T) {
	nr := func(name string) uint32 { return uint32(arch.X32.SyscallNames[name] | arch.X32.SeccompMask) }
	with, err := Compile(Default(dockerCaps, "amd64"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, with, uint32(arch.X86_64.ID), nr("getpid")); got != retAllow {
		t.Errorf("x32 getpid with x32 listed = %#x", got)
	}
	if got := run(t, with, uint32(arch.X86_64.ID), nr("mount")); got != retErrno|1 {
		t.Errorf("x32 mount = %#x", got)
	}
	p := Default(dockerCaps, "amd64")
	p.Architectures = nil
	without, err := Compile(p, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, without, uint32(arch.X86_64.ID), nr("getpid")); got != retErrno|38 {
		t.Errorf("x32 getpid without x32 listed = %#x", got)
	}
}

// TestEverySyscall checks the compiled default profile against a direct
// reading of it for every syscall of each architecture that no argument
// rule names: the first rule naming a call decides, else EPERM.
func TestEverySyscall(t *testing.T) {
	for _, tc := range []struct {
		goarch string
		infos  []*arch.Info
	}{{"amd64", []*arch.Info{arch.X86_64, arch.I386, arch.X32}}, {"arm64", []*arch.Info{arch.AARCH64, arch.ARM}}} {
		p := Default(dockerCaps, tc.goarch)
		prog, err := Compile(p, tc.goarch)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range tc.infos {
			for name, n := range info.SyscallNames {
				want, conditional := uint32(retErrno|1), false
			rules:
				for _, sc := range p.Syscalls {
					for _, nm := range sc.Names {
						if nm == name {
							if len(sc.Args) > 0 {
								conditional = true
								break rules
							}
							want, _ = actionValue(sc.Action, sc.ErrnoRet, 1)
							break rules
						}
					}
				}
				if conditional {
					continue
				}
				if got := run(t, prog, uint32(info.ID), uint32(n|info.SeccompMask)); got != want {
					t.Errorf("%s %s (%d) = %#x, want %#x", info.Name, name, n, got, want)
				}
			}
		}
	}
}

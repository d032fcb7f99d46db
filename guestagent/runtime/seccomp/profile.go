// Package seccomp owns the container system-call filter: Docker's default
// profile as Go data (Default), the compiler from an OCI seccomp section to a
// classic BPF program for amd64 and arm64 (Compile), and loading it (Load).
// It is pure Go, so the agent stays a static CGO_ENABLED=0 binary.
package seccomp

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rule is one entry of the default profile. A rule applies when the
// architecture matches arches (empty: all), every capability in includeCaps
// is in the container's bounding set, and none of excludeCaps is.
type rule struct {
	names       []string
	action      specs.LinuxSeccompAction
	errno       uint
	args        []specs.LinuxSeccompArg
	arches      []string // GOARCH-style names: amd64 x32 x86 arm64 arm
	notArches   []string
	includeCaps []string
	excludeCaps []string
}

// allowed is the unconditional allowlist of Docker's default profile.
var allowed = strings.Fields(`
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64
clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close
close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat
faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod
fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu
getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid
gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link
linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat
lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat
mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr
mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock
munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2
read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32
setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs
sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
writev`)

// cloneNamespaceFlags are the CLONE_NEW* bits (and CLONE_NEWTIME's
// neighbours) that a container without CAP_SYS_ADMIN may not pass to clone.
const cloneNamespaceFlags = 0x7E020000

func argEq(v uint64) []specs.LinuxSeccompArg {
	return []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}
}

const allow = specs.ActAllow

// defaultRules is Docker's default profile after its allowlist.
var defaultRules = []rule{
	{names: allowed, action: allow},
	{names: []string{"process_vm_readv", "process_vm_writev", "ptrace"}, action: allow},
	// AF_VSOCK (40) sockets would reach the host of a VM.
	{names: []string{"socket"}, action: allow, args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpNotEqual}}},
	{names: []string{"personality"}, action: allow, args: argEq(0x0)},
	{names: []string{"personality"}, action: allow, args: argEq(0x0008)},
	{names: []string{"personality"}, action: allow, args: argEq(0x20000)},
	{names: []string{"personality"}, action: allow, args: argEq(0x20008)},
	{names: []string{"personality"}, action: allow, args: argEq(0xffffffff)},
	{names: []string{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"}, action: allow, arches: []string{"arm", "arm64"}},
	{names: []string{"arch_prctl"}, action: allow, arches: []string{"amd64", "x32"}},
	{names: []string{"modify_ldt"}, action: allow, arches: []string{"amd64", "x32", "x86"}},
	{names: []string{"open_by_handle_at"}, action: allow, includeCaps: []string{"CAP_DAC_READ_SEARCH"}},
	{names: strings.Fields(`bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick
		lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open quotactl
		quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare`),
		action: allow, includeCaps: []string{"CAP_SYS_ADMIN"}},
	{names: []string{"clone"}, action: allow, args: []specs.LinuxSeccompArg{{Index: 0, Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
		excludeCaps: []string{"CAP_SYS_ADMIN"}, notArches: []string{"s390", "s390x"}},
	// clone3 passes its flags in memory the filter cannot read: answer
	// ENOSYS so that libcs fall back to clone, which is checked above.
	{names: []string{"clone3"}, action: specs.ActErrno, errno: 38, excludeCaps: []string{"CAP_SYS_ADMIN"}},
	{names: []string{"reboot"}, action: allow, includeCaps: []string{"CAP_SYS_BOOT"}},
	{names: []string{"chroot"}, action: allow, includeCaps: []string{"CAP_SYS_CHROOT"}},
	{names: []string{"delete_module", "init_module", "finit_module"}, action: allow, includeCaps: []string{"CAP_SYS_MODULE"}},
	{names: []string{"acct"}, action: allow, includeCaps: []string{"CAP_SYS_PACCT"}},
	{names: []string{"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}, action: allow, includeCaps: []string{"CAP_SYS_PTRACE"}},
	{names: []string{"iopl", "ioperm"}, action: allow, includeCaps: []string{"CAP_SYS_RAWIO"}},
	{names: []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}, action: allow, includeCaps: []string{"CAP_SYS_TIME"}},
	{names: []string{"vhangup"}, action: allow, includeCaps: []string{"CAP_SYS_TTY_CONFIG"}},
	{names: []string{"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}, action: allow, includeCaps: []string{"CAP_SYS_NICE"}},
	{names: []string{"syslog"}, action: allow, includeCaps: []string{"CAP_SYSLOG"}},
	{names: []string{"bpf"}, action: allow, includeCaps: []string{"CAP_BPF"}},
	{names: []string{"perf_event_open"}, action: allow, includeCaps: []string{"CAP_PERFMON"}},
}

// ociArches maps a GOARCH to the architectures the profile lists for it:
// the native one first, then the compat ABIs it can run.
var ociArches = map[string][]specs.Arch{
	"amd64": {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
	"arm64": {specs.ArchAARCH64, specs.ArchARM},
}

// Default returns Docker's default profile for a container whose bounding
// set is caps (names like "CAP_SYS_ADMIN") on goarch ("amd64", "arm64").
// Everything not listed fails with EPERM.
func Default(caps []string, goarch string) *specs.LinuxSeccomp {
	errno := uint(1)
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &errno,
		Architectures:   slices.Clone(ociArches[goarch]),
	}
	has := func(c string) bool { return slices.Contains(caps, c) }
	archOK := func(r rule) bool {
		if len(r.arches) > 0 && !slices.Contains(r.arches, goarch) {
			return false
		}
		return !slices.Contains(r.notArches, goarch)
	}
	for _, r := range defaultRules {
		if !archOK(r) {
			continue
		}
		ok := true
		for _, c := range r.includeCaps {
			ok = ok && has(c)
		}
		for _, c := range r.excludeCaps {
			ok = ok && !has(c)
		}
		if !ok {
			continue
		}
		sc := specs.LinuxSyscall{Names: slices.Clone(r.names), Action: r.action, Args: slices.Clone(r.args)}
		if r.errno != 0 {
			e := r.errno
			sc.ErrnoRet = &e
		}
		s.Syscalls = append(s.Syscalls, sc)
	}
	return s
}

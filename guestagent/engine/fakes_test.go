//go:build linux

package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/guestagent/runtime"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeImages is an in-memory image store.
type fakeImages struct {
	mu      sync.Mutex
	images  map[string]*image.Image
	rootfs  map[string]bool
	removed []string
}

func newFakeImages() *fakeImages {
	img := &image.Image{ID: digest.FromString("busybox"), RepoTags: []string{"busybox:latest"}}
	img.Config.Config.Cmd = []string{"sh"}
	img.Config.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "IMG=1"}
	img.Config.Config.Labels = map[string]string{"from": "image"}
	withEP := &image.Image{ID: digest.FromString("ep"), RepoTags: []string{"ep:latest"}}
	withEP.Config.Config = dockerspec.DockerOCIImageConfig{}
	withEP.Config.Config.Entrypoint = []string{"echo", "ep"}
	withEP.Config.Config.Cmd = []string{"default"}
	withEP.Config.Config.WorkingDir = "/work"
	withEP.Config.Config.User = "nobody"
	withEP.Config.Config.StopSignal = "SIGUSR1"
	return &fakeImages{
		images: map[string]*image.Image{"busybox": img, "busybox:latest": img, "ep": withEP, "nocmd": {ID: digest.FromString("nocmd")}},
		rootfs: map[string]bool{},
	}
}

type notFoundErr struct{ ref string }

func (e notFoundErr) Error() string { return "No such image: " + e.ref }
func (notFoundErr) NotFound()       {}

func (f *fakeImages) Resolve(ref string) (*image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	for _, img := range f.images {
		if string(img.ID) == ref {
			return img, nil
		}
	}
	return nil, notFoundErr{ref}
}

func (f *fakeImages) PrepareRootfs(key string, id digest.Digest) ([]image.Mount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rootfs[key] = true
	return []image.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/l"}}}, nil
}

func (f *fakeImages) RootfsMounts(key string) ([]image.Mount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.rootfs[key] {
		return nil, fmt.Errorf("no rootfs for %s", key)
	}
	return []image.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/l"}}}, nil
}

func (f *fakeImages) RootfsSize(key string) (int64, int64, error) { return 10, 100, nil }

func (f *fakeImages) RemoveRootfs(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rootfs, key)
	f.removed = append(f.removed, key)
	return nil
}

// fakeRuntime runs "processes" as goroutines whose behaviour is chosen by
// argv[0]: echo ARGS, cat, sleep (until a signal), ignore-term (until
// SIGKILL), exit N, env, notfound (fails at create like a missing binary).
type fakeRuntime struct {
	mu      sync.Mutex
	handles []*fakeHandle
	specs   []*specs.Spec
	opts    []runtime.CreateOptions
}

func (r *fakeRuntime) Create(id string, spec *specs.Spec, opts runtime.CreateOptions) (Handle, error) {
	if spec.Process.Args[0] == "notfound" {
		return nil, errors.New(`exec: "notfound": executable file not found in $PATH`)
	}
	if spec.Process.Args[0] == "noexec" {
		return nil, errors.New(`exec: "/etc": permission denied`)
	}
	h := &fakeHandle{id: id, spec: spec, opts: opts}
	h.proc = newFakeProc(spec.Process, opts.IO)
	r.mu.Lock()
	r.handles = append(r.handles, h)
	r.specs = append(r.specs, spec)
	r.opts = append(r.opts, opts)
	r.mu.Unlock()
	return h, nil
}

func (r *fakeRuntime) lastSpec() *specs.Spec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.specs[len(r.specs)-1]
}

func (r *fakeRuntime) lastOpts() runtime.CreateOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts[len(r.opts)-1]
}

type fakeHandle struct {
	id      string
	spec    *specs.Spec
	opts    runtime.CreateOptions
	proc    *fakeProc
	mu      sync.Mutex
	paused  bool
	deleted bool
	execs   int
	resized [2]uint
}

func (h *fakeHandle) Start() error                       { h.proc.start(); return nil }
func (h *fakeHandle) Pid() int                           { return 4242 }
func (h *fakeHandle) IO() *runtime.ProcessIO             { return h.proc.pio }
func (h *fakeHandle) Wait() runtime.ExitStatus           { return h.proc.Wait() }
func (h *fakeHandle) Signal(s syscall.Signal) error      { return h.proc.Signal(s) }
func (h *fakeHandle) Pause() error                       { h.mu.Lock(); h.paused = true; h.mu.Unlock(); return nil }
func (h *fakeHandle) Resume() error                      { h.mu.Lock(); h.paused = false; h.mu.Unlock(); return nil }
func (h *fakeHandle) Update(*specs.LinuxResources) error { return nil }
func (h *fakeHandle) Processes() ([]int, error)          { return []int{os.Getpid()}, nil }
func (h *fakeHandle) Resize(ht, w uint) error {
	h.mu.Lock()
	h.resized = [2]uint{ht, w}
	h.mu.Unlock()
	return nil
}
func (h *fakeHandle) Exec(p *specs.Process, io runtime.IOOptions) (Process, error) {
	if p.Args[0] == "notfound" {
		return nil, errors.New(`exec: "notfound": executable file not found in $PATH`)
	}
	h.mu.Lock()
	h.execs++
	h.mu.Unlock()
	fp := newFakeProc(p, io)
	fp.start()
	return fp, nil
}
func (h *fakeHandle) Delete() error { h.mu.Lock(); h.deleted = true; h.mu.Unlock(); return nil }

type fakeProc struct {
	p       *specs.Process
	pio     *runtime.ProcessIO
	stdin   io.Reader
	stdout  io.WriteCloser
	stderr  io.WriteCloser
	signals chan syscall.Signal
	exit    chan runtime.ExitStatus
	once    sync.Once
}

func newFakeProc(p *specs.Process, o runtime.IOOptions) *fakeProc {
	fp := &fakeProc{p: p, signals: make(chan syscall.Signal, 8), exit: make(chan runtime.ExitStatus, 1)}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	fp.pio = &runtime.ProcessIO{Stdout: outR, Stderr: errR}
	fp.stdout, fp.stderr = outW, errW
	if o.OpenStdin {
		inR, inW := io.Pipe()
		fp.pio.Stdin = inW
		fp.stdin = inR
	} else {
		fp.stdin = strings.NewReader("")
	}
	return fp
}

func (fp *fakeProc) Pid() int                 { return 4343 }
func (fp *fakeProc) IO() *runtime.ProcessIO   { return fp.pio }
func (fp *fakeProc) Resize(h, w uint) error   { return nil }
func (fp *fakeProc) Wait() runtime.ExitStatus { return <-fp.exit }
func (fp *fakeProc) Signal(s syscall.Signal) error {
	if s == syscall.SIGKILL {
		// A process killed before it started ends there, as the runtime's
		// init does when killed while waiting for Start.
		fp.once.Do(func() {
			fp.stdout.Close()
			fp.stderr.Close()
			fp.exit <- runtime.ExitStatus{Code: 128 + int(s), Signal: s}
		})
	}
	fp.signals <- s
	return nil
}

func (fp *fakeProc) start() {
	fp.once.Do(func() { go fp.run() })
}

func (fp *fakeProc) run() {
	args := fp.p.Args
	code := 0
	var sig syscall.Signal
	switch args[0] {
	case "echo":
		fmt.Fprintln(fp.stdout, strings.Join(args[1:], " "))
	case "echo-err":
		fmt.Fprintln(fp.stderr, strings.Join(args[1:], " "))
	case "env":
		for _, e := range fp.p.Env {
			fmt.Fprintln(fp.stdout, e)
		}
	case "cat":
		eof := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(fp.stdin)
			for sc.Scan() {
				fmt.Fprintln(fp.stdout, sc.Text())
			}
			close(eof)
		}()
		select {
		case <-eof:
		case s := <-fp.signals:
			sig, code = s, 128+int(s)
		}
	case "exit":
		code, _ = strconv.Atoi(args[1])
	case "sleep", "ignore-term":
		for s := range fp.signals {
			if s == syscall.SIGKILL || (args[0] == "sleep" && s != syscall.SIGWINCH) {
				sig = s
				code = 128 + int(s)
				break
			}
		}
	}
	fp.stdout.Close()
	fp.stderr.Close()
	fp.exit <- runtime.ExitStatus{Code: code, Signal: sig}
}

// newTestEngine returns an engine over fakes in a temp data root.
func newTestEngine(t *testing.T, root string) (*Engine, *fakeRuntime, *fakeImages) {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	rt := &fakeRuntime{}
	imgs := newFakeImages()
	e, err := New(Config{
		Root:        root,
		ExecRoot:    t.TempDir(),
		Images:      imgs,
		Runtime:     rt,
		DefaultSpec: testDefaultSpec,
		Limits:      Limits{Memory: true, CPUQuota: true, CPUShares: true, Pids: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.loopback = func(int) error { return nil }
	return e, rt, imgs
}

// testDefaultSpec is a Docker-like default spec, enough for the engine's
// transformations to be observable.
func testDefaultSpec() *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}},
		},
		Root: &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.MountNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.CgroupNamespace}},
			MaskedPaths:   []string{"/proc/kcore"},
			ReadonlyPaths: []string{"/proc/sys"},
			Seccomp:       &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
			Resources:     &specs.LinuxResources{Devices: testDeviceRules()},
		},
	}
}

// testDeviceRules is a deny-all device rule list with one allowed device.
func testDeviceRules() []specs.LinuxDeviceCgroup {
	null := int64(3)
	one := int64(1)
	return []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: &one, Minor: &null, Access: "rwm"}}
}

func runtimeGosched() { goruntime.Gosched() }

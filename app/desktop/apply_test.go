package desktop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/settings"
)

func testDoc() *settings.Document {
	d := settings.Defaults(settings.Host{OS: "linux", CPUs: 4, MemoryMiB: 8192, Home: "/home/me"})
	d.Engine = []byte("{}")
	d.Proxies.Mode = settings.ProxyNone
	return d
}

func TestPlanChange(t *testing.T) {
	old := testDoc()
	next := old.Clone()
	if p := PlanChange(old, next, []byte("{}"), []byte(" { } ")); !p.Empty() {
		t.Fatalf("same settings: %+v", p)
	}
	next.Resources.CPUs = 3
	next.Resources.MemoryMiB = 4096
	next.FileSharing.Paths = []string{"/home/me", "/srv"}
	next.Resources.DiskGiB = old.Resources.DiskGiB + 10
	p := PlanChange(old, next, []byte("{}"), []byte(`{"debug":true}`))
	want := []string{"resources.cpus", "resources.memoryMiB", "fileSharing.paths"}
	if !p.Engine || !p.Grow || p.Reset || strings.Join(p.Restart, ",") != strings.Join(want, ",") {
		t.Fatalf("plan %+v", p)
	}
	next = old.Clone()
	next.Resources.DiskGiB = old.Resources.DiskGiB - 1
	if p := PlanChange(old, next, nil, nil); !p.Reset || p.Grow {
		t.Fatalf("smaller disk: %+v", p)
	}
}

func TestEngineConfigProxies(t *testing.T) {
	ctx := context.Background()
	d := testDoc()
	d.Engine = []byte(`{"debug": true}`)
	got, err := EngineConfig(ctx, d, nil)
	if err != nil || string(got) != `{"debug": true}` {
		t.Fatalf("no proxies: %s %v", got, err)
	}
	d.Proxies = settings.Proxies{Mode: settings.ProxyManual, HTTP: "http://proxy.internal:3128", NoProxy: "localhost"}
	got, err = EngineConfig(ctx, d, nil)
	if err != nil || !jsonEqual(got, []byte(`{"debug":true,"proxies":{"http-proxy":"http://proxy.internal:3128","no-proxy":"localhost"}}`)) {
		t.Fatalf("manual: %s %v", got, err)
	}
	// The daemon.json's own proxies win.
	d.Engine = []byte(`{"proxies":{"https-proxy":"http://own:1"}}`)
	if got, _ = EngineConfig(ctx, d, nil); string(got) != string(d.Engine) {
		t.Fatalf("own proxies: %s", got)
	}
	d.Engine = []byte(`{}`)
	d.Proxies.Mode = settings.ProxySystem
	sys := func(context.Context) (ProxyValues, error) { return ProxyValues{HTTPS: "http://sys:8080"}, nil }
	if got, err = EngineConfig(ctx, d, sys); err != nil || !jsonEqual(got, []byte(`{"proxies":{"https-proxy":"http://sys:8080"}}`)) {
		t.Fatalf("system: %s %v", got, err)
	}
	failing := func(context.Context) (ProxyValues, error) { return ProxyValues{}, errors.New("no scutil") }
	if _, err = EngineConfig(ctx, d, failing); err == nil || !strings.Contains(err.Error(), "no scutil") {
		t.Fatalf("system failing: %v", err)
	}
	d.Proxies.Mode = settings.ProxyNone
	if got, _ = EngineConfig(ctx, d, failing); string(got) != "{}" {
		t.Fatalf("none: %s", got)
	}
}

// applyService is a service whose VMs are fakes made from the settings in
// force; a document with cpus 3 fails to start.
type applyService struct {
	*Service
	mu  sync.Mutex
	vms []*fakeVM
}

func newApplyService(t *testing.T, doc *settings.Document) *applyService {
	dir, err := os.MkdirTemp("", "desktop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &applyService{}
	a.Service = NewService(Options{
		NewVMFor: func(d *settings.Document) (machine.VM, error) {
			vm := newFakeVM(t, hostlink.EngineReady)
			if d.Resources.CPUs == 3 {
				vm.startErr = errors.New("the hypervisor refused 3 CPUs")
			}
			a.mu.Lock()
			a.vms = append(a.vms, vm)
			a.mu.Unlock()
			return vm, nil
		},
		Settings:     doc,
		DiskFile:     Layout{Home: dir}.DiskFile,
		DockerSocket: filepath.Join(dir, "docker.sock"),
		SkipContext:  true,
		StopTimeout:  5 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	return a
}

func (a *applyService) vm(i int) *fakeVM {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.vms[i]
}

func (a *applyService) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.vms)
}

func TestApplyEngineConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := testDoc()
	doc.Engine = []byte(`{"debug":true}`)
	a := newApplyService(t, doc)
	// The engine ran with {}: Start gave it the settings' document.
	if vm := a.vm(0); vm.puts != 1 || string(vm.engineDoc) != `{"debug":true}` {
		t.Fatalf("start sync: %d puts, %s", vm.puts, vm.engineDoc)
	}
	next := doc.Clone()
	next.Engine = []byte(`{"insecure-registries":["127.0.0.1:5000"]}`)
	var msgs []string
	res, err := a.Apply(ctx, next, func(m string) { msgs = append(msgs, m) })
	if err != nil {
		t.Fatal(err)
	}
	if !res.Plan.Engine || len(res.Plan.Restart) != 0 || a.count() != 1 || string(a.vm(0).engineDoc) != string(next.Engine) {
		t.Fatalf("engine change: %+v, %d VMs, %s", res, a.count(), a.vm(0).engineDoc)
	}
	if len(msgs) == 0 || !strings.Contains(msgs[0], "restarting the engine") {
		t.Errorf("progress %q", msgs)
	}
	if a.Settings() != next {
		t.Error("the settings in force are not the applied ones")
	}
	// A document the engine does not start with: nothing else changes.
	bad := next.Clone()
	bad.Engine = []byte(`{"labels":["fail"]}`)
	if _, err := a.Apply(ctx, bad, nil); !errors.Is(err, hostlink.ErrEngineConfigFailed) {
		t.Fatalf("failing engine config: %v", err)
	}
	if a.Settings() != next || string(a.vm(0).engineDoc) != string(next.Engine) || a.Status().State != StateRunning {
		t.Fatalf("after a failed apply: %s, %s", a.vm(0).engineDoc, a.Status().State)
	}
}

func TestApplyRestartsVM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := testDoc()
	a := newApplyService(t, doc)
	next := doc.Clone()
	next.Resources.CPUs, next.Resources.MemoryMiB = 4, 4096
	var msgs []string
	res, err := a.Apply(ctx, next, func(m string) { msgs = append(msgs, m) })
	if err != nil {
		t.Fatal(err)
	}
	if a.count() != 2 || a.vm(0).State() != machine.StateStopped || a.Status().State != StateRunning || a.Settings() != next {
		t.Fatalf("after a restart: %+v, %d VMs, %s", res, a.count(), a.Status().State)
	}
	joined := strings.Join(msgs, "\n")
	if !strings.Contains(joined, "stopping the VM") || !strings.Contains(joined, "starting the VM with the new settings") {
		t.Errorf("progress:\n%s", joined)
	}
	// A VM that does not start with the settings: the previous ones come
	// back and the VM runs with them.
	bad := next.Clone()
	bad.Resources.CPUs = 3
	_, err = a.Apply(ctx, bad, nil)
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "refused 3 CPUs") {
		t.Fatalf("failing restart: %v", err)
	}
	if a.count() != 4 || a.Status().State != StateRunning || a.Settings() != next {
		t.Fatalf("after the rollback: %d VMs, %s, %+v", a.count(), a.Status().State, a.Settings().Resources)
	}
}

func TestApplyGrowsDiskOnline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := testDoc()
	a := newApplyService(t, doc)
	next := doc.Clone()
	next.Resources.DiskGiB = doc.Resources.DiskGiB + 16
	res, err := a.Apply(ctx, next, nil)
	if err != nil {
		t.Fatal(err)
	}
	vm := a.vm(0)
	if a.count() != 1 || vm.diskSize != int64(next.Resources.DiskGiB)<<30 || vm.grows != 1 {
		t.Fatalf("grow: %+v, %d VMs, size %d, %d grows", res, a.count(), vm.diskSize, vm.grows)
	}
	if !strings.Contains(fmt.Sprint(res.Done), "online") {
		t.Errorf("done %q", res.Done)
	}
}

func TestApplyNotRunning(t *testing.T) {
	svc := NewService(Options{Settings: testDoc()})
	if _, err := svc.Apply(context.Background(), testDoc(), nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("apply while stopped: %v", err)
	}
}

// TestControlApply applies through the control socket, as the CLI does.
func TestControlApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := testDoc()
	a := newApplyService(t, doc)
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l := Layout{Home: dir}
	ctl, err := ListenControl(l, a.Service, nil)
	if err != nil {
		t.Fatal(err)
	}
	go ctl.Serve()
	defer ctl.Close()
	c := NewControlClient(l)
	defer c.Close()
	next := doc.Clone()
	next.Engine = []byte(`{"debug":true}`)
	data, err := next.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	res, err := c.Apply(ctx, data, func(m string) { msgs = append(msgs, m) })
	if err != nil || !res.Plan.Engine || len(msgs) == 0 {
		t.Fatalf("apply: %+v %v %q", res, err, msgs)
	}
	bad := next.Clone()
	bad.Resources.CPUs = 3
	data, _ = bad.Marshal()
	if _, err := c.Apply(ctx, data, nil); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("rolled back apply: %v", err)
	}
}

// TestApplyMovesDisk: a new disk folder moves the disk with its data and
// restarts the VM.
func TestApplyMovesDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := testDoc()
	a := newApplyService(t, doc)
	from := a.opts.DiskFile(doc)
	os.MkdirAll(filepath.Dir(from), 0o700)
	if err := os.WriteFile(from, []byte("the data"), 0o600); err != nil {
		t.Fatal(err)
	}
	next := doc.Clone()
	next.Resources.DiskPath = filepath.Join(t.TempDir(), "elsewhere")
	if _, err := a.Apply(ctx, next, nil); err != nil {
		t.Fatal(err)
	}
	to := a.opts.DiskFile(next)
	if b, err := os.ReadFile(to); err != nil || string(b) != "the data" {
		t.Fatalf("disk at %s: %q %v", to, b, err)
	}
	if _, err := os.Stat(from); err == nil {
		t.Fatalf("the disk is still at %s", from)
	}
	if a.count() != 2 {
		t.Fatalf("%d VMs", a.count())
	}
}

func TestCopySparse(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	f, _ := os.Create(src)
	f.Truncate(8 << 20)
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 8<<20-4)
	f.Close()
	in, _ := os.Open(src)
	defer in.Close()
	out, _ := os.Create(filepath.Join(dir, "dst"))
	if err := copySparse(out, in, 8<<20); err != nil {
		t.Fatal(err)
	}
	out.Close()
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(filepath.Join(dir, "dst"))
	if string(a) != string(b) {
		t.Fatal("copy differs")
	}
}

package desktop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/settings"
)

// ChangePlan is what applying a settings change asks of the running VM.
type ChangePlan struct {
	// Engine: the engine's daemon.json (with the proxies) changed; the
	// engine restarts in the VM, which keeps running.
	Engine bool `json:"engine,omitempty"`
	// Restart lists the settings whose change restarts the VM (CPUs,
	// memory, swap, shares, the VM's network).
	Restart []string `json:"restart,omitempty"`
	// Grow: the disk is larger; it grows while the VM runs.
	Grow bool `json:"grow,omitempty"`
	// Reset: the disk is smaller, which erases it (confirmed beforehand).
	Reset bool `json:"reset,omitempty"`
}

// Empty tells whether nothing needs applying.
func (p ChangePlan) Empty() bool { return !p.Engine && len(p.Restart) == 0 && !p.Grow && !p.Reset }

// PlanChange compares the applied settings with the next ones. engine and
// nextEngine are their effective daemon.json documents (EngineConfig).
func PlanChange(old, next *settings.Document, engine, nextEngine []byte) ChangePlan {
	var p ChangePlan
	p.Engine = !jsonEqual(engine, nextEngine)
	o, n := old.Resources, next.Resources
	if o.CPUs != n.CPUs {
		p.Restart = append(p.Restart, "resources.cpus")
	}
	if o.MemoryMiB != n.MemoryMiB {
		p.Restart = append(p.Restart, "resources.memoryMiB")
	}
	if o.SwapMiB != n.SwapMiB {
		p.Restart = append(p.Restart, "resources.swapMiB")
	}
	if o.VMSubnet != n.VMSubnet {
		p.Restart = append(p.Restart, "resources.vmSubnet")
	}
	if o.DiskPath != n.DiskPath {
		p.Restart = append(p.Restart, "resources.diskPath")
	}
	if !slices.Equal(old.FileSharing.Paths, next.FileSharing.Paths) {
		p.Restart = append(p.Restart, "fileSharing.paths")
	}
	p.Grow = n.DiskGiB > o.DiskGiB
	p.Reset = n.DiskGiB < o.DiskGiB
	return p
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// ProxyValues are the proxies the engine and containers use.
type ProxyValues struct {
	HTTP, HTTPS, NoProxy string
}

// EngineConfig is the daemon.json the VM's engine runs with: the settings'
// Docker Engine document, with the proxies of the settings (manual, or the
// system's when the mode is system) as its "proxies" unless the document
// has its own, which wins. system is asked only in system mode.
func EngineConfig(ctx context.Context, d *settings.Document, system func(context.Context) (ProxyValues, error)) ([]byte, error) {
	doc := bytes.TrimSpace(d.Engine)
	if len(doc) == 0 {
		doc = []byte("{}")
	}
	var pv ProxyValues
	switch d.Proxies.Mode {
	case settings.ProxyManual:
		pv = ProxyValues{HTTP: d.Proxies.HTTP, HTTPS: d.Proxies.HTTPS, NoProxy: d.Proxies.NoProxy}
	case settings.ProxySystem:
		if system == nil {
			return nil, errors.New("proxies.mode is system, but this Berth cannot read the system's proxies")
		}
		var err error
		if pv, err = system(ctx); err != nil {
			return nil, fmt.Errorf("read the system's proxies: %w", err)
		}
	}
	if pv == (ProxyValues{}) {
		return doc, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if _, own := top["proxies"]; own {
		return doc, nil
	}
	px := map[string]string{}
	if pv.HTTP != "" {
		px["http-proxy"] = pv.HTTP
	}
	if pv.HTTPS != "" {
		px["https-proxy"] = pv.HTTPS
	}
	if pv.NoProxy != "" {
		px["no-proxy"] = pv.NoProxy
	}
	raw, _ := json.Marshal(px)
	if top == nil {
		top = map[string]json.RawMessage{}
	}
	top["proxies"] = raw
	return json.MarshalIndent(top, "", "  ")
}

// ApplyResult says what applying did.
type ApplyResult struct {
	Plan ChangePlan `json:"plan"`
	// Done lists what was done, for the user.
	Done []string `json:"done"`
}

// ErrRolledBack wraps a change that failed to apply: the previous
// settings are back in force and the VM runs with them.
var ErrRolledBack = errors.New("the previous settings are back")

// Apply applies next to the running VM: the engine's configuration by
// restarting only the engine; a larger disk online; CPUs, memory, swap,
// shares and the VM's network (and a confirmed smaller disk, which is
// erased) by restarting the VM. A change that fails rolls back to the
// settings in force, and the VM keeps running with them. progress gets
// each step. It fails with ErrNotRunning when no VM runs: the caller then
// just saves next, for the next start.
func (s *Service) Apply(ctx context.Context, next *settings.Document, progress func(string)) (ApplyResult, error) {
	s.op.Lock()
	defer s.op.Unlock()
	if progress == nil {
		progress = func(string) {}
	}
	s.mu.Lock()
	cur, vm, client, running := s.doc, s.vm, s.client, s.status.State == StateRunning
	s.mu.Unlock()
	if !running || client == nil {
		return ApplyResult{}, fmt.Errorf("apply: %w", ErrNotRunning)
	}
	if cur == nil {
		return ApplyResult{}, errors.New("apply: this service was started without settings")
	}
	curEngine, err := EngineConfig(ctx, cur, s.opts.SystemProxy)
	if err != nil {
		curEngine = nil // the running engine's document is compared instead
		if b, gerr := client.EngineConfig(ctx); gerr == nil {
			curEngine = b
		}
	}
	nextEngine, err := EngineConfig(ctx, next, s.opts.SystemProxy)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply: %w", err)
	}
	res := ApplyResult{Plan: PlanChange(cur, next, curEngine, nextEngine)}
	p := res.Plan
	switch {
	case p.Empty():
		s.setDoc(next)
		return res, nil
	case len(p.Restart) > 0 || p.Reset || (p.Grow && !canResize(vm)):
		if err := s.restartWith(ctx, cur, next, p.Reset, progress); err != nil {
			return res, err
		}
		res.Done = append(res.Done, "restarted the VM")
		if p.Reset {
			res.Done = append(res.Done, fmt.Sprintf("made a new %d GiB disk (the old one was erased)", next.Resources.DiskGiB))
		} else if p.Grow {
			res.Done = append(res.Done, fmt.Sprintf("grew the disk to %d GiB", next.Resources.DiskGiB))
		}
		return res, nil
	}
	if p.Engine {
		progress("restarting the engine with the new daemon.json")
		if _, err := client.ApplyEngineConfig(ctx, nextEngine); err != nil {
			return res, fmt.Errorf("apply the engine's configuration: %w", err)
		}
		res.Done = append(res.Done, "restarted the engine with the new daemon.json")
	}
	if p.Grow {
		size := int64(next.Resources.DiskGiB) << 30
		progress(fmt.Sprintf("growing the disk to %d GiB", next.Resources.DiskGiB))
		if err := vm.(machine.DiskResizer).ResizeDisk(ctx, size); err != nil {
			return res, s.rollbackEngine(ctx, p, curEngine, fmt.Errorf("grow the disk: %w", err))
		}
		d, err := client.GrowDisk(ctx)
		if err != nil {
			// The disk file grew; the filesystem grows at the next boot.
			return res, fmt.Errorf("grow the filesystem in the VM (it grows at the next start): %w", err)
		}
		res.Done = append(res.Done, fmt.Sprintf("grew the disk to %d GiB online (%.1f GiB free)", next.Resources.DiskGiB, float64(d.FreeBytes)/(1<<30)))
	}
	s.setDoc(next)
	return res, nil
}

// rollbackEngine puts the engine's previous document back after a later
// step failed, and returns err marked as rolled back.
func (s *Service) rollbackEngine(ctx context.Context, p ChangePlan, prev []byte, err error) error {
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	if p.Engine && prev != nil && client != nil {
		if _, rerr := client.ApplyEngineConfig(ctx, prev); rerr != nil {
			return fmt.Errorf("%w; putting the engine's previous configuration back failed too: %v", err, rerr)
		}
	}
	return fmt.Errorf("%w (%w)", err, ErrRolledBack)
}

func canResize(vm machine.VM) bool {
	_, ok := vm.(machine.DiskResizer)
	return ok
}

func (s *Service) setDoc(d *settings.Document) {
	s.mu.Lock()
	s.doc = d
	s.mu.Unlock()
}

// restartWith stops the VM and starts it with next; when that start fails,
// it starts it again with cur. reset erases the disk first (a smaller disk).
func (s *Service) restartWith(ctx context.Context, cur, next *settings.Document, reset bool, progress func(string)) error {
	progress("stopping the VM")
	s.update(func(x *Status) { x.State, x.Message = StateStopping, "restarting the VM with the new settings" })
	if err := s.teardown(ctx, true); err != nil {
		s.log.Warn("stop before restart", "err", err)
	}
	s.update(func(x *Status) { *x = Status{State: StateStopped} })
	var from, to string
	if s.opts.DiskFile != nil {
		from, to = s.opts.DiskFile(cur), s.opts.DiskFile(next)
	}
	if reset && from != "" {
		progress("erasing the disk")
		if err := os.Remove(from); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("erase the disk: %w", err)
		}
	}
	moved := false
	if !reset && from != to {
		progress(fmt.Sprintf("moving the disk to %s", to))
		if err := moveFile(from, to); err != nil {
			s.setDoc(cur)
			if rerr := s.start(ctx); rerr != nil {
				return fmt.Errorf("move the disk: %w; and the VM did not start again: %v", err, rerr)
			}
			return fmt.Errorf("move the disk: %w (%w)", err, ErrRolledBack)
		}
		moved = true
	}
	s.setDoc(next)
	progress("starting the VM with the new settings")
	stop := s.relayProgress(progress)
	err := s.start(ctx)
	stop()
	if err == nil {
		return nil
	}
	s.log.Error("start with the new settings failed; starting with the previous ones", "err", err)
	progress("the VM did not start with the new settings (" + err.Error() + "); starting it with the previous ones")
	if moved {
		if merr := moveFile(to, from); merr != nil {
			return fmt.Errorf("start with the new settings: %w; the disk stays at %s: %v", err, to, merr)
		}
	}
	s.setDoc(cur)
	stop = s.relayProgress(progress)
	rerr := s.start(ctx)
	stop()
	if rerr != nil {
		return fmt.Errorf("start with the new settings: %w; with the previous ones: %v", err, rerr)
	}
	return fmt.Errorf("start with the new settings: %w (%w)", err, ErrRolledBack)
}

// relayProgress passes the service's progress messages to progress until
// the returned function is called.
func (s *Service) relayProgress(progress func(string)) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		last := ""
		for {
			ch := s.Changed()
			if m := s.Status().Message; m != "" && m != last {
				progress(m)
				last = m
			}
			select {
			case <-ch:
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// moveFile moves a file to to (a folder made for it when missing): a
// rename, or across filesystems a copy that keeps the file sparse, synced
// before the original goes. A missing from is no error (no disk yet).
func moveFile(from, to string) error {
	if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("%s exists already", to)
	}
	if err := os.Rename(from, to); err == nil {
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := to + ".moving"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := copySparse(out, in, fi.Size()); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", from, tmp, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, to); err != nil {
		return err
	}
	return os.Remove(from)
}

// copySparse copies size bytes, leaving holes where the source reads as
// zeros (a VM disk is mostly unwritten).
func copySparse(out *os.File, in *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	var off int64
	for off < size {
		n, err := in.ReadAt(buf, off)
		if n > 0 {
			chunk := buf[:n]
			if !allZero(chunk) {
				if _, werr := out.WriteAt(chunk, off); werr != nil {
					return werr
				}
			}
			off += int64(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
	}
	return out.Truncate(size)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

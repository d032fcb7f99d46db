package pid1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"os"
	"time"

	"github.com/berthdesktop/berth/guestagent/link"
	"github.com/berthdesktop/berth/settings/daemonjson"
)

// EngineConfigPath is the engine's daemon.json in the VM: on the data disk,
// so the engine starts with it at the next boot. The host's settings are
// the source of truth: the host sends it again when they differ.
const EngineConfigPath = DataRoot + "/daemon.json"

// engineStopGrace bounds the engine's orderly stop (its containers stop
// in parallel, each with its own timeout) before a restart kills it.
const engineStopGrace = 30 * time.Second

// EngineConfig implements link.EngineConfigurer.
func (g *guest) EngineConfig() ([]byte, error) {
	b, err := os.ReadFile(EngineConfigPath)
	if errors.Is(err, os.ErrNotExist) {
		return []byte("{}"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the engine's daemon.json: %w", err)
	}
	return b, nil
}

// ApplyEngineConfig implements link.EngineConfigurer: the document is
// checked as the engine checks it, stored, and the engine restarted with
// it; when that run of the engine does not answer, the previous document
// comes back and the engine restarts with it.
func (g *guest) ApplyEngineConfig(ctx context.Context, doc []byte) (bool, error) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if _, err := daemonjson.Parse(doc); err != nil {
		return false, fmt.Errorf("%w: %w", link.ErrInvalidEngineConfig, err)
	}
	old, err := os.ReadFile(EngineConfigPath)
	existed := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read the engine's daemon.json: %w", err)
	}
	if existed && bytes.Equal(old, doc) {
		return false, nil
	}
	if err := atomicfile.Write(EngineConfigPath, doc, 0o644); err != nil {
		return false, err
	}
	g.log.Info("berth: restarting the engine with a new daemon.json")
	gen := g.engine.restart(g.engineCommand(), engineStopGrace)
	actx, cancel := context.WithTimeout(ctx, 90*time.Second)
	runErr := g.engine.awaitRun(actx, gen)
	cancel()
	if runErr == nil {
		return true, nil
	}
	g.log.Error("berth: the engine did not start with the new daemon.json; putting the previous one back", "err", runErr)
	if existed {
		err = atomicfile.Write(EngineConfigPath, old, 0o644)
	} else {
		err = os.Remove(EngineConfigPath)
	}
	if err != nil {
		return true, fmt.Errorf("the engine did not start with the new daemon.json (%v), and the previous one could not be put back: %w", runErr, err)
	}
	gen = g.engine.restart(g.engineCommand(), engineStopGrace)
	bctx, bcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer bcancel()
	if err := g.engine.awaitRun(bctx, gen); err != nil {
		return true, fmt.Errorf("the engine did not start with the new daemon.json (%v), nor with the previous one: %w", runErr, err)
	}
	return true, fmt.Errorf("the engine did not start with the new daemon.json: %v; the previous configuration is back and the engine runs with it", runErr)
}

// GrowDisk implements link.DiskGrower: after the host grew the disk, the
// kernel has the device's new size, and the mounted filesystem grows to it.
func (g *guest) GrowDisk(ctx context.Context) (link.DiskUsage, error) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	dev := g.params.Disk
	sb, err := readSuperblock(dev)
	if err != nil {
		return link.DiskUsage{}, err
	}
	size, err := deviceSize(dev)
	if err != nil {
		return link.DiskUsage{}, err
	}
	if NeedsGrow(size, sb) {
		g.log.Info("berth: growing the data filesystem online", "device", dev, "from", sb.Bytes(), "to", size)
		out, err := g.reaper.run(ctx, "resize2fs", dev)
		if err != nil {
			return link.DiskUsage{}, fmt.Errorf("resize2fs %s: %w: %s", dev, err, bytes.TrimSpace(out))
		}
	}
	return g.DiskUsage()
}

var (
	_ link.EngineConfigurer = (*guest)(nil)
	_ link.DiskGrower       = (*guest)(nil)
)

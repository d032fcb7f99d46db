package pid1

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// loadModules loads the modules of the list file, each once everything it
// needs is loaded. A module that fails to load is logged, and so are the
// modules that need it; the others still load.
func loadModules(log *slog.Logger, list string) error {
	text, err := os.ReadFile(list)
	if err != nil {
		return fmt.Errorf("read module list: %w", err)
	}
	mods, err := ParseModuleList(string(text))
	if err != nil {
		return err
	}
	// One at a time: under TCG, two parallel loads measured slower than
	// one after the other (each load synchronises every CPU).
	return loadInOrder(log, mods, 1, loadModule)
}

// loadInOrder runs load for every module after its dependencies, at most
// workers at a time.
func loadInOrder(log *slog.Logger, mods []Module, workers int, load func(string) error) error {
	if workers < 1 {
		workers = 1
	}
	type result struct {
		done chan struct{}
		err  error
	}
	results := make(map[string]*result, len(mods))
	for _, m := range mods {
		results[m.Path] = &result{done: make(chan struct{})}
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for _, m := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := results[m.Path]
			defer close(r.done)
			for _, d := range m.Deps {
				dr := results[d]
				<-dr.done
				if dr.err != nil {
					r.err = fmt.Errorf("needs %s, which failed", d)
				}
			}
			if r.err == nil {
				sem <- struct{}{}
				began := time.Now()
				r.err = load(m.Path)
				<-sem
				log.Debug("berth: loaded module", "module", filepath.Base(m.Path), "ms", time.Since(began).Milliseconds(), "err", r.err)
			}
			if r.err != nil {
				log.Warn("berth: load module", "module", m.Path, "err", r.err)
				mu.Lock()
				failed = append(failed, m.Path)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		return fmt.Errorf("%d modules failed to load", len(failed))
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module: %w", err)
	}
	return nil
}

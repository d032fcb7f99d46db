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

// moduleWorkers is how many modules load at once. Two at a time over one
// graph was 0.3-0.4 s faster under TCG than one at a time, but two boots
// (one in ~165, then one in a CI run) hung with both vCPUs soft-locked in
// pid1's threads while loading: both in module loading at once. One at a
// time; the engine's start-up overlaps it instead (supervisor.prestart).
const moduleWorkers = 1

// moduleLoader loads the modules of the image's lists as one graph: at
// most moduleWorkers at a time, each after its dependencies and, among
// those whose dependencies are done, the one of the earliest list and line
// first; the first list (the devices) one after the other, in its order.
// Boot steps wait for the list they need.
type moduleLoader struct {
	lists map[string]chan struct{} // closed when every module of the list has ended
}

// startModules starts loading the modules of the list files, in priority
// order. A missing or bad list counts as empty (and a bad one is logged).
func startModules(log *slog.Logger, workers int, load func(string) error, files ...string) *moduleLoader {
	l := &moduleLoader{lists: map[string]chan struct{}{}}
	var all []Module
	index := map[string]int{}
	members := make([][]int, len(files)) // module indexes of each list
	for i, f := range files {
		l.lists[f] = make(chan struct{})
		text, err := os.ReadFile(f)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				log.Warn("berth: read module list", "list", f, "err", err)
			}
			continue
		}
		known := make(map[string]bool, len(index))
		for p := range index {
			known[p] = true
		}
		mods, err := ParseModuleList(string(text), known)
		if err != nil {
			log.Warn("berth: module list", "list", f, "err", err)
			continue
		}
		prev := ""
		for _, m := range mods {
			j, ok := index[m.Path]
			if !ok {
				if i == 0 && prev != "" {
					// The first list loads in its order, one module at a
					// time: the bus driver (virtio_pci) has probed its
					// devices before their drivers register, as with udev
					// and as before the lists loaded in parallel.
					m.Deps = append(append([]string(nil), m.Deps...), prev)
				}
				j = len(all)
				index[m.Path] = j
				all = append(all, m)
			}
			members[i] = append(members[i], j)
			prev = m.Path
		}
	}
	// left[i] counts the modules of list i not yet ended.
	left := make([]int, len(files))
	listsOf := make([][]int, len(all))
	for i, ms := range members {
		left[i] = len(ms)
		for _, j := range ms {
			listsOf[j] = append(listsOf[j], i)
		}
		if left[i] == 0 {
			close(l.lists[files[i]])
		}
	}
	go func() {
		err := loadInOrder(log, all, workers, load, func(j int) {
			for _, i := range listsOf[j] {
				if left[i]--; left[i] == 0 {
					close(l.lists[files[i]])
				}
			}
		})
		if err != nil {
			log.Warn("berth: modules", "err", err)
		}
	}()
	return l
}

// wait returns once every module of the list file has loaded or failed.
func (l *moduleLoader) wait(file string) {
	if ch, ok := l.lists[file]; ok {
		<-ch
	}
}

// loadInOrder runs load for every module after its dependencies, at most
// workers at a time, the earliest ready module first. A module that fails
// is logged, and so are the modules that need it, which are not loaded;
// the others still load. ended, when not nil, is called once per module
// index when the module has loaded or failed, under a lock: it must not
// block.
func loadInOrder(log *slog.Logger, mods []Module, workers int, load func(string) error, ended func(int)) error {
	if workers < 1 {
		workers = 1
	}
	const (
		pending = iota
		running
		loaded
		failed
	)
	index := make(map[string]int, len(mods))
	for i, m := range mods {
		index[m.Path] = i
	}
	state := make([]int, len(mods))
	var (
		mu        sync.Mutex
		wake      = sync.NewCond(&mu)
		failures  []string
		unstarted = len(mods) // pending modules
	)
	end := func(i int, err error) {
		if err != nil {
			state[i] = failed
			failures = append(failures, mods[i].Path)
			log.Warn("berth: load module", "module", mods[i].Path, "err", err)
		} else {
			state[i] = loaded
		}
		if ended != nil {
			ended(i)
		}
	}
	// next picks, under mu, the first pending module whose dependencies
	// have all loaded, failing on the way those with a failed dependency.
	// It returns -1 when none is ready yet and -2 when none is pending.
	next := func() int {
		if unstarted == 0 {
			return -2
		}
		for i, m := range mods {
			if state[i] != pending {
				continue
			}
			ready := true
			for _, d := range m.Deps {
				switch j, ok := index[d]; {
				case !ok || state[j] == loaded:
				case state[j] == failed:
					unstarted--
					end(i, fmt.Errorf("needs %s, which failed", d))
					ready = false
				default:
					ready = false
				}
				if state[i] != pending {
					break
				}
			}
			if ready && state[i] == pending {
				return i
			}
		}
		if unstarted == 0 {
			return -2
		}
		return -1
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			for {
				i := next()
				if i == -2 {
					wake.Broadcast()
					return
				}
				if i == -1 {
					wake.Wait()
					continue
				}
				state[i] = running
				unstarted--
				mu.Unlock()
				began := time.Now()
				err := load(mods[i].Path)
				log.Debug("berth: loaded module", "module", filepath.Base(mods[i].Path), "ms", time.Since(began).Milliseconds(), "err", err)
				mu.Lock()
				end(i, err)
				wake.Broadcast()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		return fmt.Errorf("%d modules failed to load", len(failures))
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

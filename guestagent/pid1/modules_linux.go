package pid1

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// loadModules loads, in order, each module listed in the file at list.
// A module that fails to load is logged; the others are still tried.
func loadModules(log *slog.Logger, list string) error {
	f, err := os.Open(list)
	if err != nil {
		return fmt.Errorf("open module list: %w", err)
	}
	defer f.Close()
	var failed []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path := strings.TrimSpace(sc.Text())
		if path == "" || strings.HasPrefix(path, "#") {
			continue
		}
		if err := loadModule(path); err != nil {
			log.Warn("berth: load module", "module", path, "err", err)
			failed = append(failed, path)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read module list: %w", err)
	}
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

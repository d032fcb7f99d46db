package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// ProgramCLI runs the berth program found by FindCLI.
type ProgramCLI struct {
	Path string
	// Env is added to the program's environment.
	Env []string
}

// FindCLI finds the berth program: $BERTH_CLI, else beside the running
// program (the app ships them together), else on PATH.
func FindCLI() (string, error) {
	name := "berth"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if p := os.Getenv("BERTH_CLI"); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		for _, dir := range []string{filepath.Dir(exe), filepath.Join(filepath.Dir(exe), "..", "..", "bin")} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("the berth program is not beside the app nor on PATH (build it with `make build`, or name it with BERTH_CLI): %w", err)
	}
	return p, nil
}

// Run implements CLI: each line of stdout and stderr goes to line; a
// failure's error carries the last lines of stderr.
func (c ProgramCLI) Run(ctx context.Context, line func(string), args ...string) error {
	cmd := exec.CommandContext(ctx, c.Path, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", c.Path, err)
	}
	var mu sync.Mutex
	var errLines []string
	var wg sync.WaitGroup
	read := func(r io.Reader, keep bool) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			mu.Lock()
			if keep {
				errLines = append(errLines, l)
				if len(errLines) > 20 {
					errLines = errLines[1:]
				}
			}
			line(l)
			mu.Unlock()
		}
	}
	wg.Add(2)
	go read(stdout, false)
	go read(stderr, true)
	wg.Wait()
	err = cmd.Wait()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(errLines) > 0 {
		return errors.New(strings.Join(errLines, "\n"))
	}
	return err
}

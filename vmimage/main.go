package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
)

func main() {
	out := flag.String("out", "build/vm", "output directory; each architecture goes to OUT/<arch>")
	cache := flag.String("cache", "build/vm/cache", "download cache")
	version := flag.String("version", "dev", "agent version")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: vmimage [-out DIR] [-cache DIR] [-version V] [amd64] [arm64]")
		flag.PrintDefaults()
	}
	flag.Parse()
	arches := flag.Args()
	if len(arches) == 0 {
		arches = []string{"amd64", "arm64"}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	repo, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmimage:", err)
		os.Exit(1)
	}
	absOut, _ := filepath.Abs(*out)
	absCache, _ := filepath.Abs(*cache)
	if err := os.MkdirAll(absOut, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "vmimage:", err)
		os.Exit(1)
	}
	for _, arch := range arches {
		if _, err := Build(ctx, Config{Arch: arch, RepoRoot: repo, OutDir: absOut, CacheDir: absCache, Version: *version, Log: log}); err != nil {
			fmt.Fprintf(os.Stderr, "vmimage %s: %v\n", arch, err)
			os.Exit(1)
		}
	}
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func runtimeGOROOT() string {
	if r := os.Getenv("GOROOT"); r != "" {
		return r
	}
	if p, err := exec.LookPath("go"); err == nil {
		return filepath.Dir(filepath.Dir(p))
	}
	return runtime.GOROOT()
}

func commandEnv(ctx context.Context, dir, name string, args []string, env ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	return c
}

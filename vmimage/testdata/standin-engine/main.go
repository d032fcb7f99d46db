// Command standin-engine stands in for the engine in the VM boot tests: it
// takes the engine's flags, answers /_ping on the -H unix socket, and counts
// its starts in a file under --data-root so a test can see the data disk
// kept across reboots (GET /boots). SIGTERM stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	fs := flag.NewFlagSet("engine", flag.ExitOnError)
	dataRoot := fs.String("data-root", "/var/lib/berth", "")
	fs.String("exec-root", "/run/berth", "")
	fs.String("shared-paths", "", "")
	// What pid1 passes for host.docker.internal, which the stand-in has no use for.
	fs.String("host-gateway-ip", "", "")
	fs.Bool("host-docker-internal", false, "")
	fs.Bool("debug", false, "")
	fs.Bool("container-proxies", false, "")
	fs.String("host-os", "", "")
	var hosts hostFlags
	fs.Var(&hosts, "H", "repeatable; the stand-in serves the first")
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "engine" {
		args = args[1:]
	}
	fs.Parse(args)
	counter := filepath.Join(*dataRoot, "standin-boots")
	raw, _ := os.ReadFile(counter)
	n, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	n++
	f, err := os.Create(counter)
	if err == nil {
		fmt.Fprintf(f, "%d\n", n)
		f.Sync()
		f.Close()
	}
	host := "unix:///run/berth/docker.sock"
	if len(hosts) > 0 {
		host = hosts[0]
	}
	sock := strings.TrimPrefix(host, "unix://")
	os.MkdirAll(filepath.Dir(sock), 0o755)
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin-engine:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "OK") })
	mux.HandleFunc("/pivot", func(w http.ResponseWriter, r *http.Request) {
		if err := tryPivotRoot(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "OK")
	})
	mux.HandleFunc("/time", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, time.Now().UTC().Format(time.RFC3339))
	})
	mux.HandleFunc("/boots", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%d", n) })
	srv := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	srv.Serve(ln)
}

// tryPivotRoot does what a container runtime does: in a new mount namespace
// it pivots into a fresh tmpfs. It fails on the initramfs rootfs.
func tryPivotRoot() error {
	errc := make(chan error, 1)
	go func() {
		// The thread changes namespace and is never given back to the
		// scheduler: the goroutine ends with the thread locked.
		runtime.LockOSThread()
		errc <- pivotInNewNamespace()
	}()
	return <-errc
}

func pivotInNewNamespace() error {
	if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	dir, err := os.MkdirTemp("", "pivot-")
	if err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "old"), 0o700); err != nil {
		return err
	}
	if err := syscall.PivotRoot(dir, filepath.Join(dir, "old")); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	return nil
}

// hostFlags collects the repeated -H.
type hostFlags []string

func (h *hostFlags) String() string     { return strings.Join(*h, ",") }
func (h *hostFlags) Set(v string) error { *h = append(*h, v); return nil }

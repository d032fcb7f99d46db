//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	stdimage "image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// desktopTools are the programs the desktop tests drive: the X server, the
// session bus the app's tray and GTK want, ImageMagick's import for
// screenshots, xdotool for keys, Node.js for the browser tests and
// Debian's chromium.
var desktopTools = []string{"Xvfb", "dbus-run-session", "dbus-daemon", "import", "xdotool", "node", "/usr/bin/chromium"}

// desktopEnv is what TestDesktop needs beyond a running VM.
type desktopEnv struct {
	*env
	prod, dev string // the production and dev builds of the desktop app
	artifacts string // screenshots and logs are kept here
	root      string
}

// newDesktopEnv skips unless the desktop builds and the tools are there,
// then boots the VM with the test image loaded.
func newDesktopEnv(t *testing.T, ctx context.Context) *desktopEnv {
	prod, dev := os.Getenv("BERTH_DESKTOP"), os.Getenv("BERTH_DESKTOP_DEV")
	if prod == "" || dev == "" {
		t.Skip("the desktop app's builds come from make test-ui (BERTH_DESKTOP and BERTH_DESKTOP_DEV name them)")
	}
	for _, tool := range desktopTools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make deps-ui installs it): %v", tool, err)
		}
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "e2e", "ui", "node_modules", "playwright-core")); err != nil {
		t.Skipf("playwright-core is not installed in e2e/ui (make deps-ui runs npm ci): %v", err)
	}
	artifacts := os.Getenv("BERTH_UI_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, ctx)
	e.start(t)
	e.loadImage(t)
	e.environ = append(e.environ, "BERTH_CLI="+e.berth)
	return &desktopEnv{env: e, prod: prod, dev: dev, artifacts: artifacts, root: root}
}

// display is an Xvfb server of the test's own.
type display struct {
	name string
	cmd  *exec.Cmd
}

func startXvfb(t *testing.T) *display {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb did not say its display")
		}
		return &display{name: ":" + n, cmd: cmd}
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not start in 30 s")
	}
	return nil
}

// app is one run of a desktop binary, in its own process group.
type app struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

// startApp runs bin on the display with the test's Berth environment, on
// bus, or inside a session bus of its own when bus is nil.
func (d *desktopEnv) startApp(t *testing.T, x *display, bus *sessionBus, bin string, extraEnv []string, args ...string) *app {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command("dbus-run-session", append([]string{"--", bin}, args...)...)
	if bus != nil {
		cmd = exec.Command(bin, args...)
		extraEnv = append(extraEnv, "DBUS_SESSION_BUS_ADDRESS="+bus.addr)
	}
	cmd.Env = append(append(append([]string(nil), d.environ...), "DISPLAY="+x.name, "GDK_BACKEND=x11", "NO_AT_BRIDGE=1"), extraEnv...)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	a := &app{cmd: cmd, log: &log}
	t.Cleanup(func() { a.stop() })
	return a
}

func (a *app) stop() {
	if a.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// TestDesktop runs the desktop app against a running VM: the browser tests
// drive the dev build's backend with chromium; the window tests run the
// production build under Xvfb, screenshot each main screen and measure its
// start and its memory.
func TestDesktop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	d := newDesktopEnv(t, ctx)
	t.Run("browser", func(t *testing.T) { d.browserTests(t) })
	t.Run("window", func(t *testing.T) { d.windowTests(t) })
}

// browserTests runs e2e/ui's node tests against the dev build serving the
// frontend and the bound Go methods on loopback.
func (d *desktopEnv) browserTests(t *testing.T) {
	x := startXvfb(t)
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	configHome := filepath.Join(d.home, ".config")
	a := d.startApp(t, x, nil, d.dev, []string{"BERTH_NO_TRAY=1", "XDG_CONFIG_HOME=" + configHome},
		"-devserver", fmt.Sprintf("127.0.0.1:%d", port), "-assetdir", filepath.Join(d.root, "frontend", "dist"))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := get(url); err == nil {
			break
		}
		if a.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("the dev build never served %s; its log:\n%s", url, a.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd := exec.CommandContext(d.ctx, "node", "--test", "--test-concurrency=1", "--test-reporter=spec", "browser.test.mjs")
	cmd.Dir = filepath.Join(d.root, "e2e", "ui")
	cmd.Env = append(append([]string(nil), d.environ...),
		"BERTH_UI_URL="+url,
		"BERTH_TEST_IMAGE="+image,
		"BERTH_UI_ARTIFACTS="+d.artifacts,
		"BERTH_SETTINGS="+d.layout.Home+"/settings.json",
		"BERTH_AUTOSTART="+filepath.Join(configHome, "autostart", "berth.desktop"),
		"CHROMIUM=/usr/bin/chromium",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("browser tests:\n%s", out)
	if err != nil {
		t.Fatalf("browser tests: %v; the app's log:\n%s", err, a.log)
	}
}

// screens are the sidebar's screens, in order: Ctrl+N shows the Nth.
var screens = []string{"Status", "Containers", "Images", "Volumes", "Settings", "Troubleshoot"}

// windowTests: cold start to first paint (median of 3 launches), a
// screenshot of each screen checked not blank, the app's memory idle, and
// its tray icon.
func (d *desktopEnv) windowTests(t *testing.T) {
	x := startXvfb(t)
	var starts []time.Duration
	var a *app
	var bus *sessionBus
	for i := 0; i < 3; i++ {
		if a != nil {
			a.stop()
		}
		bus = startSessionBus(t)
		began := time.Now()
		a = d.startApp(t, x, bus, d.prod, nil)
		d.waitPainted(t, x, a, 90*time.Second)
		starts = append(starts, time.Since(began))
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	t.Logf("figure: cold start to first paint, median of 3: %v (each %v)", starts[1].Round(time.Millisecond), starts)

	win := strings.TrimSpace(run(t, x, "xdotool", "search", "--sync", "--onlyvisible", "--name", "^Berth$"))
	if i := strings.IndexByte(win, '\n'); i >= 0 {
		win = win[:i]
	}
	for i, s := range screens {
		run(t, x, "xdotool", "windowfocus", "--sync", win)
		run(t, x, "xdotool", "key", "--clearmodifiers", "ctrl+"+strconv.Itoa(i+1))
		time.Sleep(1500 * time.Millisecond) // the screen loads its data
		path := filepath.Join(d.artifacts, "window-"+strings.ToLower(s)+".png")
		img := screenshot(t, x, path)
		if why := blank(img); why != "" {
			t.Errorf("screen %s looks blank (%s): %s", s, why, path)
		}
	}
	// Idle on the Status screen with the engine running.
	run(t, x, "xdotool", "key", "--clearmodifiers", "ctrl+1")
	time.Sleep(10 * time.Second)
	procs := treeMemory(a.cmd.Process.Pid)
	var rss, pss, anon float64
	var each []string
	for _, p := range procs {
		rss += p.rss
		pss += p.pss
		anon += p.anon
		each = append(each, fmt.Sprintf("%s RSS %.0f PSS %.0f anonymous %.0f", p.comm, p.rss, p.pss, p.anon))
	}
	t.Logf("figure: idle memory with the engine running: the app's process tree (%d processes: the app and WebKit's) RSS %.0f MiB, PSS %.0f MiB, anonymous %.0f MiB (MiB each: %s)",
		len(procs), rss, pss, anon, strings.Join(each, "; "))

	d.trayTests(t, x, bus, a)
}

// waitPainted waits until the screen holds more than a blank window.
func (d *desktopEnv) waitPainted(t *testing.T, x *display, a *app, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if a.cmd.ProcessState != nil {
			t.Fatalf("the app exited: %v\n%s", a.cmd.ProcessState, a.log)
		}
		out, err := exec.Command("import", "-display", x.name, "-window", "root", "png:-").Output()
		if err == nil {
			if img, err := png.Decode(bytes.NewReader(out)); err == nil && blank(img) == "" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	path := filepath.Join(d.artifacts, "window-never-painted.png")
	screenshot(t, x, path)
	t.Fatalf("the window never painted in %v (%s); the app's log:\n%s", timeout, path, a.log)
}

func run(t *testing.T, x *display, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+x.name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screenshot saves the whole screen to path and returns it decoded.
func screenshot(t *testing.T, x *display, path string) stdimage.Image {
	t.Helper()
	run(t, x, "import", "-display", x.name, "-window", "root", path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

// blank says why img is not a rendered window ("" when it is one): a
// rendered screen has text and controls, so many colours, and no single
// colour covers nearly all of it.
func blank(img stdimage.Image) string {
	b := img.Bounds()
	counts := map[uint32]int{}
	total := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			counts[(r>>8)<<16|(g>>8)<<8|bl>>8]++
			total++
		}
	}
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	switch {
	case len(counts) < 32:
		return fmt.Sprintf("%d colours", len(counts))
	case float64(top)/float64(total) > 0.97:
		return fmt.Sprintf("one colour covers %.1f%%", 100*float64(top)/float64(total))
	}
	return ""
}

// procMemory is one process's resident, proportional and anonymous set
// sizes in MiB.
type procMemory struct {
	comm           string
	rss, pss, anon float64 // anon: memory no file backs (heaps, stacks)
}

// treeMemory reads the resident and proportional set sizes of pid and its
// descendants.
func treeMemory(pid int) []procMemory {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The parent is the second field after the command in parentheses.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 {
				pp, _ := strconv.Atoi(f[1])
				children[pp] = append(children[pp], p)
			}
		}
	}
	// Start at the app itself, below dbus-run-session.
	for q := []int{pid}; len(q) > 0; q = append(q[1:], children[q[0]]...) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", q[0])); strings.HasPrefix(string(comm), "berth-desktop") {
			pid = q[0]
			break
		}
	}
	var procs []procMemory
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = append(todo[1:], children[p]...)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		m := procMemory{comm: strings.TrimSpace(string(comm))}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "Rss:":
				m.rss = kb / 1024
			case "Pss:":
				m.pss = kb / 1024
			case "Anonymous:":
				m.anon = kb / 1024
			}
		}
		procs = append(procs, m)
	}
	return procs
}

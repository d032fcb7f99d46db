//go:build linux

package main

// The harness of the integration tests and the benchmark: it builds
// berth-agent, starts `berth-agent engine` on temporary roots, loads the
// busybox test image, and runs the machine's docker CLI against it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berthdesktop/berth/internal/testimage"
	"github.com/moby/moby/api/types/container"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// testImage is the tag of the busybox image every test uses.
const testImage = "berth-test/busybox:latest"

// cmdTimeout bounds one docker CLI invocation so that a hung engine fails
// the test instead of hanging it; it is a guard, not a measurement.
const cmdTimeout = 2 * time.Minute

// waitTimeout bounds the polling of eventually.
const waitTimeout = time.Minute

var (
	// skipReason is set when the integration tests cannot run here.
	skipReason string
	// agentBin is the berth-agent binary under test.
	agentBin string
	// workDir holds the binary and the shared engine's roots.
	workDir string
	// imageTar is the docker-save tarball of the test image.
	imageTar string
	// img is the test image.
	img *testimage.Image

	sharedOnce sync.Once
	shared     *engine
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := func() int {
		if err := setup(); err != nil {
			fmt.Fprintf(os.Stderr, "integration setup: %v\n", err)
			return 1
		}
		defer os.RemoveAll(workDir)
		code := m.Run()
		if shared != nil {
			if err := shared.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "stop shared engine: %v\n", err)
				code = 1
			}
			shared.cleanup()
		}
		stopRegistryEngine()
		return code
	}()
	os.Exit(code)
}

// setup decides whether the integration tests can run, and if so builds the
// agent and the test image.
func setup() error {
	switch {
	case os.Geteuid() != 0:
		skipReason = "integration tests run the engine natively, which needs root"
	case !haveDocker():
		skipReason = "integration tests drive the docker CLI, which is not in PATH"
	}
	if _, err := os.Stat(testimage.DefaultBusybox); err != nil && skipReason == "" {
		skipReason = "integration tests build their image from " + testimage.DefaultBusybox + " (Debian package busybox-static): " + err.Error()
	}
	if skipReason != "" {
		return nil
	}
	var err error
	workDir, err = os.MkdirTemp("", "berth-it-")
	if err != nil {
		return fmt.Errorf("make work dir: %w", err)
	}
	// The engine's state must be reachable by container inits.
	if err := os.Chmod(workDir, 0o755); err != nil {
		return fmt.Errorf("chmod work dir: %w", err)
	}
	agentBin = filepath.Join(workDir, "berth-agent")
	if prebuilt := os.Getenv("BERTH_AGENT"); prebuilt != "" {
		// A private copy: a rebuild of the original while the tests run
		// must not pull the binary from under the engines.
		if err := copyFile(prebuilt, agentBin, 0o755); err != nil {
			return err
		}
	} else {
		cmd := exec.Command("go", "build", "-trimpath", "-o", agentBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build berth-agent: %w\n%s", err, out)
		}
	}
	img, err = testimage.Build(testimage.Options{Tag: testImage})
	if err != nil {
		return err
	}
	imageTar = filepath.Join(workDir, "busybox-save.tar")
	f, err := os.Create(imageTar)
	if err != nil {
		return fmt.Errorf("create image tarball: %w", err)
	}
	if err := img.WriteDockerSave(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write image tarball: %w", err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

func haveDocker() bool {
	_, err := exec.LookPath("docker")
	return err == nil
}

// needEngine skips the test when the integration tests cannot run here and
// returns the shared engine, started (and given the test image) on first use.
func needEngine(t *testing.T) *engine {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	sharedOnce.Do(func() {
		shared, sharedErr = startUnderTest(filepath.Join(workDir, "shared"))
		if sharedErr != nil {
			return
		}
		if r := shared.docker(nil, "load", "-i", imageTar); r.code != 0 {
			sharedErr = fmt.Errorf("docker load: exit %d: %s", r.code, r.stderr)
		}
	})
	if sharedErr != nil {
		t.Fatalf("shared engine: %v", sharedErr)
	}
	shared.watch(t)
	return shared
}

// ownEngine skips the test when the integration tests cannot run here and
// returns an engine of the test's own under workDir/name, given the test
// image; it is stopped and its root and bridge removed when the test ends,
// after its log has been shown if the test failed.
func ownEngine(t *testing.T, name string) *engine {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	e, err := startUnderTest(filepath.Join(workDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return e.ownedBy(t)
}

// ownedBy makes e the test's: stopped and cleaned up when it ends, watched,
// and holding the test image.
func (e *engine) ownedBy(t *testing.T) *engine {
	t.Helper()
	t.Cleanup(e.cleanup)
	t.Cleanup(func() { _ = e.stop() })
	e.watch(t)
	if r := e.docker(nil, "load", "-i", imageTar); r.code != 0 {
		t.Fatalf("%v", r)
	}
	return e
}

// startUnderTest starts the engine the tests drive: Berth's, or Debian's
// dockerd when BERTH_IT_PEER=dockerd.
func startUnderTest(root string) (*engine, error) {
	if os.Getenv("BERTH_IT_PEER") == "dockerd" {
		return startDockerd(root)
	}
	return startEngine(root)
}

// engine is one running `berth-agent engine`.
type engine struct {
	root      string // holds data, exec, the socket, the log and the CLI config
	dataRoot  string
	execRoot  string
	sock      string
	logPath   string
	cliConfig string
	// peer is set for Debian's dockerd (dockerd_test.go), which has no
	// bridge network here: run and create get --network none.
	peer bool
	// extraArgs are more `berth-agent engine` flags.
	extraArgs []string
	// bridge is the bridge made for this engine alone, removed by cleanup
	// (the engine keeps its bridge when it exits, as dockerd keeps docker0).
	bridge  string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// bridgeSeq numbers the engines' bridges.
var bridgeSeq atomic.Int32

// startEngine starts an engine whose state lives under root (kept across
// restarts of the same root) and waits until /_ping answers.
func startEngine(root string, args ...string) (*engine, error) {
	var bridge string
	if !slices.Contains(args, "--bridge") {
		// Each engine gets a bridge and subnet of its own, so that engines
		// of concurrent tests (and a running Berth) cannot clash.
		n := bridgeSeq.Add(1)
		bridge = fmt.Sprintf("bt%dx%d", os.Getpid()%10000, n)
		args = append(args, "--bridge", bridge,
			"--bip", fmt.Sprintf("10.%d.%d.1/24", 200+n%50, os.Getpid()%250))
	}
	e := &engine{
		bridge:    bridge,
		extraArgs: args,
		root:      root,
		dataRoot:  filepath.Join(root, "data"),
		execRoot:  filepath.Join(root, "exec"),
		sock:      filepath.Join(root, "docker.sock"),
		logPath:   filepath.Join(root, "engine.log"),
		cliConfig: filepath.Join(root, "cli"),
	}
	for _, d := range []string{root, e.cliConfig} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("make %s: %w", d, err)
		}
	}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *engine) start() error {
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open engine log: %w", err)
	}
	defer logf.Close()
	if e.peer {
		e.cmd = exec.Command("dockerd", e.dockerdArgs()...)
	} else {
		e.cmd = exec.Command(agentBin, append([]string{"engine",
			"--data-root", e.dataRoot, "--exec-root", e.execRoot, "-H", "unix://" + e.sock}, e.extraArgs...)...)
	}
	e.cmd.Stdout = logf
	e.cmd.Stderr = logf
	// The engine goes down with the test binary, even when it is killed.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", e.cmd.Path, err)
	}
	e.exited = make(chan struct{})
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	deadline := time.Now().Add(waitTimeout)
	for {
		if err := e.ping(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			e.kill()
			return fmt.Errorf("engine did not answer /_ping on %s: %w\n%s", e.sock, err, e.logTail(0, 40))
		}
		select {
		case <-e.exited:
			return fmt.Errorf("engine exited before answering /_ping: %v\n%s", e.waitErr, e.logTail(0, 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping asks GET /_ping over the engine's socket.
func (e *engine) ping() error {
	c := http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		}},
	}
	resp, err := c.Get("http://engine/_ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		return fmt.Errorf("/_ping: %s %q", resp.Status, body)
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (e *engine) stop() error {
	if e.cmd == nil || e.cmd.Process == nil {
		return nil
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal engine: %w", err)
	}
	select {
	case <-e.exited:
	case <-time.After(waitTimeout):
		e.kill()
		return fmt.Errorf("engine did not exit on SIGTERM\n%s", e.logTail(0, 40))
	}
	if e.waitErr != nil {
		return fmt.Errorf("engine exit after SIGTERM: %w\n%s", e.waitErr, e.logTail(0, 40))
	}
	return nil
}

func (e *engine) kill() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-e.exited
	}
}

// cleanup unmounts whatever the engine left mounted under its root and
// removes the root.
func (e *engine) cleanup() {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil {
		mounts, _ := parseMountinfo(string(data))
		// Deepest first.
		for i := len(mounts) - 1; i >= 0; i-- {
			if strings.HasPrefix(mounts[i].Point, e.root+"/") {
				_ = unix.Unmount(mounts[i].Point, unix.MNT_DETACH)
			}
		}
	}
	_ = os.RemoveAll(e.root)
	if e.bridge != "" {
		if l, err := netlink.LinkByName(e.bridge); err == nil {
			_ = netlink.LinkDel(l)
		}
	}
}

// logTail returns up to n last lines of the engine's log from byte offset.
func (e *engine) logTail(offset int64, n int) string {
	data, err := os.ReadFile(e.logPath)
	if err != nil {
		return "(no engine log: " + err.Error() + ")"
	}
	if offset > int64(len(data)) {
		offset = 0
	}
	lines := strings.Split(strings.TrimRight(string(data[offset:]), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "engine log:\n  " + strings.Join(lines, "\n  ")
}

// watch prints the engine's log lines written during t when t fails.
func (e *engine) watch(t *testing.T) {
	var offset int64
	if fi, err := os.Stat(e.logPath); err == nil {
		offset = fi.Size()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logTail(offset, 60))
		}
	})
}

// env is the docker CLI's environment for this engine.
func (e *engine) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return append(env, "DOCKER_HOST=unix://"+e.sock, "DOCKER_CONFIG="+e.cliConfig, "DOCKER_CLI_HINTS=false")
}

// result is one docker CLI run.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("docker %s: exit %d\nstdout: %q\nstderr: %q", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// docker runs the docker CLI with stdin (nil for none).
func (e *engine) docker(stdin io.Reader, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", e.peerArgs(args)...)
	cmd.Env = e.env()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ctx.Err() != nil {
			r.code = -1
			r.stderr += "\n(killed: no answer within " + cmdTimeout.String() + ")"
		}
	default:
		r.code = -1
		r.stderr += "\n" + err.Error()
	}
	return r
}

// peerArgs adds --network none to run and create for the peer dockerd.
func (e *engine) peerArgs(args []string) []string {
	if !e.peer || len(args) == 0 || (args[0] != "run" && args[0] != "create") {
		return args
	}
	return append([]string{args[0], "--network", "none"}, args[1:]...)
}

// ok runs docker, fails the test unless it exits 0, and returns its
// stdout without the trailing newline.
func (e *engine) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := e.docker(nil, args...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return strings.TrimRight(r.stdout, "\n")
}

// okIn is ok with stdin.
func (e *engine) okIn(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := e.docker(strings.NewReader(stdin), args...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return strings.TrimRight(r.stdout, "\n")
}

// code runs docker and returns its exit status and the run.
func (e *engine) code(args ...string) (int, result) {
	r := e.docker(nil, args...)
	return r.code, r
}

// runDetached starts a container with `docker run -d`, removes it when the
// test ends, and returns its ID.
func (e *engine) runDetached(t *testing.T, args ...string) string {
	t.Helper()
	id := e.ok(t, append([]string{"run", "-d"}, args...)...)
	e.removeLater(t, id)
	return id
}

// create creates a container, removes it when the test ends, and returns
// its ID.
func (e *engine) create(t *testing.T, args ...string) string {
	t.Helper()
	id := e.ok(t, append([]string{"create"}, args...)...)
	e.removeLater(t, id)
	return id
}

func (e *engine) removeLater(t *testing.T, id string) {
	t.Cleanup(func() { e.docker(nil, "rm", "-f", id) })
}

// inspect returns the container's inspect document.
func (e *engine) inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	out := e.ok(t, "container", "inspect", id)
	var docs []container.InspectResponse
	if err := json.Unmarshal([]byte(out), &docs); err != nil {
		t.Fatalf("decode inspect of %s: %v\n%s", id, err, out)
	}
	if len(docs) != 1 {
		t.Fatalf("inspect %s: %d documents", id, len(docs))
	}
	return docs[0]
}

// eventually polls cond until it reports true, failing after waitTimeout
// with cond's last description. It is a guard against a hang, not a
// measurement.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		done, last := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %s; last: %s", what, waitTimeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitState waits until the container's State.Status is status.
func (e *engine) waitState(t *testing.T, id, status string) container.InspectResponse {
	t.Helper()
	var doc container.InspectResponse
	eventually(t, "container "+id+" state "+status, func() (bool, string) {
		doc = e.inspect(t, id)
		if doc.State == nil {
			return false, "no State"
		}
		return string(doc.State.Status) == status, string(doc.State.Status)
	})
	return doc
}

// psEntry is one line of `docker ps --format '{{json .}}'`.
type psEntry struct {
	ID      string
	Image   string
	Command string
	Names   string
	State   string
	Status  string
	Labels  string
}

func (e *engine) ps(t *testing.T, args ...string) []psEntry {
	t.Helper()
	out := e.ok(t, append([]string{"ps", "--no-trunc", "--format", "{{json .}}"}, args...)...)
	var list []psEntry
	for _, line := range nonEmptyLines(out) {
		var p psEntry
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("decode ps line %q: %v", line, err)
		}
		list = append(list, p)
	}
	return list
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return out
}

// parseStatus parses /proc/PID/status ("Key:\tvalue" lines) into a map.
// Lines without a colon are ignored; a repeated key keeps its first value.
func parseStatus(s string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := m[k]; !dup && k != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// mountEntry is one line of /proc/PID/mountinfo.
type mountEntry struct {
	Root    string
	Point   string
	Options []string // per-mount options
	FSType  string
	Source  string
	Super   []string // superblock options
}

func (m mountEntry) has(opt string) bool {
	for _, o := range m.Options {
		if o == opt {
			return true
		}
	}
	return false
}

// parseMountinfo parses /proc/PID/mountinfo (proc(5)): "ID PARENT MAJ:MIN
// ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS", with
// octal escapes (\040) in paths.
func parseMountinfo(s string) ([]mountEntry, error) {
	var list []mountEntry
	for n, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n+1, line)
		}
		e := mountEntry{
			Root:    unescapeOctal(f[3]),
			Point:   unescapeOctal(f[4]),
			Options: strings.Split(f[5], ","),
			FSType:  f[sep+1],
			Source:  unescapeOctal(f[sep+2]),
		}
		if len(f) > sep+3 {
			e.Super = strings.Split(f[sep+3], ",")
		}
		list = append(list, e)
	}
	return list, nil
}

// unescapeOctal undoes the kernel's \NNN escapes of space, tab, newline and
// backslash; anything else is kept as it is.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

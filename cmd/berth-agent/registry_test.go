//go:build linux

package main

// Integration tests of pull, push and login against Debian's
// docker-registry (distribution) started on loopback: once plain HTTP,
// once with TLS (a CA made here) and htpasswd auth.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const registryBin = "/usr/bin/docker-registry"

// testRegistry is one docker-registry process on a loopback port.
type testRegistry struct {
	host string // 127.0.0.1:port
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

type registryOptions struct {
	certFile, keyFile string
	htpasswd          string // path of an htpasswd file; empty: no auth
}

// needRegistry skips without the registry binary.
func needRegistry(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(registryBin); err != nil {
		t.Skipf("registry tests need %s (Debian package docker-registry; make deps installs it): %v", registryBin, err)
	}
}

// loopbackPort returns a loopback port nothing listens on right now.
func loopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRegistry runs docker-registry with its own config and storage and
// waits until /v2/ answers. It is stopped when the test ends.
func startRegistry(t testing.TB, opts registryOptions) *testRegistry {
	t.Helper()
	needRegistry(t)
	dir := t.TempDir()
	port := loopbackPort(t)
	r := &testRegistry{host: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, done: make(chan struct{})}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), r.host)
	if opts.certFile != "" {
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", opts.certFile, opts.keyFile)
	}
	if opts.htpasswd != "" {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", opts.htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd = exec.Command(registryBin, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	scheme := "http"
	client := &http.Client{Timeout: 2 * time.Second}
	if opts.certFile != "" {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, err := client.Get(scheme + "://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return r
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("registry on %s did not answer: %v\n%s", r.host, err, log)
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("registry exited: %s", log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// testCA is a CA and a server certificate for 127.0.0.1 and localhost.
type testCA struct {
	caFile, certFile, keyFile string
}

func makeCA(t testing.TB) testCA {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca := testCA{caFile: filepath.Join(dir, "ca.crt"), certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ca.caFile, "CERTIFICATE", caDER)
	write(ca.certFile, "CERTIFICATE", der)
	write(ca.keyFile, "EC PRIVATE KEY", keyDER)
	return ca
}

// writeHtpasswd writes a bcrypt htpasswd file with one user, made by
// htpasswd (Debian package apache2-utils).
func writeHtpasswd(t testing.TB, user, pass string) string {
	t.Helper()
	if _, err := exec.LookPath("htpasswd"); err != nil {
		t.Skipf("the auth test makes its password file with htpasswd (Debian package apache2-utils; make deps installs it): %v", err)
	}
	out, err := exec.Command("htpasswd", "-Bbn", user, pass).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	regEngineOnce sync.Once
	regEngine     *engine
	regEngineErr  error
	regCertsDir   string
)

// needRegistryEngine returns an engine of its own for the registry tests
// (its daemon.json names a certs directory the tests fill), with the test
// image loaded.
func needRegistryEngine(t *testing.T) *engine {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	needRegistry(t)
	regEngineOnce.Do(func() {
		root := filepath.Join(workDir, "registry")
		regCertsDir = filepath.Join(workDir, "registry-certs")
		if regEngineErr = os.MkdirAll(regCertsDir, 0o755); regEngineErr != nil {
			return
		}
		cfg := filepath.Join(workDir, "registry-daemon.json")
		b, _ := json.Marshal(map[string]any{"registry-certs-dir": regCertsDir, "max-concurrent-downloads": 3})
		if regEngineErr = os.WriteFile(cfg, b, 0o644); regEngineErr != nil {
			return
		}
		regEngine, regEngineErr = startEngine(root, "--config-file", cfg)
		if regEngineErr != nil {
			return
		}
		if r := regEngine.docker(nil, "load", "-i", imageTar); r.code != 0 {
			regEngineErr = fmt.Errorf("docker load: %s", r)
		}
	})
	if regEngineErr != nil {
		t.Fatalf("registry engine: %v", regEngineErr)
	}
	regEngine.watch(t)
	return regEngine
}

func stopRegistryEngine() {
	if regEngine != nil {
		regEngine.stop()
		regEngine.cleanup()
	}
}

func inspectField(t *testing.T, e *engine, format, ref string) string {
	t.Helper()
	return e.ok(t, "image", "inspect", "--format", format, ref)
}

// TestRegistryPushPull pushes the test image to a plain-HTTP registry,
// removes it, pulls it by tag and by digest and runs it; `docker run` of a
// missing image pulls it; an image sharing layers with another pulls only
// its own layer; a committed image goes up and comes back runnable; save
// and load of a pulled image keep its ID.
func TestRegistryPushPull(t *testing.T) {
	e := needRegistryEngine(t)
	reg := startRegistry(t, registryOptions{})
	ref := reg.host + "/berth/busybox:v1"
	e.ok(t, "tag", testImage, ref)
	id := inspectField(t, e, "{{.ID}}", ref)
	out := e.ok(t, "push", ref)
	if !strings.Contains(out, "digest: sha256:") {
		t.Fatalf("push printed no digest:\n%s", out)
	}
	// A second push finds every layer there.
	out = e.ok(t, "push", ref)
	if strings.Contains(out, "Pushed") {
		t.Errorf("second push uploaded again:\n%s", out)
	}
	e.ok(t, "rmi", ref)
	out = e.ok(t, "pull", ref)
	if !strings.Contains(out, "Digest: sha256:") || !strings.Contains(out, "Downloaded newer image for "+ref) {
		t.Errorf("pull output lacks the digest or status line:\n%s", out)
	}
	if got := inspectField(t, e, "{{.ID}}", ref); got != id {
		t.Errorf("pulled image ID %s, pushed %s", got, id)
	}
	digests := inspectField(t, e, "{{json .RepoDigests}}", ref)
	var rd []string
	if err := json.Unmarshal([]byte(digests), &rd); err != nil || len(rd) != 1 {
		t.Fatalf("RepoDigests %s: %v", digests, err)
	}
	if got := e.ok(t, "run", "--rm", ref, "echo", "pulled"); got != "pulled" {
		t.Errorf("run of pulled image printed %q", got)
	}
	out = e.ok(t, "pull", ref)
	if !strings.Contains(out, "Image is up to date for "+ref) {
		t.Errorf("second pull not up to date:\n%s", out)
	}

	// By digest, after the tag is gone.
	e.ok(t, "rmi", ref)
	e.ok(t, "pull", rd[0])
	if got := inspectField(t, e, "{{.ID}}", rd[0]); got != id {
		t.Errorf("image pulled by digest has ID %s, want %s", got, id)
	}
	e.ok(t, "rmi", rd[0])

	// docker run pulls what is missing.
	if got := e.ok(t, "run", "--rm", ref, "echo", "auto"); got != "auto" {
		t.Errorf("run of a missing image printed %q", got)
	}

	// Commit twice: images of 2 and 3 layers sharing their lower ones.
	cid := e.ok(t, "run", "-d", ref, "sh", "-c", "echo one > /one")
	e.ok(t, "wait", cid)
	two := reg.host + "/berth/two:v1"
	e.ok(t, "commit", cid, two)
	e.ok(t, "rm", cid)
	cid = e.ok(t, "run", "-d", two, "sh", "-c", "echo three > /three")
	e.ok(t, "wait", cid)
	three := reg.host + "/berth/three:v1"
	e.ok(t, "commit", cid, three)
	e.ok(t, "rm", cid)
	e.ok(t, "push", two)
	out = e.ok(t, "push", three)
	if n := strings.Count(out, "Mounted from") + strings.Count(out, "Layer already exists"); n != 2 {
		t.Errorf("push of the 3-layer image reused %d layers, want 2:\n%s", n, out)
	}
	e.ok(t, "rmi", two, three, ref)
	e.ok(t, "pull", two)
	out = e.ok(t, "pull", three)
	if n := strings.Count(out, "Already exists"); n != 2 {
		t.Errorf("pull of the 3-layer image found %d layers present, want 2:\n%s", n, out)
	}
	if got := e.ok(t, "run", "--rm", three, "cat", "/one", "/three"); got != "one\nthree" {
		t.Errorf("committed image runs with %q", got)
	}

	// save and load keep the ID.
	tid := inspectField(t, e, "{{.ID}}", three)
	tar := filepath.Join(t.TempDir(), "three.tar")
	e.ok(t, "save", "-o", tar, three)
	e.ok(t, "rmi", three)
	e.ok(t, "load", "-i", tar)
	if got := inspectField(t, e, "{{.ID}}", three); got != tid {
		t.Errorf("loaded ID %s, saved %s", got, tid)
	}
	e.ok(t, "rmi", two, three)

	// push -a and pull -a move every tag of a repository.
	all := reg.host + "/berth/all"
	e.ok(t, "tag", testImage, all+":a")
	e.ok(t, "tag", testImage, all+":b")
	e.ok(t, "push", "-a", all)
	e.ok(t, "rmi", all+":a", all+":b")
	e.ok(t, "pull", "-a", all)
	for _, tag := range []string{"a", "b"} {
		if got := inspectField(t, e, "{{.ID}}", all+":"+tag); got != id {
			t.Errorf("pull -a: %s:%s is %s, want %s", all, tag, got, id)
		}
	}
	e.ok(t, "rmi", all+":a", all+":b")

	r0 := e.docker(nil, "push", reg.host+"/berth/nothing:here")
	if r0.code == 0 || !strings.Contains(r0.stderr, "An image does not exist locally with the tag: "+reg.host+"/berth/nothing") {
		t.Errorf("push of a missing tag: %s", r0)
	}

	// A reference that does not parse is refused with dockerd's words.
	r := e.docker(nil, "pull", reg.host+"/Upper/case")
	if r.code == 0 || !strings.Contains(r.stderr, "invalid reference format") {
		t.Errorf("pull of an invalid reference: %s", r)
	}
	r = e.docker(nil, "pull", reg.host+"/berth/missing:v1")
	if r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("pull of a missing image: %s", r)
	}
}

// TestRegistryMultiArch pushes an index of an amd64 and an arm64 image
// (made here) and checks that pull picks the engine's architecture and
// --platform the other.
func TestRegistryMultiArch(t *testing.T) {
	e := needRegistryEngine(t)
	reg := startRegistry(t, registryOptions{})
	mk := func(arch string) v1.Image {
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if arch == "arm64" {
			cf.Variant = "v8"
		}
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: mk("amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: mk("arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref := reg.host + "/berth/multi:1"
	nr, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(nr, idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	e.ok(t, "pull", ref)
	if got := inspectField(t, e, "{{.Architecture}}", ref); got != goruntime.GOARCH {
		t.Errorf("default pull chose %s, want %s", got, goruntime.GOARCH)
	}
	other := "arm64"
	if goruntime.GOARCH == "arm64" {
		other = "amd64"
	}
	e.ok(t, "pull", "--platform", "linux/"+other, ref)
	if got := inspectField(t, e, "{{.Architecture}}", ref); got != other {
		t.Errorf("--platform linux/%s pulled %s", other, got)
	}
	// By the index's digest, which is what RepoDigests names.
	rd := inspectField(t, e, "{{index .RepoDigests 0}}", ref)
	e.ok(t, "rmi", ref)
	e.ok(t, "pull", rd)
	if got := inspectField(t, e, "{{.Architecture}}", rd); got != goruntime.GOARCH {
		t.Errorf("pull by index digest chose %s", got)
	}
	e.ok(t, "rmi", rd)
	r := e.docker(nil, "pull", "--platform", "linux/s390x", ref)
	if r.code == 0 || !strings.Contains(r.stderr, "no matching manifest for linux/s390x") {
		t.Errorf("pull for a platform the index lacks: %s", r)
	}
	// The distribution endpoint lists both platforms.
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", e.sock)
	}}}
	resp, err := c.Get("http://engine/v1.51/distribution/" + ref + "/json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var di struct {
		Descriptor struct{ MediaType string }
		Platforms  []struct{ Architecture string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&di); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("distribution inspect: %s, %v", resp.Status, err)
	}
	if di.Descriptor.MediaType != string(types.OCIImageIndex) || len(di.Platforms) != 2 {
		t.Errorf("distribution inspect: %+v", di)
	}
}

// TestRegistryTLSAuth logs in to a TLS registry with htpasswd auth (its CA
// in the engine's certs directory), pushes and pulls; a wrong password is
// refused and anonymous pulls are denied.
func TestRegistryTLSAuth(t *testing.T) {
	e := needRegistryEngine(t)
	ca := makeCA(t)
	reg := startRegistry(t, registryOptions{certFile: ca.certFile, keyFile: ca.keyFile, htpasswd: writeHtpasswd(t, "berth", "s3cret")})
	d := filepath.Join(regCertsDir, reg.host)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(ca.caFile, filepath.Join(d, "ca.crt"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.docker(strings.NewReader("wrong\n"), "login", "-u", "berth", "--password-stdin", reg.host)
	if r.code == 0 {
		t.Fatalf("login with a wrong password succeeded: %s", r)
	}
	ref := reg.host + "/private/busybox:v1"
	e.ok(t, "tag", testImage, ref)
	r = e.docker(nil, "push", ref)
	if r.code == 0 {
		t.Fatalf("anonymous push succeeded: %s", r)
	}
	e.okIn(t, "s3cret\n", "login", "-u", "berth", "--password-stdin", reg.host)
	e.ok(t, "push", ref)
	e.ok(t, "rmi", ref)
	e.ok(t, "pull", ref)
	if got := e.ok(t, "run", "--rm", ref, "echo", "tls"); got != "tls" {
		t.Errorf("run printed %q", got)
	}
	e.ok(t, "rmi", ref)
	e.ok(t, "logout", reg.host)
	r = e.docker(nil, "pull", ref)
	if r.code == 0 {
		t.Errorf("anonymous pull from an auth registry succeeded: %s", r)
	}
}

// pushKillImage pushes the test image with extra random layers on top
// (so that pulls take a while) as ref, and returns it.
func pushKillImage(t *testing.T, e *engine, reg *testRegistry, ref string) {
	t.Helper()
	base := reg.host + "/kill/base:v1"
	e.ok(t, "tag", testImage, base)
	e.ok(t, "push", base)
	e.ok(t, "rmi", base)
	br, err := name.ParseReference(base, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(br)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		l, err := random.Layer(4<<20, types.OCIUncompressedLayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryPullKilled kills the engine with SIGKILL at points spread
// over pulls, 20 times, then 5 times each during pushes and removals;
// after each restart every image the engine lists must run, and the last
// pull and push complete.
func TestRegistryPullKilled(t *testing.T) {
	re := needRegistryEngine(t)
	reg := startRegistry(t, registryOptions{})
	ref := reg.host + "/kill/big:v1"
	pushKillImage(t, re, reg, ref)

	e, err := startEngine(filepath.Join(t.TempDir(), "kill"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.cleanup()
	defer e.kill()
	e.watch(t)
	// One undisturbed pull gives the span the kills are spread over.
	start := time.Now()
	e.ok(t, "pull", "-q", ref)
	span := time.Since(start)
	t.Logf("an undisturbed pull takes %v", span)
	e.ok(t, "rmi", ref)

	const kills = 20
	for i := range kills {
		cmd := exec.Command("docker", "pull", "-q", ref)
		cmd.Env = e.env()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Spread the kill points over the whole pull, the first ones
		// early (manifest, first blobs), the later ones late (commits).
		time.Sleep(span * time.Duration(i) / kills)
		e.kill()
		cmd.Wait()
		if err := e.start(); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		for _, img := range strings.Fields(e.ok(t, "images", "-q", "--no-trunc")) {
			if r := e.docker(nil, "run", "--rm", img, "true"); r.code != 0 {
				t.Fatalf("after kill %d the listed image %s does not run: %s", i, img, r)
			}
		}
		// Every other round leaves what the killed pull did in place, so
		// the next pull continues from there.
		if i%2 == 1 {
			if r := e.docker(nil, "rmi", ref); r.code != 0 && !strings.Contains(r.stderr, "No such image") {
				t.Fatalf("rmi after kill %d: %s", i, r)
			}
		}
	}
	e.ok(t, "pull", "-q", ref)
	if got := e.ok(t, "run", "--rm", ref, "echo", "survived"); got != "survived" {
		t.Errorf("run after the kills printed %q", got)
	}

	// Kills during pushes and removals leave a store whose images run, and
	// the next push completes.
	dst := startRegistry(t, registryOptions{})
	target := dst.host + "/kill/pushed:v1"
	e.ok(t, "tag", ref, target)
	start = time.Now()
	e.ok(t, "push", "-q", target)
	pushSpan := time.Since(start)
	const pushKills = 5
	for i := range pushKills {
		dst2 := startRegistry(t, registryOptions{})
		target2 := dst2.host + "/kill/pushed:v1"
		e.ok(t, "tag", ref, target2)
		cmd := exec.Command("docker", "push", "-q", target2)
		cmd.Env = e.env()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pushSpan * time.Duration(i) / pushKills)
		e.kill()
		cmd.Wait()
		if err := e.start(); err != nil {
			t.Fatalf("restart after push kill %d: %v", i, err)
		}
		// A removal killed midway.
		rm := exec.Command("docker", "rmi", target2)
		rm.Env = e.env()
		if err := rm.Start(); err != nil {
			t.Fatal(err)
		}
		e.kill()
		rm.Wait()
		if err := e.start(); err != nil {
			t.Fatalf("restart after rmi kill %d: %v", i, err)
		}
		for _, img := range strings.Fields(e.ok(t, "images", "-q", "--no-trunc")) {
			if r := e.docker(nil, "run", "--rm", img, "true"); r.code != 0 {
				t.Fatalf("after push/rmi kill %d the listed image %s does not run: %s", i, img, r)
			}
		}
		if i == pushKills-1 {
			if r := e.docker(nil, "tag", ref, target2); r.code != 0 {
				t.Fatal(r)
			}
			e.ok(t, "push", "-q", target2)
		}
	}
}

// TestRegistryCLIExtras covers the rest of the CLI's image commands
// against the registry: `pull -a` fetches every tag of a repository,
// `images --digests` shows the registry digest, `history` lists the
// image's steps, and `commit --pause` of a running container makes a
// runnable image while the container keeps running.
func TestRegistryCLIExtras(t *testing.T) {
	e := needRegistryEngine(t)
	reg := startRegistry(t, registryOptions{})
	repo := reg.host + "/berth/alltags"
	src := e.create(t, testImage, "sh", "-c", "echo two > /two; exec sleep 1000")
	e.ok(t, "start", src)
	defer e.docker(nil, "rm", "-f", src)
	e.ok(t, "tag", testImage, repo+":one")
	e.ok(t, "commit", "--pause", "-m", "second tag", src, repo+":two")
	if got := e.ok(t, "inspect", "--format", "{{.State.Status}}", src); got != "running" {
		t.Errorf("container after commit --pause is %q, want running", got)
	}
	e.ok(t, "push", repo+":one")
	e.ok(t, "push", repo+":two")
	e.ok(t, "rmi", repo+":one", repo+":two")

	out := e.ok(t, "pull", "-a", repo)
	for _, tag := range []string{"one", "two"} {
		if got := e.ok(t, "images", "--format", "{{.Tag}}", repo+":"+tag); got != tag {
			t.Errorf("after pull -a, images %s:%s shows %q\n%s", repo, tag, got, out)
		}
	}
	if got := e.ok(t, "run", "--rm", repo+":two", "cat", "/two"); got != "two" {
		t.Errorf("committed and pulled image: cat /two printed %q", got)
	}

	// Filtered by repository (a tag in the filter hides digests, as in
	// dockerd), each tag shows its registry digest.
	digs := strings.Split(e.ok(t, "images", "--digests", "--format", "{{.Tag}} {{.Digest}}", repo), "\n")
	if len(digs) != 2 {
		t.Fatalf("images --digests %s: %q, want the two tags", repo, digs)
	}
	for _, l := range digs {
		tag, dig, _ := strings.Cut(l, " ")
		if (tag != "one" && tag != "two") || !strings.HasPrefix(dig, "sha256:") || len(dig) != 71 {
			t.Errorf("images --digests line %q, want a tag and its registry digest", l)
		}
	}
	hist := strings.Split(e.ok(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", repo+":two"), "\n")
	if len(hist) < 2 || !strings.HasSuffix(hist[0], "|second tag") {
		t.Errorf("history of the committed image: %q, want the commit's step first with its message", hist)
	}
	e.ok(t, "rmi", repo+":one", repo+":two")
}

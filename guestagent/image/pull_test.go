//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobCounter is the in-memory registry, counting blob GETs per path.
type blobCounter struct {
	mu    sync.Mutex
	gets  map[string]int
	total atomic.Int64
}

func startCountingRegistry(t *testing.T) (string, *blobCounter) {
	t.Helper()
	bc := &blobCounter{gets: map[string]int{}}
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			bc.mu.Lock()
			bc.gets[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
			bc.mu.Unlock()
			bc.total.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), bc
}

func openPullStore(t *testing.T) *Store {
	t.Helper()
	rc, err := registry.New(registry.Config{MaxConcurrentDownloads: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenWith(t.TempDir(), Options{Registry: rc})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pushTestImage(t *testing.T, ref string, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(64<<10, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", registry.DefaultPlatform().Architecture
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestPullConcurrentFetchesOnce pulls one image from two goroutines at
// once: every blob is fetched once, both pulls succeed, a third pull
// fetches nothing, and the image's layers are all present.
func TestPullConcurrentFetchesOnce(t *testing.T) {
	requireRoot(t)
	host, bc := startCountingRegistry(t)
	img := pushTestImage(t, host+"/t/img:v1", 5)
	s := openPullStore(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	outs := make([]bytes.Buffer, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.ImagePull(context.Background(), host+"/t/img:v1", api.PullOptions{}, &outs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pull %d: %v\n%s", i, err, outs[i].String())
		}
	}
	// The stream carries per-layer status and the final lines.
	seen := map[string]int{}
	for _, m := range messages(t, outs[0].Bytes()) {
		status, _, _ := strings.Cut(m.Status, ":")
		seen[status]++
	}
	for _, st := range []string{"Pulling from t/img", "Digest", "Status"} {
		if seen[st] != 1 {
			t.Errorf("%q %d times in %s", st, seen[st], outs[0].String())
		}
	}
	if seen["Pull complete"]+seen["Already exists"] != 5 {
		t.Errorf("per-layer statuses %v", seen)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		if n := bc.gets[d.String()]; n != 1 {
			t.Errorf("layer %s fetched %d times", d, n)
		}
	}
	before := bc.total.Load()
	var out bytes.Buffer
	if err := s.ImagePull(context.Background(), host+"/t/img:v1", api.PullOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	if bc.total.Load() != before {
		t.Errorf("a pull of a present image fetched %d blobs", bc.total.Load()-before)
	}
	msgs := messages(t, out.Bytes())
	last := msgs[len(msgs)-1].Status
	if !strings.HasPrefix(last, "Status: Image is up to date for ") {
		t.Errorf("last message %q", last)
	}
	cf, _ := img.ConfigName()
	im, err := s.Resolve(host + "/t/img:v1")
	if err != nil || im.ID.String() != cf.String() {
		t.Fatalf("resolve: %v %v", im, err)
	}
	if _, err := s.PrepareRootfs("c1", im.ID); err != nil {
		t.Fatalf("prepare rootfs of the pulled image: %v", err)
	}
}

// TestPullRefusesBadContent: a registry serving a layer that does not
// match its diff ID leaves no image behind.
func TestPullRefusesBadDiffID(t *testing.T) {
	requireRoot(t)
	host, _ := startCountingRegistry(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", registry.DefaultPlatform().Architecture
	cf.RootFS.DiffIDs[1] = cf.RootFS.DiffIDs[0] // a lie
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(host + "/t/bad:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	s := openPullStore(t)
	var out bytes.Buffer
	err = s.ImagePull(context.Background(), host+"/t/bad:v1", api.PullOptions{}, &out)
	if err == nil || !strings.Contains(err.Error(), "diff ID") {
		t.Fatalf("pull of a lying image: %v", err)
	}
	if _, err := s.Resolve(host + "/t/bad:v1"); err == nil {
		t.Error("the lying image is listed")
	}
}

// TestSharedSize: two images on one base report the base as shared.
func TestSharedSize(t *testing.T) {
	requireRoot(t)
	host, _ := startCountingRegistry(t)
	base := pushTestImage(t, host+"/t/base:v1", 1)
	top, err := mutate.AppendLayers(base, mustLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(host + "/t/top:v1")
	if err := remote.Write(r, top); err != nil {
		t.Fatal(err)
	}
	s := openPullStore(t)
	for _, ref := range []string{"/t/base:v1", "/t/top:v1"} {
		if err := s.ImagePull(context.Background(), host+ref, api.PullOptions{}, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ImageList(context.Background(), api.ImageListOptions{SharedSize: true})
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	if list[0].SharedSize != list[1].SharedSize || list[0].SharedSize <= 0 {
		t.Errorf("shared sizes %d and %d", list[0].SharedSize, list[1].SharedSize)
	}
	for _, im := range list {
		if im.Size <= im.SharedSize && len(im.RepoTags) == 1 && strings.Contains(im.RepoTags[0], "top") {
			t.Errorf("top image: size %d, shared %d", im.Size, im.SharedSize)
		}
	}
	list, _ = s.ImageList(context.Background(), api.ImageListOptions{})
	if list[0].SharedSize != -1 {
		t.Errorf("shared size without asking: %d", list[0].SharedSize)
	}
}

func mustLayer(t *testing.T) v1.Layer {
	t.Helper()
	l, err := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPullCompressions pulls an image whose layers are gzip, zstd and
// uncompressed tars, and checks their files.
func TestPullCompressions(t *testing.T) {
	requireRoot(t)
	host, _ := startCountingRegistry(t)
	tarOf := func(name, body string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
		tw.Close()
		return b.Bytes()
	}
	var layers []v1.Layer
	for _, c := range []struct {
		name string
		opts []tarball.LayerOption
	}{
		{"gz", []tarball.LayerOption{tarball.WithCompression(compression.GZip)}},
		{"zst", []tarball.LayerOption{tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd)}},
		{"plain", []tarball.LayerOption{tarball.WithMediaType(types.OCIUncompressedLayer)}},
	} {
		data := tarOf(c.name, "content of "+c.name)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", registry.DefaultPlatform().Architecture
	img, _ = mutate.ConfigFile(img, cf)
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	r, _ := name.ParseReference(host + "/t/comp:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	s := openPullStore(t)
	if err := s.ImagePull(context.Background(), host+"/t/comp:v1", api.PullOptions{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	im, err := s.Resolve(host + "/t/comp:v1")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.PrepareRootfs("comp", im.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The lower directories hold one file each.
	var lower string
	for _, o := range ms[0].Options {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lower = v
		}
	}
	found := map[string]bool{}
	for _, d := range strings.Split(lower, ":") {
		if !filepath.IsAbs(d) {
			d = filepath.Join(ms[0].Source, d)
		}
		for _, n := range []string{"gz", "zst", "plain"} {
			if b, err := os.ReadFile(filepath.Join(d, n)); err == nil && string(b) == "content of "+n {
				found[n] = true
			}
		}
	}
	if len(found) != 3 {
		t.Errorf("files found in the layers: %v (mounts %+v)", found, ms)
	}
}

// TestPullRefusesHostileLayer: a layer with an entry climbing out of the
// layer root is refused, naming the entry, and no image is left.
func TestPullRefusesHostileLayer(t *testing.T) {
	requireRoot(t)
	host, _ := startCountingRegistry(t)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "../../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.AppendLayers(empty.Image, l)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", registry.DefaultPlatform().Architecture
	img, _ = mutate.ConfigFile(img, cf)
	r, _ := name.ParseReference(host + "/t/hostile:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	s := openPullStore(t)
	err = s.ImagePull(context.Background(), host+"/t/hostile:v1", api.PullOptions{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "../../escape") {
		t.Fatalf("pull of a hostile layer: %v", err)
	}
	if _, err := s.Resolve(host + "/t/hostile:v1"); err == nil {
		t.Error("the hostile image is listed")
	}
}

// TestPullConcurrencyLimit: with max-concurrent-downloads 2, layer
// downloads run two at a time, never more. Each blob request is held until
// as many are in flight as the limit allows (or all have started), so a
// pull that downloads fewer at once would hang there (bounded by a guard)
// and one that downloads more is seen.
func TestPullConcurrencyLimit(t *testing.T) {
	requireRoot(t)
	const limit, n = 2, 5
	img := func() v1.Image {
		im, err := random.Image(32<<10, n)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := im.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", registry.DefaultPlatform().Architecture
		im, _ = mutate.ConfigFile(im, cf)
		return im
	}()
	layerDigests := map[string]bool{}
	ls, _ := img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		layerDigests[d.String()] = true
	}
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	inflight, started, most := 0, 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if r.Method != http.MethodGet || !layerDigests[d] {
			h.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		inflight++
		started++
		most = max(most, inflight)
		cond.Broadcast()
		guard := time.AfterFunc(30*time.Second, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
		deadline := time.Now().Add(30 * time.Second)
		for inflight < limit && started < n && time.Now().Before(deadline) {
			cond.Wait()
		}
		guard.Stop()
		mu.Unlock()
		h.ServeHTTP(w, r)
		mu.Lock()
		inflight--
		mu.Unlock()
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, _ := name.ParseReference(host + "/t/limit:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	s := openPullStore(t)
	if err := s.ImagePull(context.Background(), host+"/t/limit:v1", api.PullOptions{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if most != limit {
		t.Errorf("%d layer downloads at once, want %d", most, limit)
	}
}

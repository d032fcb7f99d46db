package registry

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	registrytypes "github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
)

// memRegistry is go-containerregistry's in-memory registry on loopback;
// requests counts what reached it.
type memRegistry struct {
	host     string
	requests atomic.Int64
	blobGets atomic.Int64
}

func startMem(t *testing.T) *memRegistry {
	t.Helper()
	m := &memRegistry{}
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			m.blobGets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	m.host = u.Host
	return m
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func pushRandom(t *testing.T, ref string, arch string, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(2048, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
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

func mustRef(t *testing.T, s string) reference.Named {
	t.Helper()
	r, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return reference.TagNameOnly(r)
}

func TestResolveAndLayers(t *testing.T) {
	m := startMem(t)
	img := pushRandom(t, m.host+"/a/b:v1", "amd64", 2)
	c := newClient(t, Config{})
	im, err := c.Resolve(context.Background(), mustRef(t, m.host+"/a/b:v1"), Platform{OS: "linux", Architecture: "amd64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if im.Digest.String() != want.String() || len(im.Layers) != 2 || im.Repository != "a/b" {
		t.Fatalf("resolved %+v", im)
	}
	for _, l := range im.Layers {
		rc, err := im.OpenLayer(l)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != l.Size {
			t.Errorf("layer %s: %d bytes, %v", l.Digest, n, err)
		}
	}
	// A layer whose size is not the one announced fails.
	for _, size := range []int64{im.Layers[1].Size - 1, im.Layers[1].Size + 1} {
		rc, err := im.OpenLayer(Layer{Digest: im.Layers[1].Digest, Size: size})
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err == nil {
			t.Errorf("a layer announced as %d bytes (it has %d) was accepted", size, im.Layers[1].Size)
		}
	}
	// By digest.
	dref, _ := reference.WithDigest(reference.TrimNamed(mustRef(t, m.host+"/a/b")), im.Digest)
	if _, err := c.Resolve(context.Background(), dref, DefaultPlatform(), nil); err != nil {
		t.Errorf("resolve by digest: %v", err)
	}
	// Missing tag and missing repository speak dockerd's words.
	_, err = c.Resolve(context.Background(), mustRef(t, m.host+"/a/b:nope"), DefaultPlatform(), nil)
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing tag: %v", err)
	}
}

func TestResolveIndexPlatform(t *testing.T) {
	m := startMem(t)
	amd, _ := random.Image(100, 1)
	arm, _ := random.Image(100, 1)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	r, _ := name.ParseReference(m.host + "/multi:1")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Config{})
	for _, tt := range []struct {
		p    Platform
		want v1.Image
	}{
		{Platform{OS: "linux", Architecture: "amd64"}, amd},
		{Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, arm},
		{Platform{OS: "linux", Architecture: "arm64"}, arm},
	} {
		im, err := c.Resolve(context.Background(), mustRef(t, m.host+"/multi:1"), tt.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := tt.want.Digest()
		if im.Digest.String() != d.String() || im.IndexDigest == "" {
			t.Errorf("%v: got %s, want %s", tt.p, im.Digest, d)
		}
	}
	_, err := c.Resolve(context.Background(), mustRef(t, m.host+"/multi:1"), Platform{OS: "linux", Architecture: "ppc64le"}, nil)
	var np *NoMatchingPlatformError
	if !errors.As(err, &np) {
		t.Errorf("missing platform: %v", err)
	}
	di, err := c.Inspect(context.Background(), mustRef(t, m.host+"/multi:1"), nil)
	if err != nil || len(di.Platforms) != 2 {
		t.Errorf("inspect: %+v %v", di, err)
	}
}

func TestPushSkipsAndMounts(t *testing.T) {
	m := startMem(t)
	c := newClient(t, Config{})
	layer := []byte(strings.Repeat("x", 4096)) // not a real tar: the registry does not care
	diff := digest.FromBytes(layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diff.String() + `"]}}`)
	opened := 0
	pl := PushLayer{DiffID: diff, Size: int64(len(layer)), Open: func() (io.ReadCloser, error) {
		opened++
		return io.NopCloser(strings.NewReader(string(layer))), nil
	}}
	var statuses []string
	rec := func(ev PushEvent) {
		if ev.Status != "Pushing" && ev.Status != "Preparing" && ev.Status != "Waiting" {
			statuses = append(statuses, ev.Status)
		}
	}
	ref, _ := reference.ParseNormalizedNamed(m.host + "/one/img:v1")
	res, err := c.Push(context.Background(), ref.(reference.NamedTagged), nil, cfg, []PushLayer{pl}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if opened != 1 || statuses[0] != "Pushed" {
		t.Fatalf("first push: opened %d, %v", opened, statuses)
	}
	// Again, with the blob pushed before known: nothing is read.
	pl.Known = res.Blobs
	statuses = nil
	if _, err := c.Push(context.Background(), ref.(reference.NamedTagged), nil, cfg, []PushLayer{pl}, rec); err != nil {
		t.Fatal(err)
	}
	if opened != 1 || statuses[0] != "Layer already exists" {
		t.Errorf("second push: opened %d, %v", opened, statuses)
	}
	// To another repository: mounted, not read.
	statuses = nil
	ref2, _ := reference.ParseNormalizedNamed(m.host + "/two/img:v1")
	if _, err := c.Push(context.Background(), ref2.(reference.NamedTagged), nil, cfg, []PushLayer{pl}, rec); err != nil {
		t.Fatal(err)
	}
	if opened != 1 || !strings.HasPrefix(statuses[0], "Mounted from one/img") {
		t.Errorf("cross-repository push: opened %d, %v", opened, statuses)
	}
	// The pushed image resolves; its layer is the gzip of the bytes pushed.
	im, err := c.Resolve(context.Background(), mustRef(t, m.host+"/two/img:v1"), Platform{OS: "linux", Architecture: "amd64"}, nil)
	if err != nil || im.Layers[0].Digest != res.Blobs[0].Digest || im.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("resolve pushed: %+v %v", im, err)
	}
	rc, err := im.OpenLayer(im.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	rc.Close()
	if err != nil || string(got) != string(layer) {
		t.Errorf("pushed layer holds %d bytes (%v)", len(got), err)
	}
	// A known blob the registry lost falls back to an upload.
	pl.Known = []Blob{{Host: m.host, Repository: "gone/repo", Digest: digest.FromString("gone"), Size: 4, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}}
	ref3, _ := reference.ParseNormalizedNamed(m.host + "/three/img:v1")
	res3, err := c.Push(context.Background(), ref3.(reference.NamedTagged), nil, cfg, []PushLayer{pl}, func(PushEvent) {})
	if err != nil {
		t.Fatal(err)
	}
	if opened != 2 || res3.Blobs[0].Digest != res.Blobs[0].Digest {
		t.Errorf("fallback upload: opened %d, blob %s (first push %s)", opened, res3.Blobs[0].Digest, res.Blobs[0].Digest)
	}
}

func TestInsecurePolicy(t *testing.T) {
	c := newClient(t, Config{Insecure: []string{"reg.example:5000", "10.1.0.0/16"}})
	for host, want := range map[string]bool{
		"localhost:5000":   true,
		"127.0.0.1:5000":   true,
		"127.3.4.5":        true,
		"[::1]:5000":       true,
		"reg.example:5000": true,
		"10.9.9.9:5001":    false,
		"10.1.2.3:443":     true,
		"10.2.0.1":         false,
		"192.168.1.1:5000": false,
	} {
		if got := c.IsInsecure(host); got != want {
			t.Errorf("IsInsecure(%s) = %v, want %v", host, got, want)
		}
	}
	if m := newClient(t, Config{Mirrors: []string{"http://mirror.example:5000", "https://secure.example"}}); !m.IsInsecure("mirror.example:5000") || m.IsInsecure("secure.example") {
		t.Error("an http:// mirror is not insecure, or an https:// one is")
	}
	if _, err := New(Config{Insecure: []string{"http://x"}}); err == nil {
		t.Error("insecure registry with a scheme accepted")
	}
	for _, m := range []string{"ftp://x", "https://x/path", "https://u:p@x", "x"} {
		if _, err := New(Config{Mirrors: []string{m}}); err == nil {
			t.Errorf("mirror %q accepted", m)
		}
	}
	// Names are matched as listed (a name that is not listed is looked up
	// for the CIDR check, which this test avoids).
	// Plain HTTP to a registry that is not insecure is refused before
	// anything is sent.
	rt, err := c.p.transport("192.168.1.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://192.168.1.1:5000/v2/", nil)
	var pe *plainHTTPError
	if _, err := rt.RoundTrip(req); !errors.As(err, &pe) {
		t.Errorf("plain HTTP to a secure registry: %v", err)
	}
}

func TestMirrorFirst(t *testing.T) {
	mirror := startMem(t)
	pushRandom(t, mirror.host+"/library/alpine:3", "amd64", 1)
	c := newClient(t, Config{Mirrors: []string{"http://" + mirror.host}})
	im, err := c.Resolve(context.Background(), mustRef(t, "alpine:3"), Platform{OS: "linux", Architecture: "amd64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if im.Host != mirror.host || im.Repository != "library/alpine" {
		t.Errorf("resolved from %s/%s", im.Host, im.Repository)
	}
}

func TestLoginBasic(t *testing.T) {
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "me" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := newClient(t, Config{})
	resp, err := c.Login(context.Background(), registrytypes.AuthConfig{Username: "me", Password: "pw", ServerAddress: host})
	if err != nil || resp.Status != "Login Succeeded" {
		t.Fatalf("login: %+v %v", resp, err)
	}
	_, err = c.Login(context.Background(), registrytypes.AuthConfig{Username: "me", Password: "bad", ServerAddress: "http://" + host})
	var ue *UnauthorizedError
	if !errors.As(err, &ue) {
		t.Errorf("bad password: %v", err)
	}
}

func TestLoginHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "index.docker.io",
		"https://index.docker.io/v1/": "index.docker.io",
		"docker.io":                   "index.docker.io",
		"localhost:5000":              "localhost:5000",
		"https://r.example:443/v2/":   "r.example:443",
	} {
		if got, err := LoginHost(in); err != nil || got != want {
			t.Errorf("LoginHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

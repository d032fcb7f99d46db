package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	registrytypes "github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Blob is a layer blob known to be in a repository of a registry (it was
// pulled from there or pushed there).
type Blob struct {
	Host       string        `json:"host"`
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
	MediaType  string        `json:"mediaType"`
}

// PushLayer is one layer of an image to push.
type PushLayer struct {
	// DiffID and Size describe the uncompressed layer tar Open returns;
	// Open may be called more than once (a retried upload).
	DiffID digest.Digest
	Size   int64
	Open   func() (io.ReadCloser, error)
	// Known are blobs of this layer already in repositories: one in the
	// target repository is not uploaded again, one in another repository
	// of the same registry is mounted from there.
	Known []Blob
}

// PushEvent is the progress of one layer (Index into the layers) or of
// the push as a whole (Index -1).
type PushEvent struct {
	Index   int
	Status  string // Preparing, Waiting, Pushing, Pushed, Layer already exists, Mounted from REPO
	Current int64
	Total   int64
}

// PushResult is what was pushed.
type PushResult struct {
	Digest digest.Digest
	Size   int
	// Blobs are the layer blobs the manifest names, in layer order.
	Blobs []Blob
}

// errNoBytes stops an upload of a known blob whose bytes are not kept.
var errNoBytes = errors.New("blob content not kept locally")

// Push uploads an image to ref: layers known to be in the repository are
// skipped (a HEAD first), layers known in another repository of the
// registry are mounted, the rest are compressed with gzip while they are
// uploaded; then the config and an OCI manifest. MaxConcurrentUploads
// layers go at once.
func (c *Client) Push(ctx context.Context, ref reference.NamedTagged, auth *registrytypes.AuthConfig, config []byte, layers []PushLayer, progress func(PushEvent)) (*PushResult, error) {
	host := reference.Domain(ref)
	if host == "docker.io" {
		host = "index.docker.io"
	}
	gr, err := c.ggcrRef(ref, host)
	if err != nil {
		return nil, err
	}
	repo := gr.Context()
	opts, err := c.options(ctx, host, auth)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	report := func(ev PushEvent) {
		mu.Lock()
		defer mu.Unlock()
		progress(ev)
	}
	for i := range layers {
		report(PushEvent{Index: i, Status: "Preparing"})
	}
	for i := range layers {
		report(PushEvent{Index: i, Status: "Waiting"})
	}
	blobs := make([]Blob, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.p.cfg.MaxConcurrentUploads)
	lopts := append(append([]remote.Option(nil), opts...), remote.WithContext(gctx))
	for i, l := range layers {
		g.Go(func() error {
			b, status, err := c.pushLayer(repo, host, l, lopts, func(cur int64) {
				report(PushEvent{Index: i, Status: "Pushing", Current: cur, Total: l.Size})
			})
			if err != nil {
				return fmt.Errorf("push layer %s: %w", l.DiffID, err)
			}
			blobs[i] = b
			report(PushEvent{Index: i, Status: status})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, pushError(ref, err)
	}
	cfgLayer := &bytesLayer{b: config, mt: types.OCIConfigJSON}
	if err := remote.WriteLayer(repo, cfgLayer, opts...); err != nil {
		return nil, pushError(ref, fmt.Errorf("push image config: %w", err))
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	for _, b := range blobs {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ociLayerType(b.MediaType), Digest: b.Digest, Size: b.Size})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := remote.Put(gr, rawManifest{b: mb, mt: types.OCIManifestSchema1}, opts...); err != nil {
		return nil, pushError(ref, fmt.Errorf("push manifest: %w", err))
	}
	return &PushResult{Digest: digest.FromBytes(mb), Size: len(mb), Blobs: blobs}, nil
}

// ociLayerType names a layer blob's media type in an OCI manifest.
func ociLayerType(mt string) string {
	switch types.MediaType(mt) {
	case types.DockerLayer:
		return ocispec.MediaTypeImageLayerGzip
	case types.DockerUncompressedLayer:
		return ocispec.MediaTypeImageLayer
	}
	return mt
}

func pushError(ref reference.Named, err error) error {
	var ue *UnauthorizedError
	if errors.As(err, &ue) {
		return err
	}
	if e := pullError(ref, err); errors.As(e, new(*NotFoundError)) {
		return &UnauthorizedError{msg: "denied: requested access to the resource is denied"}
	}
	return fmt.Errorf("push %s: %w", reference.FamiliarString(ref), err)
}

// pushLayer makes one layer present in repo and returns the blob the
// manifest names, with the status for the progress stream.
func (c *Client) pushLayer(repo name.Repository, host string, l PushLayer, opts []remote.Option, progress func(int64)) (Blob, string, error) {
	for _, k := range l.Known {
		if k.Host != host || !isLayerType(k.MediaType) {
			continue
		}
		kl := &knownLayer{b: k}
		var layer v1.Layer = kl
		status := "Layer already exists"
		if k.Repository != repo.RepositoryStr() {
			src, err := name.NewDigest(repo.Registry.Name()+"/"+k.Repository+"@"+k.Digest.String(), nameOpts(c, host)...)
			if err != nil {
				continue
			}
			layer = &remote.MountableLayer{Layer: kl, Reference: src}
			status = "Mounted from " + k.Repository
		}
		err := remote.WriteLayer(repo, layer, opts...)
		if err == nil {
			k.Repository = repo.RepositoryStr()
			return k, status, nil
		}
		if !errors.Is(err, errNoBytes) {
			return Blob{}, "", err
		}
	}
	gl := &gzipLayer{l: l, progress: progress}
	if err := remote.WriteLayer(repo, gl, opts...); err != nil {
		return Blob{}, "", err
	}
	d, size, ok := gl.result()
	if !ok {
		return Blob{}, "", fmt.Errorf("layer %s: upload ended before its digest was known", l.DiffID)
	}
	return Blob{Host: host, Repository: repo.RepositoryStr(), Digest: d, Size: size, MediaType: ocispec.MediaTypeImageLayerGzip}, "Pushed", nil
}

func nameOpts(c *Client, host string) []name.Option {
	if c.p.IsInsecure(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

func isLayerType(mt string) bool {
	switch mt {
	case string(types.DockerLayer), string(types.DockerUncompressedLayer), ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd:
		return true
	}
	return false
}

// gzipLayer is a layer compressed (gzip, fastest level) while it is
// uploaded: its digest and size are known only once the upload has read
// it all, so the upload is a streamed one (no HEAD first; layers pushed
// before are known by the blobs remembered from then).
type gzipLayer struct {
	l        PushLayer
	progress func(int64)

	mu     sync.Mutex
	digest digest.Digest
	size   int64
}

func (g *gzipLayer) result() (digest.Digest, int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.digest, g.size, g.digest != ""
}

func (g *gzipLayer) Digest() (v1.Hash, error) {
	d, _, ok := g.result()
	if !ok {
		return v1.Hash{}, stream.ErrNotComputed
	}
	return v1.NewHash(d.String())
}
func (g *gzipLayer) DiffID() (v1.Hash, error) { return v1.NewHash(g.l.DiffID.String()) }
func (g *gzipLayer) Size() (int64, error) {
	_, n, ok := g.result()
	if !ok {
		return 0, stream.ErrNotComputed
	}
	return n, nil
}
func (g *gzipLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed compresses the layer tar on the fly; reading it to the end
// fixes the digest and size.
func (g *gzipLayer) Compressed() (io.ReadCloser, error) {
	rc, err := g.l.Open()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer rc.Close()
		h := digest.SHA256.Digester()
		cw := &byteCounter{}
		zw, err := gzip.NewWriterLevel(io.MultiWriter(pw, h.Hash(), cw), gzip.BestSpeed)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		_, err = io.Copy(zw, &countingReader{rc: rc, progress: g.progress})
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			g.mu.Lock()
			g.digest, g.size = h.Digest(), cw.n
			g.mu.Unlock()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}
func (g *gzipLayer) Uncompressed() (io.ReadCloser, error) { return g.l.Open() }

type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// knownLayer is a blob a registry has; its bytes are not here.
type knownLayer struct{ b Blob }

func (k *knownLayer) Digest() (v1.Hash, error)             { return v1.NewHash(k.b.Digest.String()) }
func (k *knownLayer) DiffID() (v1.Hash, error)             { return v1.Hash{}, errNoBytes }
func (k *knownLayer) Size() (int64, error)                 { return k.b.Size, nil }
func (k *knownLayer) MediaType() (types.MediaType, error)  { return types.MediaType(k.b.MediaType), nil }
func (k *knownLayer) Compressed() (io.ReadCloser, error)   { return nil, errNoBytes }
func (k *knownLayer) Uncompressed() (io.ReadCloser, error) { return nil, errNoBytes }

// bytesLayer is a small blob held in memory (the config).
type bytesLayer struct {
	b  []byte
	mt types.MediaType
}

func (b *bytesLayer) Digest() (v1.Hash, error) { return v1.NewHash(digest.FromBytes(b.b).String()) }
func (b *bytesLayer) DiffID() (v1.Hash, error) { return b.Digest() }
func (b *bytesLayer) Size() (int64, error)     { return int64(len(b.b)), nil }
func (b *bytesLayer) MediaType() (types.MediaType, error) {
	return b.mt, nil
}
func (b *bytesLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.b)), nil
}
func (b *bytesLayer) Uncompressed() (io.ReadCloser, error) { return b.Compressed() }

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

type countingReader struct {
	rc       io.ReadCloser
	n, last  int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	if c.progress != nil && (c.n-c.last >= 512<<10 || err != nil) {
		c.last = c.n
		c.progress(c.n)
	}
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

//go:build linux

package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/berthdesktop/berth/guestagent/snapshot"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	digest "github.com/opencontainers/go-digest"
)

// registryClient returns the registry client or a 503-style error.
func (s *Store) registryClient() (*registry.Client, error) {
	if s.opts.Registry == nil {
		return nil, &unavailableError{msg: "registry access is not configured in this engine"}
	}
	return s.opts.Registry, nil
}

type unavailableError struct{ msg string }

func (e *unavailableError) Error() string { return e.msg }
func (e *unavailableError) Unavailable()  {}

// ParseReference parses a name given to pull or push, with dockerd's
// wording for what does not parse (400).
func ParseReference(s string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, &invalidError{err: err}
	}
	return ref, nil
}

// progress serialises the JSON messages of one pull or push.
type progress struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func newProgress(w io.Writer) *progress { return &progress{enc: json.NewEncoder(w)} }

func (p *progress) send(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = p.enc.Encode(m)
	}
}

func (p *progress) status(id, status string) {
	p.send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{}})
}

func (p *progress) bar(id, status string, cur, total int64) {
	p.send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{Current: cur, Total: total}})
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// ImagePull serves POST /images/create?fromImage=: it pulls ref (all its
// tags when opts.AllTags and ref has no tag) for opts.Platform (the
// engine's own when empty), streaming progress to out.
func (s *Store) ImagePull(ctx context.Context, refStr string, opts api.PullOptions, out io.Writer) error {
	rc, err := s.registryClient()
	if err != nil {
		return err
	}
	ref, err := ParseReference(refStr)
	if err != nil {
		return err
	}
	platform := registry.DefaultPlatform()
	if opts.Platform != "" {
		p := strings.Split(opts.Platform, "/")
		if len(p) < 2 || len(p) > 3 || p[0] == "" || p[1] == "" {
			return invalidf("invalid platform %q: want os/arch[/variant]", opts.Platform)
		}
		platform = registry.Platform{OS: p[0], Architecture: p[1]}
		if len(p) == 3 {
			platform.Variant = p[2]
		}
	}
	pr := newProgress(out)
	if opts.AllTags && reference.IsNameOnly(ref) {
		tags, err := rc.Tags(ctx, ref, opts.Auth)
		if err != nil {
			return err
		}
		pr.status("", "Pulling from "+reference.Path(ref))
		for _, t := range tags {
			tr, err := reference.WithTag(ref, t)
			if err != nil {
				continue
			}
			if err := s.pullOne(ctx, rc, tr, platform, opts.Auth, pr, false); err != nil {
				return err
			}
		}
		pr.status("", "Status: Downloaded newer images for "+reference.FamiliarName(ref))
		return pr.err
	}
	ref = reference.TagNameOnly(ref)
	return s.pullOne(ctx, rc, ref, platform, opts.Auth, pr, true)
}

// pullOne pulls one tag or digest.
func (s *Store) pullOne(ctx context.Context, rc *registry.Client, ref reference.Named, platform registry.Platform, auth *api.AuthConfig, pr *progress, final bool) error {
	tagOrDigest := ""
	switch r := ref.(type) {
	case reference.Canonical:
		tagOrDigest = r.Digest().String()
	case reference.NamedTagged:
		tagOrDigest = r.Tag()
	}
	pr.status(tagOrDigest, "Pulling from "+reference.Path(ref))
	im, err := rc.Resolve(ctx, ref, platform, auth)
	if err != nil {
		return err
	}
	// A config already here is not fetched again.
	cfgBytes, err := s.content.ReadAll(im.ConfigDesc.Digest)
	if err != nil {
		if cfgBytes, err = im.FetchConfig(); err != nil {
			return err
		}
	}
	im.Config = cfgBytes
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(im.Config, &cfg); err != nil {
		return invalidf("image config of %s: %w", reference.FamiliarString(ref), err)
	}
	if cfg.RootFS.Type != "layers" {
		return invalidf("image config of %s: unsupported rootfs type %q", reference.FamiliarString(ref), cfg.RootFS.Type)
	}
	if cfg.OS != "" && cfg.OS != platform.OS {
		return invalidf("image with reference %s was found but its platform (%s/%s) does not match the specified platform (%s)", reference.FamiliarString(ref), cfg.OS, cfg.Architecture, registry.FormatPlatform(platform))
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(im.Layers) {
		return invalidf("image %s: its config lists %d layers, its manifest %d", reference.FamiliarString(ref), len(diffIDs), len(im.Layers))
	}
	for i, d := range diffIDs {
		if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
			return invalidf("image %s: invalid diff ID %q", reference.FamiliarString(ref), d)
		}
		if im.Layers[i].Foreign {
			return invalidf("image %s: layer %s is a foreign layer, which cannot be fetched on linux", reference.FamiliarString(ref), im.Layers[i].Digest)
		}
	}
	id := digest.FromBytes(im.Config)
	chains := chainIDs(diffIDs)
	defer s.hold(chains)()

	if err := s.fetchLayers(ctx, im, diffIDs, chains, rc.MaxConcurrentDownloads(), pr); err != nil {
		return err
	}
	if _, err := s.content.Ingest(ctx, strings.NewReader(string(im.Config)), id, int64(len(im.Config))); err != nil {
		return fmt.Errorf("store image config: %w", err)
	}
	var top digest.Digest
	if len(chains) > 0 {
		top = chains[len(chains)-1]
	}
	// The digest the image is known by is the one a pull names: the
	// index's, when the manifest was chosen from one (as dockerd).
	repoDigest := im.Digest
	if im.IndexDigest != "" {
		repoDigest = im.IndexDigest
	}
	named := reference.TrimNamed(ref)
	canonical, err := reference.WithDigest(named, repoDigest)
	if err != nil {
		return &invalidError{err: err}
	}
	s.mu.Lock()
	next := s.ix.clone()
	newer := next.Images[id] == nil
	if newer {
		next.Images[id] = &record{ID: id, ChainID: top, DiffIDs: diffIDs}
	}
	prevTag, hadTag := next.Refs[ref.String()]
	if _, isTag := ref.(reference.NamedTagged); isTag {
		next.Refs[ref.String()] = id
		if !hadTag || prevTag != id {
			newer = true
			next.Images[id].LastTagTime = time.Now().UTC()
		}
	}
	if _, ok := next.Refs[canonical.String()]; !ok {
		newer = true
	}
	next.Refs[canonical.String()] = id
	err = s.commitIndex(next)
	if err == nil {
		s.emit(events.ActionPull, id, reference.FamiliarString(ref))
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	blobs := make([]registry.Blob, len(im.Layers))
	for i, l := range im.Layers {
		blobs[i] = registry.Blob{Host: im.Host, Repository: im.Repository, Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
	}
	s.rememberBlobs(diffIDs, blobs)

	pr.status("", "Digest: "+repoDigest.String())
	if final {
		if newer {
			pr.status("", "Status: Downloaded newer image for "+reference.FamiliarString(ref))
		} else {
			pr.status("", "Status: Image is up to date for "+reference.FamiliarString(ref))
		}
	}
	return pr.err
}

// layerFetch is one layer being applied by some pull; others pulling the
// same layer wait for it instead of fetching it again.
type layerFetch struct {
	done chan struct{}
	err  error
}

// fetchLayers makes every layer of an image present: present ones are
// kept ("Already exists"), a diff present on another parent is cloned,
// the rest are downloaded (at most limit at once) and extracted while
// they download, each committed once its parent is.
func (s *Store) fetchLayers(ctx context.Context, im *registry.Image, diffIDs, chains []digest.Digest, limit int, pr *progress) error {
	n := len(chains)
	committed := make([]chan struct{}, n)
	errs := make([]error, n)
	for i := range committed {
		committed[i] = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waitParent := func(i int) error {
		if i == 0 {
			return nil
		}
		select {
		case <-committed[i-1]:
			if errs[i-1] != nil {
				return fmt.Errorf("parent layer failed: %w", errs[i-1])
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var todo []int
	for i := range chains {
		id := shortDigest(im.Layers[i].Digest)
		if s.snap.HasLayer(chains[i]) {
			pr.status(id, "Already exists")
			close(committed[i])
			continue
		}
		pr.status(id, "Pulling fs layer")
		todo = append(todo, i)
	}
	for k, i := range todo {
		if k >= limit {
			pr.status(shortDigest(im.Layers[i].Digest), "Waiting")
		}
	}
	slots := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for _, i := range todo {
		// Slots are taken in layer order, so a layer waiting for its
		// parent never holds the slot the parent needs.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			close(committed[i])
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var once sync.Once
			release := func() { once.Do(func() { <-slots }) }
			defer release()
			err := s.fetchLayer(ctx, im, i, diffIDs, chains, func() error {
				release()
				return waitParent(i)
			}, pr)
			errs[i] = err
			if err != nil {
				cancel()
			}
			close(committed[i])
		}(i)
	}
	wg.Wait()
	for _, i := range todo {
		if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
			return errs[i]
		}
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// fetchLayer makes layer i present, or waits for a concurrent pull that is
// making it present.
func (s *Store) fetchLayer(ctx context.Context, im *registry.Image, i int, diffIDs, chains []digest.Digest, ready func() error, pr *progress) error {
	l := im.Layers[i]
	chain := chains[i]
	id := shortDigest(l.Digest)
	for {
		s.fetchMu.Lock()
		if s.snap.HasLayer(chain) {
			s.fetchMu.Unlock()
			pr.status(id, "Already exists")
			return nil
		}
		f := s.fetching[chain]
		if f == nil {
			f = &layerFetch{done: make(chan struct{})}
			s.fetching[chain] = f
			s.fetchMu.Unlock()
			var parent digest.Digest
			if i > 0 {
				parent = chains[i-1]
			}
			f.err = s.downloadLayer(ctx, im, i, diffIDs[i], chain, parent, ready, pr)
			s.fetchMu.Lock()
			delete(s.fetching, chain)
			s.fetchMu.Unlock()
			close(f.done)
			return f.err
		}
		s.fetchMu.Unlock()
		// Another pull fetches this very layer: wait, then look again
		// (it may have failed, then this one tries).
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Store) downloadLayer(ctx context.Context, im *registry.Image, i int, diffID, chain, parent digest.Digest, ready func() error, pr *progress) error {
	l := im.Layers[i]
	id := shortDigest(l.Digest)
	// The same diff on another parent: its files are here already.
	if from, release := s.layerWithDiff(diffID); from != "" {
		err := ready()
		if err == nil {
			_, err = s.snap.CloneLayer(chain, parent, from)
		}
		release()
		if err == nil {
			pr.status(id, "Already exists")
			return nil
		}
		s.log.Warn("cloning a present layer failed; downloading it", "layer", diffID, "err", err)
	}
	blob, err := im.OpenLayer(l)
	if err != nil {
		return err
	}
	defer blob.Close()
	raw := &countReader{r: &ctxReader{ctx, blob}, report: func(n int64) { pr.bar(id, "Downloading", n, l.Size) }}
	dec, err := snapshot.Decompress(raw)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer dec.Close()
	diffHash := sha256.New()
	verify := func() error {
		// The rest of the blob (gzip trailer, padding) goes through the
		// digest check too.
		if _, err := io.Copy(io.Discard, raw); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if got := digest.NewDigest(digest.SHA256, diffHash); got != diffID {
			return invalidf("layer %s: content has diff ID %s, the image config says %s", l.Digest, got, diffID)
		}
		pr.status(id, "Download complete")
		return ready()
	}
	if _, err := s.snap.ApplyLayer(chain, parent, io.TeeReader(dec, diffHash), s.applyOptions(), verify); err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	pr.status(id, "Pull complete")
	return nil
}

// countReader counts what is read through it and reports progress.
type countReader struct {
	r       io.Reader
	n, last int64
	report  func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= 1<<20 || (err != nil && c.n != c.last) {
		c.last = c.n
		c.report(c.n)
	}
	return n, err
}

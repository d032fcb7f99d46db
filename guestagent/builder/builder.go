//go:build linux

package builder

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Backend is what a build needs of the engine.
type Backend interface {
	// BuildImage resolves a local image reference or ID.
	BuildImage(ref string) (id string, cfg *dockerspec.DockerOCIImage, err error)
	// BuildRun runs a RUN step: req.Cmd in a new container on req.Parent,
	// its output to req.Output. Exit code zero commits the container's
	// changes as a new image (returned); otherwise nothing is committed.
	BuildRun(ctx context.Context, req RunRequest) (imageID string, exitCode int, err error)
	// BuildAddFiles extracts the tar stream files at / of a new
	// container on parent (owners kept) and commits it.
	BuildAddFiles(ctx context.Context, parent string, files io.Reader, commit CommitRequest) (string, error)
	// BuildCommit makes a new image on parent that only changes the
	// config (an empty layer in its history).
	BuildCommit(ctx context.Context, parent string, commit CommitRequest) (string, error)
}

// CommitRequest describes the image a step commits.
type CommitRequest struct {
	Config    dockerspec.DockerOCIImageConfig
	CreatedBy string
	Author    string
}

// RunRequest is one RUN step.
type RunRequest struct {
	Parent     string
	Cmd        []string
	Env        []string // the full environment of the command
	User       string
	WorkingDir string
	Network    string // the build's network mode; empty is the default
	Output     io.Writer
	// Started, when set, is called with the step container's ID before
	// the command runs.
	Started func(containerID string)
	Commit  CommitRequest
}

// Config configures a Builder.
type Config struct {
	// Root holds the cache database and the contexts of running builds.
	Root    string
	Backend Backend
	// Tag names an image ("repo:tag").
	Tag func(ctx context.Context, imageID, ref string) error
	// Pull fetches an image that is not present locally; nil means FROM
	// of a missing image fails.
	Pull func(ctx context.Context, ref string, out io.Writer) error
	// Remove deletes an image (the cache's images on prune); nil keeps them.
	Remove func(ctx context.Context, imageID string) (reclaimed int64, err error)
	// HTTPClient fetches remote contexts and ADD URLs.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Options are the query parameters of POST /build.
type Options = api.BuildOptions

var _ api.BuildBackend = (*Builder)(nil)

// Builder runs Dockerfile builds.
type Builder struct {
	cfg Config
	tmp string
	mu  sync.Mutex // serializes prune against builds' cache writes

	// The cache database opens in the background (New returns at once,
	// which matters to the engine's start in a VM); opened tells when it
	// has, and cache and cacheErr are set before it closes.
	opened   chan struct{}
	cache    *cache
	cacheErr error
}

// New opens the builder and its cache under cfg.Root.
func New(cfg Config) (*Builder, error) {
	if cfg.Backend == nil {
		return nil, errors.New("builder: Backend is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	tmp := filepath.Join(cfg.Root, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("builder: clear %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	b := &Builder{cfg: cfg, tmp: tmp, opened: make(chan struct{})}
	go func() {
		defer close(b.opened)
		b.cache, b.cacheErr = openCache(filepath.Join(cfg.Root, "cache.db"))
	}()
	return b, nil
}

// openedCache waits for the cache database to open.
func (b *Builder) openedCache() error {
	<-b.opened
	return b.cacheErr
}

// Close closes the cache.
func (b *Builder) Close() error {
	if err := b.openedCache(); err != nil {
		return nil
	}
	return b.cache.close()
}

// BuildPrune empties the build cache and removes the images only it kept.
func (b *Builder) BuildPrune(ctx context.Context) (deleted []string, reclaimed int64, err error) {
	if err := b.openedCache(); err != nil {
		return nil, 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ids, err := b.cache.prune()
	if err != nil {
		return nil, 0, err
	}
	if b.cfg.Remove == nil {
		return ids, 0, nil
	}
	// Children first: a later step's image is removed before its parent.
	for i := len(ids) - 1; i >= 0; i-- {
		n, err := b.cfg.Remove(ctx, ids[i])
		if err != nil {
			continue // tagged or in use: it stays an image, no longer cache
		}
		reclaimed += n
		deleted = append(deleted, ids[i])
	}
	return deleted, reclaimed, nil
}

// stream writes the JSON message stream the CLI renders.
type stream struct {
	raw   io.Writer // the response itself (pull progress goes here as is)
	mu    sync.Mutex
	enc   *json.Encoder
	flush func()
	quiet bool
}

type message struct {
	Stream string `json:"stream,omitempty"`
	Aux    any    `json:"aux,omitempty"`
}

func (s *stream) write(m message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.enc.Encode(m)
	if s.flush != nil {
		s.flush()
	}
}

func (s *stream) printf(format string, args ...any) {
	if s.quiet {
		return
	}
	s.write(message{Stream: fmt.Sprintf(format, args...)})
}

// Write passes a step's output through as stream messages.
func (s *stream) Write(p []byte) (int, error) {
	if !s.quiet && len(p) > 0 {
		s.write(message{Stream: string(p)})
	}
	return len(p), nil
}

// StepError is a failed RUN step: the CLI shows Message and exits with
// Code.
type StepError struct {
	Message string
	Code    int
}

func (e *StepError) Error() string { return e.Message }

// StepExitCode is the failed command's exit code.
func (e *StepError) StepExitCode() int { return e.Code }

// Build runs a build of the context tar in (ignored when opts.Remote
// names a URL) and writes the progress stream to out. flush, when set,
// is called after each message. It returns the image ID.
func (b *Builder) Build(ctx context.Context, opts Options, in io.Reader, out io.Writer, flush func()) (string, error) {
	t0 := time.Now()
	if err := b.openedCache(); err != nil {
		return "", err
	}
	tags, err := b.checkTags(opts.Tags)
	if err != nil {
		return "", err
	}
	st := &stream{raw: out, enc: json.NewEncoder(out), flush: flush, quiet: opts.Quiet}
	var root *memFS
	if opts.Remote != "" && opts.Remote != "context" {
		switch {
		case strings.HasPrefix(opts.Remote, "http://"), strings.HasPrefix(opts.Remote, "https://"):
			f, err := fetchRemote(ctx, b.cfg.HTTPClient, opts.Remote, b.tmp)
			if err != nil {
				return "", err
			}
			defer os.Remove(f.Name())
			defer f.Close()
			rc, compressed, err := decompress(f)
			if err != nil {
				return "", err
			}
			head := make([]byte, 512)
			n, _ := io.ReadFull(rc, head)
			rc.Close()
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return "", err
			}
			if !compressed && !looksLikeTar(head[:n]) {
				// A plain Dockerfile at the URL is the whole context.
				df := opts.Dockerfile
				if df == "" {
					df = "Dockerfile"
				}
				df = path.Base("/" + filepath.ToSlash(df))
				if root, err = newMemFS(b.tmp); err != nil {
					return "", err
				}
				if err := root.addFile(df, tar.Header{Mode: 0o644, ModTime: time.Now()}, f); err != nil {
					root.Close()
					return "", err
				}
				opts.Dockerfile = df
			} else if root, err = readContext(b.tmp, f); err != nil {
				return "", err
			}
		default:
			return "", notImplemented("building from %q is not supported: the context must be a tar stream or the URL of a tarball (git repositories are not supported yet)", opts.Remote)
		}
	} else {
		var err error
		if root, err = readContext(b.tmp, in); err != nil {
			return "", err
		}
	}
	defer root.Close()
	tCtx := time.Since(t0)

	dfName := opts.Dockerfile
	if dfName == "" {
		dfName = "Dockerfile"
	}
	dfRel := filepath.ToSlash(filepath.Clean("/" + dfName))[1:]
	data, err := root.ReadFile(dfRel)
	if err != nil && dfName == "Dockerfile" {
		if d2, err2 := root.ReadFile("dockerfile"); err2 == nil {
			data, err = d2, nil
		}
	}
	if err != nil {
		return "", invalidParameter("Cannot locate specified Dockerfile: %s", dfName)
	}
	patterns, err := readIgnore(root)
	if err != nil {
		return "", fmt.Errorf("read .dockerignore: %w", err)
	}
	if err := applyIgnore(root, patterns, dfRel); err != nil {
		return "", err
	}

	if opts.Platform != "" && !ownPlatform(opts.Platform) {
		return "", invalidParameter("this engine builds for %s only, not %s", "linux/"+goruntime.GOARCH, opts.Platform)
	}
	plan, err := parseDockerfile(data, opts)
	if err != nil {
		return "", err
	}
	run := &buildRun{b: b, opts: opts, st: st, ctxRoot: root, plan: plan, ctx: ctx, stageImages: map[int]*stageState{}}
	id, err := run.execute()
	if err != nil {
		return "", err
	}
	b.cfg.Logger.Debug("build done", "context", tCtx, "total", time.Since(t0))
	if unused := run.unusedArgs(); len(unused) > 0 {
		st.printf("[Warning] One or more build-args [%s] were not consumed\n", strings.Join(unused, " "))
	}
	st.write(message{Aux: map[string]string{"ID": id}})
	short := shortID(id)
	st.printf("Successfully built %s\n", short)
	if opts.Quiet {
		st.write(message{Stream: id + "\n"})
	}
	for _, t := range tags {
		if err := b.cfg.Tag(ctx, id, t); err != nil {
			return "", err
		}
		st.printf("Successfully tagged %s\n", t)
	}
	return id, nil
}

// checkTags validates the names a build gives its image before it runs,
// returning them as Docker prints them ("name:latest").
func (b *Builder) checkTags(tags []string) ([]string, error) {
	var out []string
	for _, t := range tags {
		if b.cfg.Tag == nil {
			return nil, notImplemented("tagging built images is not supported by this engine")
		}
		named, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return nil, invalidParameter("invalid reference format: %s: %v", t, err)
		}
		if _, digested := named.(reference.Digested); digested {
			return nil, invalidParameter("invalid reference format: %s: a build cannot be named by a digest", t)
		}
		out = append(out, reference.FamiliarString(reference.TagNameOnly(named)))
	}
	return out, nil
}

// ownPlatform says whether p (os[/arch[/variant]]) names this machine.
func ownPlatform(p string) bool {
	parts := strings.Split(strings.ToLower(p), "/")
	if parts[0] != "linux" {
		return false
	}
	return len(parts) < 2 || parts[1] == goruntime.GOARCH
}

func looksLikeTar(head []byte) bool {
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

func shortID(id string) string {
	s := strings.TrimPrefix(id, "sha256:")
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Errors with the behaviour guestagent/api maps to status codes.
type errInvalid struct{ error }

func (errInvalid) InvalidParameter() {}
func (e errInvalid) Unwrap() error   { return e.error }

type errNotImpl struct{ error }

func (errNotImpl) NotImplemented() {}
func (e errNotImpl) Unwrap() error { return e.error }

type errNotFound struct{ error }

func (errNotFound) NotFound()       {}
func (e errNotFound) Unwrap() error { return e.error }

func invalidParameter(format string, args ...any) error {
	return errInvalid{fmt.Errorf(format, args...)}
}

func notImplemented(format string, args ...any) error {
	return errNotImpl{fmt.Errorf(format, args...)}
}

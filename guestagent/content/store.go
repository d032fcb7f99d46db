package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// ErrNotFound is wrapped by every error about a blob that is not in the
// store.
var ErrNotFound = errors.New("blob not found")

// notFoundError names the missing blob and answers NotFound() so that the
// API maps it to 404.
type notFoundError struct{ dgst digest.Digest }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("content: blob %s: %v", e.dgst, ErrNotFound)
}
func (e *notFoundError) Unwrap() error { return ErrNotFound }
func (e *notFoundError) NotFound()     {}

// DigestMismatchError reports ingested bytes that do not hash to the
// digest the caller expected.
type DigestMismatchError struct {
	Expected, Actual digest.Digest
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("content: digest mismatch: expected %s, got %s", e.Expected, e.Actual)
}

// InvalidParameter makes a mismatch a 400 at the API.
func (e *DigestMismatchError) InvalidParameter() {}

// Info describes a stored blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// Provider gives read access to blobs.
type Provider interface {
	ReaderAt(dgst digest.Digest) (ReaderAtCloser, error)
}

// ReaderAtCloser is a blob opened for random access.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store is a digest-addressed blob store rooted at a directory:
// blobs/sha256/<hex> holds complete, verified blobs and ingest/ holds
// blobs being written. Only sha256 is accepted.
type Store struct {
	root string
}

// Open opens (creating if needed) the blob store under root.
func Open(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content: create %s: %w", d, err)
		}
	}
	s := &Store{root: root}
	// Anything left in ingest/ is from an interrupted write.
	entries, err := os.ReadDir(filepath.Join(root, "ingest"))
	if err != nil {
		return nil, fmt.Errorf("content: read ingest directory: %w", err)
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(root, "ingest", e.Name()))
	}
	return s, nil
}

func (s *Store) blobPath(dgst digest.Digest) (string, error) {
	if err := dgst.Validate(); err != nil {
		return "", fmt.Errorf("content: invalid digest %q: %w", dgst, err)
	}
	if dgst.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("content: digest %s: unsupported algorithm %s", dgst, dgst.Algorithm())
	}
	return filepath.Join(s.root, "blobs", "sha256", dgst.Encoded()), nil
}

// Ingest copies r into the store. When expected is not empty the bytes must
// hash to it (and, when size >= 0, be exactly size long); otherwise the
// digest is computed. The blob becomes visible only once it is complete,
// verified and durable: it is written to a temp file while hashing,
// fsynced, renamed into place and the directory fsynced.
func (s *Store) Ingest(ctx context.Context, r io.Reader, expected digest.Digest, size int64) (Info, error) {
	if expected != "" {
		p, err := s.blobPath(expected)
		if err != nil {
			return Info{}, err
		}
		if fi, err := os.Stat(p); err == nil {
			// Already present: consume nothing more than needed.
			return Info{Digest: expected, Size: fi.Size()}, nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "blob-")
	if err != nil {
		return Info{}, fmt.Errorf("content: create ingest file: %w", err)
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	dg := digest.SHA256.Digester()
	n, err := io.Copy(io.MultiWriter(tmp, dg.Hash()), &ctxReader{ctx: ctx, r: r})
	if err != nil {
		return Info{}, fmt.Errorf("content: ingest %s: %w", expectedOrUnknown(expected), err)
	}
	actual := dg.Digest()
	if expected != "" && actual != expected {
		return Info{}, &DigestMismatchError{Expected: expected, Actual: actual}
	}
	if size >= 0 && n != size {
		return Info{}, fmt.Errorf("content: ingest %s: size %d, expected %d", actual, n, size)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("content: sync %s: %w", actual, err)
	}
	if err := tmp.Close(); err != nil {
		return Info{}, fmt.Errorf("content: close %s: %w", actual, err)
	}
	if err := os.Chmod(tmpName, 0o444); err != nil {
		return Info{}, fmt.Errorf("content: chmod %s: %w", actual, err)
	}
	dst, _ := s.blobPath(actual)
	if err := os.Rename(tmpName, dst); err != nil {
		return Info{}, fmt.Errorf("content: commit %s: %w", actual, err)
	}
	done = true
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return Info{}, fmt.Errorf("content: commit %s: %w", actual, err)
	}
	return Info{Digest: actual, Size: n}, nil
}

func expectedOrUnknown(d digest.Digest) string {
	if d == "" {
		return "blob"
	}
	return d.String()
}

// Info returns the size of a stored blob.
func (s *Store) Info(dgst digest.Digest) (Info, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, &notFoundError{dgst}
		}
		return Info{}, fmt.Errorf("content: stat %s: %w", dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size()}, nil
}

// Open opens a stored blob for sequential reading.
func (s *Store) Open(dgst digest.Digest) (io.ReadCloser, error) {
	ra, err := s.ReaderAt(dgst)
	if err != nil {
		return nil, err
	}
	return ra.(*blobFile).File, nil
}

// ReaderAt opens a stored blob for random access.
func (s *Store) ReaderAt(dgst digest.Digest) (ReaderAtCloser, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &notFoundError{dgst}
		}
		return nil, fmt.Errorf("content: open %s: %w", dgst, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content: stat %s: %w", dgst, err)
	}
	return &blobFile{File: f, size: fi.Size()}, nil
}

// ReadAll returns a whole blob; meant for small blobs (configs, manifests).
func (s *Store) ReadAll(dgst digest.Digest) ([]byte, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &notFoundError{dgst}
		}
		return nil, fmt.Errorf("content: read %s: %w", dgst, err)
	}
	return b, nil
}

// Delete removes a blob. Deleting a missing blob is a NotFound error.
func (s *Store) Delete(dgst digest.Digest) error {
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &notFoundError{dgst}
		}
		return fmt.Errorf("content: delete %s: %w", dgst, err)
	}
	return syncDir(filepath.Dir(p))
}

// Walk calls fn for every complete blob, in digest order. An error from fn
// stops the walk and is returned.
func (s *Store) Walk(fn func(Info) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("content: list blobs: %w", err)
	}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("content: stat blob %s: %w", d, err)
		}
		if err := fn(Info{Digest: d, Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

type blobFile struct {
	*os.File
	size int64
}

func (b *blobFile) Size() int64 { return b.size }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

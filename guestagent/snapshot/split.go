//go:build linux

package snapshot

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
)

// A layer keeps, beside its extracted files, how to write its tar again
// byte for byte (docker save needs the very bytes its diff ID names): the
// raw header bytes between file bodies, and for each body the file it
// went to. This file is tar-split.json.gz in the layer directory: one
// JSON object per line, {"d": raw bytes} or {"p": path, "n": size}.

const splitFile = "tar-split.json.gz"

type splitEntry struct {
	Data []byte `json:"d,omitempty"`
	Path string `json:"p,omitempty"`
	Size int64  `json:"n,omitempty"`
}

// splitRecorder sits under the tar reader while a layer is applied and
// records every byte read, except file bodies, which it records as
// references to the files written. It streams the record to a file.
type splitRecorder struct {
	r       io.Reader
	f       *os.File
	zw      *gzip.Writer
	enc     *json.Encoder
	cur     bytes.Buffer
	payload bool
	err     error // writing the record failed
	broken  error // the layer cannot be reassembled
}

func newSplitRecorder(r io.Reader, path string) (*splitRecorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	zw := gzip.NewWriter(f)
	return &splitRecorder{r: r, f: f, zw: zw, enc: json.NewEncoder(zw)}, nil
}

func (s *splitRecorder) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 && !s.payload {
		s.cur.Write(p[:n])
		if s.cur.Len() >= 1<<20 {
			s.flush()
		}
	}
	return n, err
}

func (s *splitRecorder) write(e splitEntry) {
	if s.err == nil {
		s.err = s.enc.Encode(e)
	}
}

func (s *splitRecorder) flush() {
	if s.cur.Len() > 0 {
		s.write(splitEntry{Data: s.cur.Bytes()})
		s.cur.Reset()
	}
}

// beginBody and endBody bracket the reading of a file body written to
// rel.
func (s *splitRecorder) beginBody() {
	s.flush()
	s.payload = true
}

func (s *splitRecorder) endBody(rel string, n int64) {
	s.payload = false
	s.write(splitEntry{Path: rel, Size: n})
}

func (s *splitRecorder) fail(err error) {
	if s.broken == nil {
		s.broken = err
	}
}

// close finishes the record; a layer that cannot be reassembled keeps
// none.
func (s *splitRecorder) close() error {
	s.flush()
	err := s.err
	if zerr := s.zw.Close(); err == nil {
		err = zerr
	}
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if s.broken != nil || err != nil {
		os.Remove(s.f.Name())
	}
	return err
}

// ErrNoTar is returned by LayerTar for a layer whose tar cannot be
// written again (applied before tar records were kept, or holding sparse
// files).
var ErrNoTar = errors.New("the layer's original tar cannot be reproduced")

// LayerTar writes a committed layer's tar again, exactly as it was
// applied, and returns its size. The result is checked against the
// layer's diff ID (digest of that tar) while it streams; a mismatch fails
// the last Read.
func (s *Snapshotter) LayerTar(chainID digest.Digest, diffID digest.Digest) (io.ReadCloser, int64, error) {
	dir, err := s.layerDir(chainID)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(filepath.Join(dir, splitFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if !s.HasLayer(chainID) {
				return nil, 0, &NotFoundError{What: "layer " + chainID.String()}
			}
			return nil, 0, fmt.Errorf("snapshot: layer %s: %w", chainID, ErrNoTar)
		}
		return nil, 0, fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: layer %s: tar record: %w", chainID, err)
	}
	var entries []splitEntry
	var size int64
	dec := json.NewDecoder(bufio.NewReader(zr))
	for dec.More() {
		var e splitEntry
		if err := dec.Decode(&e); err != nil {
			return nil, 0, fmt.Errorf("snapshot: layer %s: tar record: %w", chainID, err)
		}
		size += int64(len(e.Data)) + e.Size
		entries = append(entries, e)
	}
	root, err := os.OpenRoot(filepath.Join(dir, "fs"))
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer root.Close()
		h := sha256.New()
		w := io.MultiWriter(pw, h)
		for _, e := range entries {
			if e.Path == "" {
				if _, err := w.Write(e.Data); err != nil {
					pw.CloseWithError(err)
					return
				}
				continue
			}
			bf, err := root.Open(e.Path)
			if err != nil {
				pw.CloseWithError(fmt.Errorf("snapshot: layer %s: %w", chainID, err))
				return
			}
			_, err = io.CopyN(w, bf, e.Size)
			bf.Close()
			if err != nil {
				pw.CloseWithError(fmt.Errorf("snapshot: layer %s: %s: %w", chainID, e.Path, err))
				return
			}
		}
		if got := digest.NewDigest(digest.SHA256, h); diffID != "" && got != diffID {
			pw.CloseWithError(fmt.Errorf("snapshot: layer %s: reproduced tar has digest %s, not %s: %w", chainID, got, diffID, ErrNoTar))
			return
		}
		pw.Close()
	}()
	return pr, size, nil
}

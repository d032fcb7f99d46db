//go:build linux

package builder

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/berthdesktop/berth/guestagent/snapshot"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/ulikunitz/xz"
)

// decompress returns the plain tar of r, which may be gzip, bzip2, xz or
// zstd compressed or not compressed at all.
func decompress(r io.Reader) (io.ReadCloser, bool, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	switch {
	case len(head) >= 3 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h':
		return io.NopCloser(bzip2.NewReader(br)), true, nil
	case len(head) >= 6 && string(head) == "\xfd7zXZ\x00":
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, false, err
		}
		return io.NopCloser(xr), true, nil
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, err
		}
		return zr, true, nil
	}
	rc, err := snapshot.Decompress(br)
	return rc, false, err
}

// fetchRemote downloads the tarball at url into a temporary file.
func fetchRemote(ctx context.Context, client *http.Client, url, tmpDir string) (*os.File, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("error downloading remote context %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("error downloading remote context %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp(tmpDir, "remote-*")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("error downloading remote context %s: %w", url, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readIgnore reads .dockerignore from the context root.
func readIgnore(fsys srcFS) ([]string, error) {
	f, err := fsys.Open(".dockerignore")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// applyIgnore removes from the context what .dockerignore excludes,
// keeping the Dockerfile and .dockerignore themselves (Docker's rule).
func applyIgnore(m *memFS, patterns []string, keep ...string) error {
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("invalid .dockerignore: %w", err)
	}
	keepSet := map[string]bool{".dockerignore": true}
	for _, k := range keep {
		keepSet[path.Clean(k)] = true
	}
	names := make([]string, 0, len(m.entries))
	for n := range m.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var emptyDirs []string
	for _, n := range names {
		e, ok := m.entries[n]
		if !ok || keepSet[n] {
			continue // removed with its directory, or kept
		}
		excluded, err := pm.MatchesOrParentMatches(n)
		if err != nil {
			return err
		}
		if !excluded {
			continue
		}
		if e.hdr.Typeflag == tar.TypeDir && pm.Exclusions() {
			// An exception may bring back something below it: the
			// directory goes if nothing is left in it.
			emptyDirs = append(emptyDirs, n)
			continue
		}
		m.remove(n)
	}
	for i := len(emptyDirs) - 1; i >= 0; i-- {
		if len(m.children[emptyDirs[i]]) == 0 {
			m.remove(emptyDirs[i])
		}
	}
	return nil
}

// copyEntry is one file a COPY or ADD writes: its name in the image
// (relative to /), its header, and where its content comes from.
type copyEntry struct {
	name string
	hdr  tar.Header
	src  string                        // the file in its tree
	open func() (io.ReadCloser, error) // its content (regular files)
	sum  *[32]byte                     // its SHA-256, when known
}

// hashEntries is the content hash of a COPY or ADD: names, modes, owners,
// link targets and file contents, never times, so a touched but unchanged
// file keeps the cache.
func hashEntries(entries []copyEntry) (string, error) {
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d:%d\x00%s\x00", e.name, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, e.hdr.Linkname)
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		if e.sum != nil {
			h.Write(e.sum[:])
			continue
		}
		r, err := e.open()
		if err != nil {
			return "", err
		}
		fh := sha256.New()
		_, err = io.Copy(fh, r)
		r.Close()
		if err != nil {
			return "", err
		}
		h.Write(fh.Sum(nil))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeEntries writes entries as a tar stream to w.
func writeEntries(entries []copyEntry, w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := e.hdr
		hdr.Name = e.name
		if hdr.Typeflag == tar.TypeDir && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		r, err := e.open()
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, r, hdr.Size)
		r.Close()
		if err != nil {
			return fmt.Errorf("copy %s: %w", e.src, err)
		}
	}
	return tw.Close()
}

// sortEntries orders entries so that directories precede their content.
func sortEntries(entries []copyEntry) {
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
}

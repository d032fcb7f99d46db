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
	"path/filepath"
	"sort"
	"strings"
	"time"

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

// extractContext writes the build context tar r into dir. Every path goes
// through an os.Root on dir, so no entry lands outside it.
func extractContext(dir string, r io.Reader) error {
	rc, _, err := decompress(r)
	if err != nil {
		return fmt.Errorf("read build context: %w", err)
	}
	defer rc.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(rc)
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read build context: %w", err)
		}
		name, err := snapshot.CleanEntryPath(hdr.Name)
		if err != nil {
			return fmt.Errorf("build context entry %q: %w", hdr.Name, err)
		}
		if name == "" {
			continue
		}
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("build context entry %q: %w", hdr.Name, err)
			}
		}
		mode := fs.FileMode(hdr.Mode).Perm() | fs.FileMode(hdr.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("build context entry %q: %w", hdr.Name, err)
			}
			_ = root.Chmod(name, mode.Perm())
			dirs = append(dirs, dirTime{name, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			_ = root.Remove(name)
			f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
			if err != nil {
				return fmt.Errorf("build context entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("build context entry %q: %w", hdr.Name, err)
			}
			_ = root.Chmod(name, mode.Perm())
			_ = root.Chtimes(name, hdr.ModTime, hdr.ModTime)
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("build context entry %q: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := snapshot.CleanEntryPath(hdr.Linkname)
			if err != nil || target == "" {
				return fmt.Errorf("build context entry %q: bad link target %q", hdr.Name, hdr.Linkname)
			}
			_ = root.Remove(name)
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("build context entry %q: %w", hdr.Name, err)
			}
		default:
			// Devices and fifos have no place in a build context.
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = root.Chtimes(dirs[i].name, dirs[i].t, dirs[i].t)
	}
	return nil
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
func readIgnore(root *os.Root) ([]string, error) {
	f, err := root.Open(".dockerignore")
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
func applyIgnore(dir string, patterns []string, keep ...string) error {
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("invalid .dockerignore: %w", err)
	}
	keepSet := map[string]bool{".dockerignore": true}
	for _, k := range keep {
		keepSet[filepath.ToSlash(filepath.Clean(k))] = true
	}
	var remove, emptyDirs []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if keepSet[rel] {
			return nil
		}
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if excluded {
			if d.IsDir() && !pm.Exclusions() {
				remove = append(remove, p)
				return filepath.SkipDir
			}
			if d.IsDir() {
				// An exception may bring back something below it: the
				// directory goes if nothing is left in it.
				emptyDirs = append(emptyDirs, p)
			} else {
				remove = append(remove, p)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	for i := len(emptyDirs) - 1; i >= 0; i-- {
		_ = os.Remove(emptyDirs[i]) // fails, as it should, when not empty
	}
	return nil
}

// copyEntry is one file a COPY or ADD writes: its name in the image
// (relative to /), its header, and where its content comes from.
type copyEntry struct {
	name string
	hdr  tar.Header
	src  string                        // file in the context (regular files)
	open func() (io.ReadCloser, error) // other content (URLs, archives)
}

// hashEntries is the content hash of a COPY or ADD: names, modes, owners,
// link targets and file contents, never times, so a touched but unchanged
// file keeps the cache.
func hashEntries(root *os.Root, entries []copyEntry) (string, error) {
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d:%d\x00%s\x00", e.name, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, e.hdr.Linkname)
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		var r io.ReadCloser
		var err error
		if e.open != nil {
			r, err = e.open()
		} else {
			r, err = root.Open(e.src)
		}
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
func writeEntries(root *os.Root, entries []copyEntry, w io.Writer) error {
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
		var r io.ReadCloser
		var err error
		if e.open != nil {
			r, err = e.open()
		} else {
			r, err = root.Open(e.src)
		}
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

//go:build linux

package snapshot

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Whiteout conventions of image layers (the AUFS form used by Docker and
// OCI archives) and of overlayfs, into which they are converted.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// AllowDevices lets the archive create character and block device
	// nodes. Without it such an entry fails the apply (the error names the
	// entry). FIFOs are not devices and are always allowed; the whiteout
	// devices (0/0) the extractor makes itself are always allowed.
	AllowDevices bool
}

// EntryError is a refused or failed archive entry.
type EntryError struct {
	Name string // the entry name as written in the archive
	Err  error
}

func (e *EntryError) Error() string { return fmt.Sprintf("layer entry %q: %v", e.Name, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// InvalidParameter makes a malformed or hostile layer a 400 at the API.
func (e *EntryError) InvalidParameter() {}

// Errors wrapped by EntryError for refused entries.
var (
	ErrPathEscapes   = errors.New("path leaves the layer root")
	ErrLinkEscapes   = errors.New("hard link target leaves the layer root")
	ErrDeviceRefused = errors.New("device nodes are not allowed in this layer")
	ErrUnsupported   = errors.New("unsupported entry type")
)

// Compression of a layer stream, detected from its first bytes.
type Compression int

// Compressions Decompress recognises.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte{0x42, 0x5a, 0x68}
	xzMagic    = []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}
)

// DetectCompression names the compression of a stream from its first bytes.
func DetectCompression(head []byte) (Compression, error) {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	case bytes.HasPrefix(head, bzip2Magic) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return Uncompressed, errors.New("bzip2 compressed layers are not supported")
	case bytes.HasPrefix(head, xzMagic):
		return Uncompressed, errors.New("xz compressed layers are not supported")
	}
	return Uncompressed, nil
}

// Decompress returns the uncompressed form of a layer stream that is plain
// tar, gzip or zstd.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(8)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read layer header: %w", err)
	}
	c, err := DetectCompression(head)
	if err != nil {
		return nil, err
	}
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip layer: %w", err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("open zstd layer: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// CleanEntryPath turns an archive name into a path relative to the layer
// root ("" for the root itself). A name whose ".." components climb above
// the root is refused rather than silently clamped.
func CleanEntryPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("path contains a NUL byte")
	}
	depth := 0
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			if depth == 0 {
				return "", ErrPathEscapes
			}
			depth--
			parts = parts[:len(parts)-1]
		default:
			depth++
			parts = append(parts, p)
		}
	}
	return path.Join(parts...), nil
}

// Apply extracts an uncompressed layer tar from r into dir, turning
// whiteout entries into overlay whiteouts (.wh.NAME becomes a 0/0
// character device NAME, .wh..wh..opq sets trusted.overlay.opaque=y on its
// directory) and restoring ownership, modes, mtimes and xattrs.
//
// Every path operation goes through an os.Root opened on dir, so nothing
// is ever written outside dir: names that climb out with "..", writes
// through symlinks whose targets leave dir (absolute targets included,
// since they would resolve on the host), and hard links whose target is
// outside dir are refused with an EntryError naming the entry. Symlinks
// themselves may point anywhere: they are created, never followed out.
// Xattrs in the trusted.overlay namespace are dropped, since they would
// steer overlayfs. Apply returns the layer's size as dockerd counts it:
// the bytes of its regular files plus the length of its symlinks' targets.
func Apply(dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("open layer directory: %w", err)
	}
	defer root.Close()
	a := &applier{root: root, opts: opts}
	return a.run(r)
}

// applyRecorded is Apply keeping, in the file record, what lets LayerTar
// write the tar again. It reads r to its end.
func applyRecorded(dir string, r io.Reader, opts ApplyOptions, record string) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("open layer directory: %w", err)
	}
	defer root.Close()
	rec, err := newSplitRecorder(r, record)
	if err != nil {
		return 0, fmt.Errorf("record layer tar: %w", err)
	}
	a := &applier{root: root, opts: opts, rec: rec}
	n, err := a.run(rec)
	if err == nil {
		// The rest of the stream (end-of-archive blocks and beyond)
		// belongs to the tar too.
		if _, cerr := io.Copy(io.Discard, rec); cerr != nil {
			err = fmt.Errorf("read layer trailer: %w", cerr)
		}
	}
	if cerr := rec.close(); err == nil && cerr != nil {
		err = fmt.Errorf("record layer tar: %w", cerr)
	}
	return n, err
}

type dirTimes struct {
	rel   string
	mtime time.Time
	atime time.Time
}

type applier struct {
	root *os.Root
	opts ApplyOptions
	size int64
	dirs []dirTimes
	buf  []byte
	rec  *splitRecorder // nil unless the tar is recorded
}

// fileWriter hides *os.File's ReadFrom so that io.CopyBuffer uses the
// applier's large buffer.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (a *applier) run(r io.Reader) (int64, error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.size, fmt.Errorf("read layer tar: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.size, &EntryError{Name: hdr.Name, Err: err}
		}
	}
	// Directory times last, deepest first, since creating children
	// changed them.
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		if err := a.setTimes(d.rel, d.atime, d.mtime); err != nil {
			return a.size, &EntryError{Name: d.rel, Err: err}
		}
	}
	return a.size, nil
}

func (a *applier) entry(hdr *tar.Header, body io.Reader) error {
	rel, err := CleanEntryPath(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		// The layer root itself: its attributes belong to the parent
		// layer's directory, as with dockerd; nothing to create.
		return nil
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if err := a.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create parent directory: %w", err)
	}

	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}

	// Replace whatever is in the way, unless a directory meets a directory.
	if fi, err := a.root.Lstat(rel); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := a.root.RemoveAll(rel); err != nil {
				return fmt.Errorf("replace existing entry: %w", err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("inspect existing entry: %w", err)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := a.root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory: %w", err)
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		f, err := a.root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("create file: %w", err)
		}
		if a.buf == nil {
			a.buf = make([]byte, 1<<20)
		}
		sparse := hdr.Typeflag == tar.TypeGNUSparse || hdr.PAXRecords["GNU.sparse.major"] != "" || hdr.PAXRecords["GNU.sparse.size"] != ""
		if a.rec != nil {
			if sparse {
				a.rec.fail(errors.New("sparse file " + hdr.Name))
			} else {
				a.rec.beginBody()
			}
		}
		n, err := io.CopyBuffer(fileWriter{f}, body, a.buf)
		if a.rec != nil && !sparse {
			a.rec.endBody(rel, n)
		}
		a.size += n
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write file: %w", err)
		}
	case tar.TypeSymlink:
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return errors.New("invalid symlink target")
		}
		if err := a.root.Symlink(hdr.Linkname, rel); err != nil {
			return fmt.Errorf("create symlink: %w", err)
		}
		a.size += int64(len(hdr.Linkname))
	case tar.TypeLink:
		target, err := CleanEntryPath(hdr.Linkname)
		if err != nil || target == "" {
			return fmt.Errorf("%w: %q", ErrLinkEscapes, hdr.Linkname)
		}
		if err := a.root.Link(target, rel); err != nil {
			return fmt.Errorf("create hard link to %q: %w", hdr.Linkname, err)
		}
		// A hard link shares its target's attributes.
		return nil
	case tar.TypeChar, tar.TypeBlock:
		if !a.opts.AllowDevices {
			return ErrDeviceRefused
		}
		mode := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		}
		if err := a.mknod(dir, base, mode|0o600, unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))); err != nil {
			return err
		}
	case tar.TypeFifo:
		if err := a.mknod(dir, base, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("%w %q", ErrUnsupported, hdr.Typeflag)
	}
	return a.attributes(hdr, rel, dir, base)
}

func (a *applier) whiteout(dir, base string) error {
	if base == whiteoutOpaque {
		// The opaque mark goes on the directory holding the entry.
		d, err := a.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("open directory to mark opaque: %w", err)
		}
		defer d.Close()
		if err := unix.Fsetxattr(int(d.Fd()), opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark directory opaque: %w", err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) has no meaning here.
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return errors.New("invalid whiteout name")
	}
	rel := path.Join(dir, name)
	if _, err := a.root.Lstat(rel); err == nil {
		if err := a.root.RemoveAll(rel); err != nil {
			return fmt.Errorf("replace existing entry with whiteout: %w", err)
		}
	}
	return a.mknod(dir, name, unix.S_IFCHR, unix.Mkdev(0, 0))
}

// withParent calls fn with a /proc/self/fd path naming the directory dir
// (opened through the root, so it lies inside it). Paths built on it with
// a single final component cannot leave the root.
func (a *applier) withParent(dir string, fn func(procPath string) error) error {
	d, err := a.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open parent directory: %w", err)
	}
	defer d.Close()
	return fn("/proc/self/fd/" + strconv.Itoa(int(d.Fd())))
}

func (a *applier) mknod(dir, base string, mode uint32, dev uint64) error {
	d, err := a.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open parent directory: %w", err)
	}
	defer d.Close()
	if err := unix.Mknodat(int(d.Fd()), base, mode, int(dev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return nil
}

func (a *applier) attributes(hdr *tar.Header, rel, dir, base string) error {
	if err := a.root.Lchown(rel, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	var xattrs [][2]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		xattrs = append(xattrs, [2]string{name, v})
	}
	if len(xattrs) > 0 {
		err := a.withParent(dir, func(p string) error {
			for _, x := range xattrs {
				if err := unix.Lsetxattr(p+"/"+base, x[0], []byte(x[1]), 0); err != nil {
					if hdr.Typeflag == tar.TypeSymlink && errors.Is(err, unix.EPERM) {
						continue // user.* xattrs are not allowed on symlinks
					}
					return fmt.Errorf("set xattr %s: %w", x[0], err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears set-id bits.
		if err := a.root.Chmod(rel, hdr.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTimes{rel: rel, mtime: hdr.ModTime, atime: atime})
		return nil
	}
	return a.setTimesIn(dir, base, atime, hdr.ModTime)
}

func (a *applier) setTimes(rel string, atime, mtime time.Time) error {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	return a.setTimesIn(dir, base, atime, mtime)
}

func (a *applier) setTimesIn(dir, base string, atime, mtime time.Time) error {
	d, err := a.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open parent directory: %w", err)
	}
	defer d.Close()
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	if err := unix.UtimesNanoAt(int(d.Fd()), base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return unix.Timespec{Sec: 0}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

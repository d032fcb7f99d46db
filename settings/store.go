package settings

import (
	"errors"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// FileName is the settings document's name in its folder.
const FileName = "settings.json"

// Dir is where settings.json lives: $BERTH_HOME when it is set, else
// Berth's folder in the OS's config folder (~/.config/berth on Linux,
// ~/Library/Application Support/Berth on macOS, %AppData%\Berth on
// Windows).
func Dir() (string, error) {
	if h := os.Getenv("BERTH_HOME"); h != "" {
		return filepath.Abs(h)
	}
	c, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("settings folder: %w", err)
	}
	name := "berth"
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		name = "Berth"
	}
	return filepath.Join(c, name), nil
}

// Store keeps one settings document on disk.
type Store struct {
	// Path is the settings.json file.
	Path string
	// Host is what documents are checked against and defaulted for.
	Host Host
	// Now stamps the name a bad file is kept under; nil is time.Now.
	Now func() time.Time
}

// NewStore is the store of settings.json in Dir, for this machine.
func NewStore() (*Store, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return &Store{Path: filepath.Join(dir, FileName), Host: LocalHost()}, nil
}

// BadFile tells that the stored document no longer parsed: it was kept
// aside as KeptAs and the defaults are in use.
type BadFile struct {
	KeptAs string
	Err    error
}

func (b *BadFile) Error() string {
	return fmt.Sprintf("the settings could not be read (%v); they were kept as %s and the defaults are in use", b.Err, b.KeptAs)
}

func (b *BadFile) Unwrap() error { return b.Err }

// Load reads the document, over the host's defaults. A missing file is
// the defaults. A file that no longer parses is renamed to
// settings.json.bad-<time>, the defaults are returned, and bad says so for
// the caller to tell the user. The document is not validated against the
// host (Validate).
func (s *Store) Load() (d *Document, bad *BadFile, err error) {
	defaults := Defaults(s.Host)
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return defaults, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read settings: %w", err)
	}
	d, perr := Parse(data, defaults)
	if perr == nil {
		return d, nil, nil
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	kept := s.Path + ".bad-" + now().UTC().Format("20060102T150405Z")
	if err := os.Rename(s.Path, kept); err != nil {
		return nil, nil, fmt.Errorf("keep the unreadable settings aside: %w", err)
	}
	return defaults, &BadFile{KeptAs: kept, Err: perr}, nil
}

// Save validates d against the host and the stored document (a smaller
// disk needs resetConfirmed) and writes it atomically: a temporary file
// beside it, fsync, rename, fsync of the folder. Nothing is written when
// d is refused.
func (s *Store) Save(d *Document, resetConfirmed bool) error {
	if err := Validate(d, s.Host); err != nil {
		return err
	}
	// The disk is compared with the stored document when there is one
	// that parses.
	var old *Document
	if data, err := os.ReadFile(s.Path); err == nil {
		old, _ = Parse(data, Defaults(s.Host))
	}
	if err := CheckChange(old, d, resetConfirmed); err != nil {
		return err
	}
	data, err := d.Marshal()
	if err != nil {
		return err
	}
	return writeAtomic(s.Path, data)
}

// writeAtomic replaces path with data so that a crash leaves the old file
// or the new one, never a part.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create settings folder: %w", err)
	}
	return atomicfile.Write(path, data, 0o600)
}

// Package hostshare owns the shared-folder policy: which host folders are
// shared into the VM (at the same paths), and Docker Desktop's "Mounts
// denied" error for a bind source outside them. Natively on Linux nothing
// is configured and every path is allowed.
package hostshare

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Policy is a set of shared folders. The zero Policy allows every path.
type Policy struct {
	paths []string
	// internal are paths of the VM itself a container may bind even
	// though no host folder holds them (the engine's own API socket, as
	// Docker Desktop allows /var/run/docker.sock).
	internal []string
}

// NewPolicy returns the policy sharing paths (absolute; cleaned). An
// empty list allows every path.
func NewPolicy(paths []string) (Policy, error) {
	var p Policy
	for _, s := range paths {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !filepath.IsAbs(s) {
			return Policy{}, fmt.Errorf("shared path %q is not absolute", s)
		}
		p.paths = append(p.paths, filepath.Clean(s))
	}
	return p, nil
}

// ParseList parses a comma-separated list of shared paths (the engine's
// --shared-paths flag).
func ParseList(s string) (Policy, error) {
	if strings.TrimSpace(s) == "" {
		return Policy{}, nil
	}
	return NewPolicy(strings.Split(s, ","))
}

// WithInternal returns p also allowing the exact paths given, which live
// in the VM rather than in a shared folder.
func (p Policy) WithInternal(paths ...string) Policy {
	out := Policy{paths: p.paths, internal: append([]string(nil), p.internal...)}
	for _, s := range paths {
		if filepath.IsAbs(s) {
			out.internal = append(out.internal, filepath.Clean(s))
		}
	}
	return out
}

// Paths returns the shared folders; empty means every path is allowed.
func (p Policy) Paths() []string { return append([]string(nil), p.paths...) }

// Allowed reports whether path is inside a shared folder.
func (p Policy) Allowed(path string) bool {
	if len(p.paths) == 0 {
		return true
	}
	path = filepath.Clean(path)
	for _, s := range p.internal {
		if path == s {
			return true
		}
	}
	for _, s := range p.paths {
		if path == s || s == "/" || strings.HasPrefix(path, s+"/") {
			return true
		}
	}
	return false
}

// Check returns a *DeniedError when path is outside every shared folder.
func (p Policy) Check(path string) error {
	if p.Allowed(path) {
		return nil
	}
	return &DeniedError{Path: filepath.Clean(path)}
}

// DeniedError is Docker Desktop's "Mounts denied" for a bind source that
// is not shared from the host. It is a client error (HTTP 400).
type DeniedError struct {
	Path string
}

func (e *DeniedError) Error() string {
	return "Mounts denied: \nThe path " + e.Path + " is not shared from the host and is not known to Berth.\n" +
		"You can configure shared paths from Berth -> Settings... -> Resources -> File Sharing.\n" +
		"See the File Sharing section of Berth's README for more info."
}

// InvalidParameter makes the API answer 400.
func (e *DeniedError) InvalidParameter() {}

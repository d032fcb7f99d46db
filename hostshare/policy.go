// Package hostshare owns the shared-folder policy for every host OS: which
// host folders are shared into the VM and at which VM path (the same path
// on macOS and Linux; C:\Users\me -> /run/host/c/Users/me on Windows), the
// reading of bind sources in each OS's forms (the docker CLI's Windows
// spellings C:\x, C:/x, /c/x, //c/x included), symbolic links resolved
// before the check, and Docker Desktop's "Mounts denied" error for a bind
// source outside every shared folder.
//
// HostPolicy (host.go) is the host's view: host paths in, VM paths out.
// Policy (this file) is the engine's view in the VM: the shared folders'
// VM paths (--shared-paths); natively on Linux nothing is configured and
// every path is allowed.
package hostshare

import (
	"fmt"
	"path"
	"strings"
)

// Policy is a set of shared folders. The zero Policy allows every path.
type Policy struct {
	paths []string
	// hostOS, when "windows", makes Translate read Windows bind sources.
	hostOS string
	// internal are paths of the VM itself a container may bind even
	// though no host folder holds them (the engine's own API socket, as
	// Docker Desktop allows /var/run/docker.sock).
	internal []string
}

// NewPolicy returns the policy sharing paths (absolute VM paths; cleaned;
// empty entries skipped). An empty list allows every path.
func NewPolicy(paths []string) (Policy, error) {
	var p Policy
	for _, s := range paths {
		if s == "" {
			continue
		}
		if !strings.HasPrefix(s, "/") {
			return Policy{}, fmt.Errorf("shared path %q is not absolute", s)
		}
		p.paths = append(p.paths, path.Clean(s))
	}
	return p, nil
}

// ParseList parses a comma-separated list of shared paths (the engine's
// --shared-paths flag), spaces around each trimmed.
func ParseList(s string) (Policy, error) {
	if strings.TrimSpace(s) == "" {
		return Policy{}, nil
	}
	list := strings.Split(s, ",")
	for i := range list {
		list[i] = strings.TrimSpace(list[i])
	}
	return NewPolicy(list)
}

// WithInternal returns p also allowing the exact paths given, which live
// in the VM rather than in a shared folder.
func (p Policy) WithInternal(paths ...string) Policy {
	out := Policy{paths: p.paths, hostOS: p.hostOS, internal: append([]string(nil), p.internal...)}
	for _, s := range paths {
		if strings.HasPrefix(s, "/") {
			out.internal = append(out.internal, path.Clean(s))
		}
	}
	return out
}

// ForHost returns p reading bind sources as a host running goos writes
// them (Translate): with "windows", C:\x, C:/x, /c/x and //c/x name
// C:\x, which is /run/host/c/x in the VM.
func (p Policy) ForHost(goos string) Policy {
	p.hostOS = goos
	return p
}

// HostOS is the host OS the policy reads bind sources for ("" when it
// takes every source as a VM path).
func (p Policy) HostOS() string { return p.hostOS }

// Translate returns the VM path of bind source src as the docker CLI sent
// it, or a *DeniedError naming src when that path is outside every shared
// folder. A Windows source (when the policy is ForHost("windows")) maps
// under WindowsRoot; every other source is a VM path already.
func (p Policy) Translate(src string) (string, error) {
	if p.hostOS == "windows" && IsWindowsSource(src) {
		hp, err := ParseHostPath("windows", src)
		if err != nil {
			return "", err
		}
		vm := VMPath("windows", hp)
		if !p.Allowed(vm) {
			return "", &DeniedError{Path: hp}
		}
		return vm, nil
	}
	if err := p.Check(src); err != nil {
		return "", err
	}
	return path.Clean(src), nil
}

// Paths returns the shared folders; empty means every path is allowed.
func (p Policy) Paths() []string { return append([]string(nil), p.paths...) }

// Allowed reports whether VM path vp is inside a shared folder.
func (p Policy) Allowed(vp string) bool {
	if len(p.paths) == 0 {
		return true
	}
	vp = path.Clean(vp)
	for _, s := range p.internal {
		if vp == s {
			return true
		}
	}
	for _, s := range p.paths {
		if vp == s || s == "/" || strings.HasPrefix(vp, s+"/") {
			return true
		}
	}
	return false
}

// Check returns a *DeniedError when VM path vp is outside every shared
// folder.
func (p Policy) Check(vp string) error {
	if p.Allowed(vp) {
		return nil
	}
	return &DeniedError{Path: path.Clean(vp)}
}

// DeniedError is Docker Desktop's "Mounts denied" for a bind source that
// is not shared from the host. It is a client error (HTTP 400).
type DeniedError struct {
	Path string
}

// Error is Docker Desktop's wording, with a line break after "Mounts
// denied:" as Docker Desktop writes it.
func (e *DeniedError) Error() string {
	return "Mounts denied: \nThe path " + e.Path + " is not shared from the host and is not known to Berth.\n" +
		"You can configure shared paths from Settings > Resources > File sharing."
}

// InvalidParameter makes the API answer 400.
func (e *DeniedError) InvalidParameter() {}

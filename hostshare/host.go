package hostshare

import (
	"errors"
	"io/fs"
	"path"
	"strings"
)

// Resolver resolves the symbolic links of an existing host path, as
// filepath.EvalSymlinks does, failing with fs.ErrNotExist for a missing
// one. The policy is given it, so that the links of another OS (macOS's
// /tmp -> /private/tmp) are tested as data anywhere.
type Resolver func(p string) (string, error)

// HostPolicy is the shared-folder policy seen from the host: the folders
// of a host running OS, and the VM path each is mounted at.
type HostPolicy struct {
	// OS is "darwin", "linux" or "windows"; its path rules apply.
	OS string
	// Shares are the shared host folders, in any form ParseHostPath takes.
	Shares []string
	// Resolve resolves symbolic links; nil resolves none.
	Resolve Resolver
}

// Mount is one shared folder: where it is on the host and in the VM.
type Mount struct {
	Host string
	VM   string
}

// Mounts lists the shared folders with their VM paths, in the order of
// Shares.
func (h HostPolicy) Mounts() ([]Mount, error) {
	out := make([]Mount, 0, len(h.Shares))
	for _, s := range h.Shares {
		p, err := ParseHostPath(h.OS, s)
		if err != nil {
			return nil, err
		}
		out = append(out, Mount{Host: p, VM: VMPath(h.OS, p)})
	}
	return out, nil
}

// VMPaths are the VM paths of the shared folders: the engine's
// --shared-paths.
func (h HostPolicy) VMPaths() ([]string, error) {
	ms, err := h.Mounts()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.VM
	}
	return out, nil
}

// Map returns the VM path of bind source src. src is read by the host
// OS's rules (ParseHostPath), its symbolic links are resolved, and the
// result must lie in a shared folder (itself resolved): the VM path is
// then that folder's VM path joined with the rest: src itself when a
// folder gives that (the same path on both sides), else through the
// innermost folder holding the resolved path. Outside every shared
// folder Map returns a *DeniedError naming src as given. With no shared
// folders nothing is mapped and every path is refused.
func (h HostPolicy) Map(src string) (string, error) {
	p, err := ParseHostPath(h.OS, src)
	if err != nil {
		return "", err
	}
	rp, err := h.resolve(p)
	if err != nil {
		return "", err
	}
	same := VMPath(h.OS, p)
	best, bestLen := "", -1
	for _, s := range h.Shares {
		sp, err := ParseHostPath(h.OS, s)
		if err != nil {
			return "", err
		}
		root, err := h.resolve(sp)
		if err != nil {
			return "", err
		}
		rel, ok := within(h.OS, rp, root)
		if !ok {
			continue
		}
		vm := path.Join(VMPath(h.OS, sp), rel)
		if vm == same {
			return vm, nil
		}
		if len(root) > bestLen {
			best, bestLen = vm, len(root)
		}
	}
	if bestLen < 0 {
		return "", &DeniedError{Path: p}
	}
	return best, nil
}

// resolve resolves p's links; of a path that does not exist yet (a bind
// source the engine creates) the longest existing parent is resolved and
// the rest kept.
func (h HostPolicy) resolve(p string) (string, error) {
	if h.Resolve == nil {
		return p, nil
	}
	sep := "/"
	if h.OS == "windows" {
		sep = `\`
	}
	rest := ""
	for cur := p; ; {
		r, err := h.Resolve(cur)
		if err == nil {
			if rest == "" {
				return r, nil
			}
			return strings.TrimSuffix(r, sep) + sep + rest, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		i := strings.LastIndex(cur, sep)
		if i < 0 || cur[i+1:] == "" {
			// The root itself is missing (a drive that is not there).
			return p, nil
		}
		if rest == "" {
			rest = cur[i+1:]
		} else {
			rest = cur[i+1:] + sep + rest
		}
		cur = cur[:i]
		if cur == "" || (h.OS == "windows" && len(cur) == 2 && cur[1] == ':') || (h.OS == "windows" && cur == `\`) {
			cur += sep
		}
	}
}

// within reports whether p is root or inside it by goos's rules (case
// folded on macOS and Windows, whose file systems ignore it by default)
// and returns the rest of p, slash-separated.
func within(goos, p, root string) (string, bool) {
	sep := "/"
	if goos == "windows" {
		sep = `\`
	}
	equal := func(a, b string) bool { return a == b }
	if goos == "darwin" || goos == "windows" {
		equal = strings.EqualFold
	}
	root = strings.TrimSuffix(root, sep)
	if len(p) < len(root) || !equal(p[:len(root)], root) {
		return "", false
	}
	rest := p[len(root):]
	if rest == "" {
		return "", true
	}
	if !strings.HasPrefix(rest, sep) {
		return "", false
	}
	return strings.ReplaceAll(strings.TrimPrefix(rest, sep), sep, "/"), true
}

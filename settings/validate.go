package settings

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strings"
)

// ErrResetRequired marks a change that erases the VM's data (a smaller
// disk) and is refused unless the user confirms the reset.
var ErrResetRequired = errors.New("the change needs a confirmed reset")

// Validate checks every setting of d against host h and returns the wrong
// ones as FieldErrors, each naming its dotted key and the reason.
func Validate(d *Document, h Host) error {
	var errs FieldErrors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	if d.Version != Version {
		bad("version", "is %d; this Berth writes %d", d.Version, Version)
	}

	r := d.Resources
	switch {
	case r.CPUs < 1:
		bad("resources.cpus", "must be at least 1, got %d", r.CPUs)
	case h.CPUs > 0 && r.CPUs > h.CPUs:
		bad("resources.cpus", "%d is more than the host's %d CPUs", r.CPUs, h.CPUs)
	}
	switch max := MaxMemoryMiB(h); {
	case r.MemoryMiB < MinMemoryMiB:
		bad("resources.memoryMiB", "must be at least %d MiB, got %d", MinMemoryMiB, r.MemoryMiB)
	case max > 0 && r.MemoryMiB > max:
		bad("resources.memoryMiB", "%d MiB is more than the %d MiB this host can give (%d MiB, less %d MiB kept for the host)",
			r.MemoryMiB, max, h.MemoryMiB, MemoryReserveMiB(h.MemoryMiB))
	}
	if r.SwapMiB < 0 || r.SwapMiB > MaxSwapMiB {
		bad("resources.swapMiB", "must be between 0 and %d MiB, got %d", MaxSwapMiB, r.SwapMiB)
	}
	if r.DiskGiB < MinDiskGiB {
		bad("resources.diskGiB", "must be at least %d GiB, got %d", MinDiskGiB, r.DiskGiB)
	}
	if r.DiskPath != "" && !isAbs(h.OS, r.DiskPath) {
		bad("resources.diskPath", "%q is not an absolute path", r.DiskPath)
	}
	if r.VMSubnet != "" {
		if err := checkSubnet(r.VMSubnet); err != nil {
			bad("resources.vmSubnet", "%v", err)
		}
	}

	for _, err := range checkShares(d.FileSharing.Paths, h) {
		bad("fileSharing.paths", "%v", err)
	}

	p := d.Proxies
	switch p.Mode {
	case ProxyNone, ProxySystem:
	case ProxyManual:
		if p.HTTP == "" && p.HTTPS == "" {
			bad("proxies.mode", "manual needs proxies.http or proxies.https")
		}
	default:
		bad("proxies.mode", "%q is not one of none, system, manual", p.Mode)
	}
	for key, v := range map[string]string{"proxies.http": p.HTTP, "proxies.https": p.HTTPS} {
		if v == "" {
			continue
		}
		if err := checkProxyURL(v); err != nil {
			bad(key, "%v", err)
		}
	}

	if _, err := d.EngineConfig(); err != nil {
		var fe FieldErrors
		if errors.As(err, &fe) {
			errs = append(errs, fe...)
		}
	}
	return errs.err()
}

// CheckChange checks what going from old to new asks of the VM: a smaller
// disk erases the data, so it is refused with ErrResetRequired unless
// confirmed.
func CheckChange(old, new *Document, resetConfirmed bool) error {
	if old == nil || resetConfirmed {
		return nil
	}
	if new.Resources.DiskGiB < old.Resources.DiskGiB {
		return FieldErrors{{
			Key: "resources.diskGiB",
			Reason: fmt.Sprintf("shrinking the disk from %d to %d GiB erases the VM's data (images, containers, volumes); confirm the reset to do it",
				old.Resources.DiskGiB, new.Resources.DiskGiB),
			Err: ErrResetRequired,
		}}
	}
	return nil
}

func checkSubnet(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return fmt.Errorf("%q is not an IPv4 network such as 192.168.64.0/24", s)
	}
	if p.Bits() < 8 || p.Bits() > 29 {
		return fmt.Errorf("%q: the prefix length must be between 8 and 29", s)
	}
	if p.Masked() != p {
		return fmt.Errorf("%q is not a network address (%s is)", s, p.Masked())
	}
	return nil
}

func checkProxyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "http", "https", "socks5":
	default:
		return fmt.Errorf("%q: the scheme must be http, https or socks5", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// checkShares checks the shared folders: each absolute, not the whole
// disk, an existing folder, listed once and not inside another.
func checkShares(paths []string, h Host) []error {
	var errs []error
	for i, p := range paths {
		if !isAbs(h.OS, p) {
			errs = append(errs, fmt.Errorf("%q is not an absolute path", p))
			continue
		}
		if isRoot(h.OS, p) {
			errs = append(errs, fmt.Errorf("%q is the whole disk; share the folders in it instead", p))
			continue
		}
		if err := overlap(paths, i, h.OS); err != nil {
			errs = append(errs, err)
			continue
		}
		fi, err := h.stat(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%q does not exist or cannot be read: %w", p, err))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("%q is not a folder", p))
		}
	}
	return errs
}

// overlap reports entry i listed again before it, or inside another
// entry.
func overlap(paths []string, i int, goos string) error {
	a := pathKey(goos, paths[i])
	for j, q := range paths {
		if j == i || !isAbs(goos, q) {
			continue
		}
		b := pathKey(goos, q)
		if a == b {
			if j < i {
				return fmt.Errorf("%q is listed twice", paths[i])
			}
			continue
		}
		if strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") {
			return fmt.Errorf("%q is inside %q, which is already shared", paths[i], q)
		}
	}
	return nil
}

// AddShare adds folder p to d's shared folders, with the checks Validate
// makes of the list.
func AddShare(d *Document, h Host, p string) error {
	next := append(append([]string(nil), d.FileSharing.Paths...), p)
	if errs := checkShares(next, h); len(errs) > 0 {
		return &FieldError{Key: "fileSharing.paths", Reason: errors.Join(errs...).Error()}
	}
	d.FileSharing.Paths = next
	return nil
}

// RemoveShare removes folder p from d's shared folders.
func RemoveShare(d *Document, h Host, p string) error {
	for i, q := range d.FileSharing.Paths {
		if pathKey(h.OS, q) == pathKey(h.OS, p) {
			d.FileSharing.Paths = append(d.FileSharing.Paths[:i:i], d.FileSharing.Paths[i+1:]...)
			return nil
		}
	}
	return &FieldError{Key: "fileSharing.paths", Reason: fmt.Sprintf("%q is not shared", p)}
}

// isAbs reports whether p is absolute by the rules of goos: a drive
// letter or UNC path on Windows, a leading slash elsewhere.
func isAbs(goos, p string) bool {
	if goos != "windows" {
		return strings.HasPrefix(p, "/")
	}
	if len(p) >= 3 && isLetter(p[0]) && p[1] == ':' && (p[2] == '\\' || p[2] == '/') {
		return true
	}
	return strings.HasPrefix(p, `\\`) && len(p) > 2
}

// isRoot reports whether p is a whole disk: "/" or a drive or UNC share
// root on Windows.
func isRoot(goos, p string) bool {
	k := pathKey(goos, p)
	if goos != "windows" {
		return k == "/"
	}
	if len(k) == 3 && k[1] == ':' {
		return true
	}
	if rest, ok := strings.CutPrefix(k, "//"); ok {
		return strings.Count(strings.TrimSuffix(rest, "/"), "/") <= 1
	}
	return false
}

// pathKey is p in a form that compares as the OS's file system does:
// forward slashes and folded case on Windows, folded case on macOS (its
// default file system ignores case), cleaned everywhere.
func pathKey(goos, p string) string {
	if goos == "windows" {
		p = strings.ReplaceAll(p, `\`, "/")
		unc := strings.HasPrefix(p, "//")
		p = path.Clean(p)
		if unc {
			p = "/" + p
		}
		if len(p) == 2 && p[1] == ':' {
			p += "/"
		}
		return strings.ToLower(p)
	}
	p = path.Clean(p)
	if goos == "darwin" {
		p = strings.ToLower(p)
	}
	return p
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

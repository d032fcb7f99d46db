package hostshare

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// WindowsRoot is where a Windows host's drives appear in the VM: C:\ is
// /run/host/c, and a network share \\server\share is
// /run/host/unc/server/share.
const WindowsRoot = "/run/host"

// ErrNotAbsolute is returned for a host path that is not absolute by its
// OS's rules.
var ErrNotAbsolute = errors.New("not an absolute path")

// ParseHostPath reads s as an absolute path of a host running goos
// ("darwin", "linux", "windows") and returns it in that OS's own form,
// cleaned. On Windows it accepts every form the docker CLI passes on:
// C:\x, C:/x, /c/x and //c/x (Git Bash and MSYS spellings), and UNC paths
// \\server\share\x; the result uses backslashes and an upper-case drive
// letter (C:\x). Elsewhere s must start with a slash.
func ParseHostPath(goos, s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("host path %q: has a NUL byte", s)
	}
	if goos != "windows" {
		if !strings.HasPrefix(s, "/") {
			return "", fmt.Errorf("host path %q: %w", s, ErrNotAbsolute)
		}
		return path.Clean(s), nil
	}
	p := strings.ReplaceAll(s, `\`, "/")
	switch {
	case len(p) >= 3 && isLetter(p[0]) && p[1] == ':' && p[2] == '/':
		// C:\x or C:/x
		return windowsDrive(p[0], p[2:]), nil
	case len(p) >= 2 && p[0] == '/' && isLetter(p[1]) && (len(p) == 2 || p[2] == '/'):
		// /c or /c/x
		return windowsDrive(p[1], p[2:]), nil
	case len(p) >= 3 && p[0] == '/' && p[1] == '/' && isLetter(p[2]) && (len(p) == 3 || p[3] == '/'):
		// //c or //c/x
		return windowsDrive(p[2], p[3:]), nil
	case strings.HasPrefix(p, "//./") || strings.HasPrefix(p, "//?/"):
		return "", fmt.Errorf("host path %q: a device path (\\\\.\\ or \\\\?\\) is not a folder that can be shared", s)
	case strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///"):
		// \\server\share\x
		parts := strings.Split(strings.Trim(path.Clean("/"+p[2:]), "/"), "/")
		if len(parts) < 2 || parts[0] == "" || parts[0] == "." || parts[0] == ".." || parts[1] == ".." {
			return "", fmt.Errorf("host path %q: a network path needs a server and a share", s)
		}
		if len(parts[0]) == 1 && isLetter(parts[0][0]) {
			// //c/x is drive C: (Git Bash); a one-letter server cannot be named so.
			return "", fmt.Errorf("host path %q: a network path's server needs more than one letter (//%s/... is drive %s:)", s, parts[0], strings.ToUpper(parts[0]))
		}
		return `\\` + strings.Join(parts, `\`), nil
	}
	return "", fmt.Errorf("host path %q: %w (C:\\..., C:/..., /c/... or //c/...)", s, ErrNotAbsolute)
}

// windowsDrive is drive d with the slash-separated rest, cleaned so that
// ".." stops at the drive's root.
func windowsDrive(d byte, rest string) string {
	rest = path.Clean("/" + rest)
	return strings.ToUpper(string(d)) + ":" + strings.ReplaceAll(rest, "/", `\`)
}

// VMPath is where host path p (as ParseHostPath returns it) is in the VM:
// the same path on macOS and Linux, under WindowsRoot on Windows
// (C:\Users\me -> /run/host/c/Users/me).
func VMPath(goos, p string) string {
	if goos != "windows" {
		return path.Clean(p)
	}
	p = strings.ReplaceAll(p, `\`, "/")
	if rest, ok := strings.CutPrefix(p, "//"); ok {
		return path.Clean(WindowsRoot + "/unc/" + rest)
	}
	if len(p) >= 2 && isLetter(p[0]) && p[1] == ':' {
		return path.Clean(WindowsRoot + "/" + strings.ToLower(p[:1]) + "/" + p[2:])
	}
	return path.Clean(p)
}

// IsWindowsSource reports whether a bind source, as the VM's engine gets
// it from a Windows docker CLI, is a Windows path (C:\x, C:/x, //c/x,
// \\server\share) rather than a path of the VM. /c/x counts as Windows:
// the docker CLI of Git Bash sends it for C:\x, as Docker Desktop takes it.
func IsWindowsSource(s string) bool {
	if strings.HasPrefix(s, WindowsRoot+"/") {
		return false
	}
	_, err := ParseHostPath("windows", s)
	return err == nil
}

// SplitBind cuts the source off a bind spec SOURCE:TARGET[:MODE] whose
// source is a Windows path with a drive letter (C:\x:/in:ro), whose colon
// a plain split on ":" would take for the separator. ok is false when
// spec does not start with such a source.
func SplitBind(spec string) (source, rest string, ok bool) {
	if len(spec) < 3 || !isLetter(spec[0]) || spec[1] != ':' || (spec[2] != '\\' && spec[2] != '/') {
		return "", "", false
	}
	i := strings.IndexByte(spec[2:], ':')
	if i < 0 {
		return spec, "", true
	}
	return spec[:2+i], spec[2+i+1:], true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

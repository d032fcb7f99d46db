package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// socketGroup owns the unix socket when it exists, as with dockerd.
const socketGroup = "docker"

// Listen opens a listener for a -H address: unix:///path/to/sock or
// tcp://host:port. A unix socket gets mode 0660 (and the "docker" group
// when there is one); a stale socket file left by a dead engine is
// removed, while one that still accepts connections is an error.
func Listen(addr string) (net.Listener, error) {
	proto, address, err := parseListenAddr(addr)
	if err != nil {
		return nil, err
	}
	if proto == "unix" {
		return listenUnix(address)
	}
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}
	return l, nil
}

// parseListenAddr splits a -H address into "unix" and an absolute path,
// or "tcp" and host:port.
func parseListenAddr(addr string) (proto, address string, err error) {
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return "", "", fmt.Errorf("listen on %q: address must be unix:///path or tcp://host:port", addr)
	}
	switch proto {
	case "unix":
		if rest == "" || !filepath.IsAbs(rest) {
			return "", "", fmt.Errorf("listen on unix socket %q: path must be absolute", rest)
		}
		return proto, filepath.Clean(rest), nil
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil || port == "" || strings.ContainsAny(rest, "/?#") {
			return "", "", fmt.Errorf("listen on %q: tcp address must be host:port", addr)
		}
		return proto, net.JoinHostPort(host, port), nil
	default:
		return "", "", fmt.Errorf("listen on %q: unsupported protocol %q (want unix or tcp)", addr, proto)
	}
}

func listenUnix(path string) (net.Listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create directory of unix socket %s: %w", path, err)
	}
	// Connecting needs write permission: under the usual umask the new
	// socket is writable by its owner (root) alone until the chmod below.
	// The process-wide umask is left alone, as other goroutines may be
	// creating files.
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on unix socket %s: %w", path, err)
	}
	gid := -1
	// Only root may hand the socket to a group it is not a member of.
	if g, err := user.LookupGroup(socketGroup); err == nil && os.Geteuid() == 0 {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid = n
		}
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("set group of unix socket %s: %w", path, err)
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode of unix socket %s: %w", path, err)
	}
	return l, nil
}

// removeStaleSocket removes a socket file nobody listens on. Anything else
// at path is left alone and reported.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check unix socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen on unix socket %s: a file that is not a socket is in the way", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("listen on unix socket %s: another process is serving it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale unix socket %s: %w", path, err)
	}
	return nil
}

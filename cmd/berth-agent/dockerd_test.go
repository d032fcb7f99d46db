//go:build linux

package main

// The peer engine: Debian's dockerd (docker.io), started on its own roots
// and socket. The benchmark compares Berth with it, and setting
// BERTH_IT_PEER=dockerd runs the integration tests against it instead of
// Berth, which checks the tests' own expectations against the reference.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// peerFlags are the dockerd flags that work natively on this kind of host
// without touching its network: no bridge, no iptables rules, no IP
// forwarding changes. dockerd then has no default bridge network, so every
// container runs with --network none (on both engines, for a fair
// comparison). dockerd starts its own containerd under the exec root.
var peerFlags = []string{
	"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
	"--bridge=none", "--storage-driver=overlay2", "--log-level=warn",
}

// haveDockerd reports why dockerd cannot be the peer here, or "".
func haveDockerd() string {
	for _, bin := range []string{"dockerd", "containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed (Debian package docker.io)"
		}
	}
	return ""
}

// startDockerd starts dockerd with its state under root and waits for
// /_ping.
func startDockerd(root string) (*engine, error) {
	e := &engine{
		root:      root,
		dataRoot:  filepath.Join(root, "data"),
		execRoot:  filepath.Join(root, "exec"),
		sock:      filepath.Join(root, "dockerd.sock"),
		logPath:   filepath.Join(root, "dockerd.log"),
		cliConfig: filepath.Join(root, "cli"),
		peer:      true,
	}
	for _, d := range []string{root, e.cliConfig} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("make %s: %w", d, err)
		}
	}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

// dockerdArgs are the arguments of dockerd for e's roots.
func (e *engine) dockerdArgs() []string {
	return append([]string{
		"--data-root", e.dataRoot, "--exec-root", e.execRoot,
		"-H", "unix://" + e.sock, "--pidfile", filepath.Join(e.root, "dockerd.pid"),
	}, peerFlags...)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Package is one Debian package the image is built from.
type Package struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	File         string `json:"file"`
	SHA256       string `json:"sha256"`
}

// run runs a command and returns its standard output; the error names the
// command and carries its standard error.
func run(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ensureForeignArch makes dpkg know arch (for apt-get download pkg:arch).
func ensureForeignArch(ctx context.Context, arch string) error {
	native, err := run(ctx, "", "dpkg", "--print-architecture")
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(native)) == arch {
		return nil
	}
	foreign, err := run(ctx, "", "dpkg", "--print-foreign-architectures")
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(foreign)) {
		if a == arch {
			return nil
		}
	}
	if _, err := run(ctx, "", "dpkg", "--add-architecture", arch); err != nil {
		return err
	}
	_, err = run(ctx, "", "apt-get", "update", "-qq")
	return err
}

// Control fields of a package as apt knows it.
type control map[string]string

// ParseControl parses one RFC 822 style stanza of `apt-cache show`.
func ParseControl(text string) control {
	c := control{}
	var key string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(c) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key != "" {
				c[key] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = k
		c[key] = strings.TrimSpace(v)
	}
	return c
}

// KernelDependency returns the versioned kernel package a meta package
// (linux-image-cloud-ARCH) depends on.
func KernelDependency(depends string) (string, error) {
	for _, d := range strings.Split(depends, ",") {
		name := strings.TrimSpace(d)
		if i := strings.IndexAny(name, " (|"); i >= 0 {
			name = name[:i]
		}
		if strings.HasPrefix(name, "linux-image-") && strings.Count(name, "-") >= 4 {
			return name, nil
		}
	}
	return "", fmt.Errorf("no versioned linux-image package in %q", depends)
}

// showPackage asks apt for the candidate version of name:arch.
func showPackage(ctx context.Context, name, arch string) (control, error) {
	out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", name+":"+arch)
	if err != nil {
		return nil, err
	}
	c := ParseControl(string(out))
	if c["Version"] == "" {
		return nil, fmt.Errorf("apt-cache show %s:%s: no version", name, arch)
	}
	return c, nil
}

// debFileName is the name apt-get download gives a package file.
func debFileName(name, version, arch string) string {
	return fmt.Sprintf("%s_%s_%s.deb", name, strings.ReplaceAll(version, ":", "%3a"), arch)
}

// fetchPackage returns the package name:arch at apt's candidate version,
// downloading it into cacheDir unless it is there already.
func fetchPackage(ctx context.Context, cacheDir, name, arch string) (Package, error) {
	c, err := showPackage(ctx, name, arch)
	if err != nil {
		return Package{}, err
	}
	pkgArch := c["Architecture"]
	if pkgArch == "" {
		pkgArch = arch
	}
	file := filepath.Join(cacheDir, debFileName(name, c["Version"], pkgArch))
	if _, err := os.Stat(file); err != nil {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			return Package{}, fmt.Errorf("make cache %s: %w", cacheDir, err)
		}
		if _, err := run(ctx, cacheDir, "apt-get", "download", "-qq", name+":"+arch+"="+c["Version"]); err != nil {
			return Package{}, err
		}
		if _, err := os.Stat(file); err != nil {
			return Package{}, fmt.Errorf("download %s: %w", name, err)
		}
	}
	sum, err := fileSHA256(file)
	if err != nil {
		return Package{}, err
	}
	return Package{Name: name, Version: c["Version"], Architecture: pkgArch, File: filepath.Base(file), SHA256: sum}, nil
}

// extractPackage unpacks a package's files into root.
func extractPackage(ctx context.Context, deb, root string) error {
	_, err := run(ctx, "", "dpkg-deb", "-x", deb, root)
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

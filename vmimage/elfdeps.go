package main

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// libDirs are the library directories searched, relative to the root, in
// the order of the dynamic loader of Debian for each architecture.
func libDirs(arch string) []string {
	t := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
	return []string{"lib/" + t, "usr/lib/" + t, "lib", "usr/lib"}
}

// ELFClosure returns the root-relative paths an executable needs to run: its
// interpreter and every shared library it needs, transitively, including the
// symlinks on the way to each file.
func ELFClosure(root, arch string, executables []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(rel string) error {
		for _, p := range symlinkChain(root, rel) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
		return nil
	}
	queue := append([]string(nil), executables...)
	visited := map[string]bool{}
	for len(queue) > 0 {
		rel := queue[0]
		queue = queue[1:]
		if visited[rel] {
			continue
		}
		visited[rel] = true
		if err := add(rel); err != nil {
			return nil, err
		}
		real := resolveInRoot(root, rel)
		f, err := elf.Open(filepath.Join(root, real))
		if err != nil {
			return nil, fmt.Errorf("read ELF %s: %w", rel, err)
		}
		interp := ""
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b := make([]byte, p.Filesz)
				if _, err := p.ReadAt(b, 0); err == nil {
					interp = strings.TrimRight(string(b), "\x00")
				}
			}
		}
		libs, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("libraries of %s: %w", rel, err)
		}
		if interp != "" {
			queue = append(queue, strings.TrimPrefix(interp, "/"))
		}
		for _, lib := range libs {
			found := ""
			for _, d := range libDirs(arch) {
				if _, err := os.Stat(filepath.Join(root, resolveInRoot(root, path.Join(d, lib)))); err == nil {
					found = path.Join(d, lib)
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("%s needs %s, which no input package provides", rel, lib)
			}
			queue = append(queue, found)
		}
	}
	return out, nil
}

// symlinkChain returns rel and, when it is a symlink, each path it leads to
// inside root, ending at the real file.
func symlinkChain(root, rel string) []string {
	chain := []string{rel}
	for i := 0; i < 16; i++ {
		target, err := os.Readlink(filepath.Join(root, rel))
		if err != nil {
			return chain
		}
		if path.IsAbs(target) {
			rel = strings.TrimPrefix(path.Clean(target), "/")
		} else {
			rel = path.Join(path.Dir(rel), target)
		}
		chain = append(chain, rel)
	}
	return chain
}

// resolveInRoot follows symlinks of rel as if root were /.
func resolveInRoot(root, rel string) string {
	chain := symlinkChain(root, rel)
	return chain[len(chain)-1]
}

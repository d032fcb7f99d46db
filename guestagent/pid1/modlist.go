package pid1

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Module is one entry of the module list: a module file and the module
// files that must be loaded before it.
type Module struct {
	Path string
	Deps []string
}

// ErrBadModuleList is returned for a module list that does not parse.
var ErrBadModuleList = errors.New("bad module list")

// ParseModuleList parses a module list the image carries: one module a
// line, "PATH: DEP DEP...", each dependency listed on an earlier line (or
// in an earlier list: known), so that the lists read top down are a valid
// load order. Blank lines and lines starting with # are skipped. Paths are
// absolute.
func ParseModuleList(text string, known map[string]bool) ([]Module, error) {
	var mods []Module
	seen := map[string]bool{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, rest, _ := strings.Cut(line, ":")
		p = strings.TrimSpace(p)
		if !path.IsAbs(p) || path.Clean(p) != p || seen[p] {
			return nil, fmt.Errorf("%w: line %d: module %q", ErrBadModuleList, n+1, p)
		}
		m := Module{Path: p}
		for _, d := range strings.Fields(rest) {
			if !seen[d] && !known[d] {
				return nil, fmt.Errorf("%w: line %d: %s needs %s, not listed before it", ErrBadModuleList, n+1, p, d)
			}
			m.Deps = append(m.Deps, d)
		}
		seen[p] = true
		mods = append(mods, m)
	}
	return mods, nil
}

package pkgdoc

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// moduleRoot finds the directory holding go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// packageDirs returns every directory under root that holds non-test Go
// files, skipping testdata, vendor, node_modules and hidden directories.
func packageDirs(t *testing.T, root string) map[string][]string {
	t.Helper()
	dirs := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = append(dirs[filepath.Dir(p)], p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return dirs
}

// hasDoc reports whether any of files has a package doc comment.
func hasDoc(t *testing.T, files []string) bool {
	t.Helper()
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("parse %s: %v", f, err)
			continue
		}
		if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
			return true
		}
	}
	return false
}

func TestEveryPackageHasDoc(t *testing.T) {
	root := moduleRoot(t)
	dirs := packageDirs(t, root)
	if len(dirs) == 0 {
		t.Fatal("found no Go packages")
	}
	for dir, files := range dirs {
		rel, _ := filepath.Rel(root, dir)
		if !hasDoc(t, files) {
			t.Errorf("package %s has no doc comment saying what it owns", rel)
		}
	}
}

func TestHasDoc(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want bool
	}{
		{"doc", "// Package a owns a.\npackage a\n", true},
		{"command", "// Command a is a tool.\npackage main\n", true},
		{"none", "package a\n", false},
		{"detached", "// Copyright.\n\npackage a\n", false},
		{"build tag only", "//go:build linux\n\npackage a\n", false},
		{"doc after tag", "//go:build linux\n\n// Package a owns a.\npackage a\n", true},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		f := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".go")
		if err := os.WriteFile(f, []byte(tt.src), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := hasDoc(t, []string{f}); got != tt.want {
			t.Errorf("%s: hasDoc = %v, want %v", tt.name, got, tt.want)
		}
	}
}

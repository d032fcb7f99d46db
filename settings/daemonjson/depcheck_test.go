package daemonjson

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports pins what the package may import: the standard library,
// go-units and the engine's pure log-options parser. The host links this
// package, so the registry client and netlink must stay out of it.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/docker/go-units":                    true,
		"github.com/berthdesktop/berth/guestagent/logs": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(strings.SplitN(p, "/", 2)[0], ".") && !allowed[p] {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/tools/go/packages"
)

// options says what to check and for which platform.
type options struct {
	GOOS, GOARCH string
	Tags         string    // comma-separated build tags, as for -tags
	Tests        bool      // also check the packages' _test.go files
	Dir          string    // where the patterns are resolved; "" is the current directory
	DepErrors    io.Writer // if set, the dependencies' (ignored) errors are written here
	Patterns     []string  // package patterns, as for go build
}

// result is what check found.
type result struct {
	Errors  []string // "file:line:col: message", in file order, only for the matched packages
	Roots   []string // the matched packages' import paths
	Checked int      // packages type-checked, dependencies included
}

// loadMode lists every package's files and imports but asks the go command
// for nothing compiled: NeedCompiledGoFiles, NeedSyntax and NeedTypes* all
// make go/packages pass -compiled, and `go list -compiled` runs cgo, i.e.
// the C compiler, with CGO_ENABLED=1. Package.GoFiles holds the original
// files, cgo ones included, which is what FakeImportC wants.
const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedImports |
	packages.NeedDeps | packages.NeedModule

// check lists the packages for the target platform and type-checks them.
func check(opts options) (*result, error) {
	cfg := &packages.Config{
		Mode:  loadMode,
		Dir:   opts.Dir,
		Tests: opts.Tests,
		Env: append(os.Environ(),
			"GOOS="+opts.GOOS,
			"GOARCH="+opts.GOARCH,
			// With cgo on, the go command selects the files a real darwin
			// build compiles (those with `import "C"` and the cgo build tag).
			"CGO_ENABLED=1",
		),
	}
	if opts.Tags != "" {
		cfg.BuildFlags = []string{"-tags=" + opts.Tags}
	}
	roots, err := packages.Load(cfg, opts.Patterns...)
	if err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("no packages match %s", strings.Join(opts.Patterns, " "))
	}
	sizes := types.SizesFor("gc", opts.GOARCH)
	if sizes == nil {
		return nil, fmt.Errorf("unknown GOARCH %q", opts.GOARCH)
	}

	c := &checker{
		fset:      token.NewFileSet(),
		sizes:     sizes,
		roots:     map[*packages.Package]bool{},
		nodes:     map[*packages.Package]*node{},
		reports:   map[string]bool{},
		depErrors: opts.DepErrors,
	}
	res := &result{}
	for _, p := range roots {
		if isTestMain(p) {
			continue
		}
		c.roots[p] = true
		res.Roots = append(res.Roots, p.ID)
	}
	var all []*packages.Package
	packages.Visit(roots, nil, func(p *packages.Package) {
		if !isTestMain(p) {
			all = append(all, p)
			c.nodes[p] = &node{done: make(chan struct{})}
		}
	})

	// Each package waits for its imports, then takes one of GOMAXPROCS
	// slots; the graph is acyclic, so this always finishes.
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := c.nodes[p]
			defer close(n.done)
			for _, imp := range p.Imports {
				if d := c.nodes[imp]; d != nil {
					<-d.done
				}
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			n.types = c.checkPackage(p)
		}()
	}
	wg.Wait()

	res.Checked = len(all)
	res.Errors = c.sortedReports()
	return res, nil
}

// isTestMain tells the generated main package of a test binary, whose
// files the go command only writes when it builds: nothing of ours is in it.
func isTestMain(p *packages.Package) bool {
	return p.Name == "main" && strings.HasSuffix(p.ID, ".test")
}

type checker struct {
	fset  *token.FileSet
	sizes types.Sizes
	roots map[*packages.Package]bool
	nodes map[*packages.Package]*node // written before the checks start, then only read

	mu        sync.Mutex
	depErrors io.Writer
	reports   map[string]bool // the errors found in roots, deduplicated (a test variant repeats its package's files)
}

type node struct {
	done  chan struct{} // closed once types is set
	types *types.Package
}

// checkPackage parses and type-checks one package whose imports are done.
// A dependency's errors are dropped; a root's are recorded.
func (c *checker) checkPackage(p *packages.Package) *types.Package {
	root := c.roots[p]
	if root {
		for _, e := range p.Errors {
			if e.Kind == packages.TypeError || ignorableListError(e) {
				continue
			}
			c.report(e.Pos, e.Msg)
		}
	}

	files := make([]*ast.File, 0, len(p.GoFiles))
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(c.fset, name, nil, parser.SkipObjectResolution)
		if f != nil {
			files = append(files, f)
		}
		if err != nil && root {
			var list scanner.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					c.report(e.Pos.String(), e.Msg)
				}
			} else {
				c.report("", err.Error())
			}
		}
	}
	if len(files) == 0 {
		// A package with no file for this platform (its importer's error
		// says so, if it is one of ours) or one that failed to list.
		return nil
	}

	conf := types.Config{
		GoVersion:   goVersion(p),
		Importer:    importer{c, p},
		Sizes:       c.sizes,
		FakeImportC: true,
		// Of a dependency only its API matters: what our code calls and how.
		IgnoreFuncBodies:         !root,
		DisableUnusedImportCheck: !root,
		Error: func(err error) {
			if !root {
				if c.depErrors != nil {
					c.mu.Lock()
					fmt.Fprintf(c.depErrors, "%s: %v\n", p.ID, err)
					c.mu.Unlock()
				}
				return
			}
			var te types.Error
			if errors.As(err, &te) {
				c.report(te.Fset.Position(te.Pos).String(), te.Msg)
				return
			}
			c.report("", err.Error())
		},
	}
	// The first error does not stop the checker (conf.Error is set), and the
	// package is complete enough for its importers whatever it reports.
	pkg, _ := conf.Check(p.PkgPath, c.fset, files, nil)
	return pkg
}

// ignorableListError tells the go command's errors that do not concern type
// checking. An //go:embed pattern that matches no file is one: the embedded
// files never change a type (the variable is a string, []byte or embed.FS
// whatever it holds), and main.go embeds frontend/dist, which exists only
// once the frontend is built, so a fresh clone must not fail here. The Go
// files of such a package are listed all the same.
func ignorableListError(e packages.Error) bool {
	return e.Kind == packages.ListError &&
		strings.Contains(e.Msg, "pattern ") &&
		(strings.Contains(e.Msg, "no matching files found") || strings.Contains(e.Msg, "cannot embed"))
}

// goVersion is the language version of the package's module ("" for the
// standard library: the toolchain's own).
func goVersion(p *packages.Package) string {
	if p.Module == nil || p.Module.GoVersion == "" {
		return ""
	}
	return "go" + p.Module.GoVersion
}

// importer resolves an import of one package through its listed imports,
// which the go command already mapped (vendoring, replacements).
type importer struct {
	c   *checker
	pkg *packages.Package
}

func (im importer) Import(path string) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	dep := im.pkg.Imports[path]
	if dep == nil {
		return nil, fmt.Errorf("package %s is not among the imports of %s", path, im.pkg.PkgPath)
	}
	n := im.c.nodes[dep]
	if n == nil || n.types == nil {
		if len(dep.Errors) > 0 {
			return nil, errors.New(dep.Errors[0].Msg)
		}
		return nil, fmt.Errorf("package %s has no Go files for this platform", path)
	}
	return n.types, nil
}

// report records one error of a root package; pos is "file:line:col" or "".
func (c *checker) report(pos, msg string) {
	line := msg
	if pos != "" && pos != "-" {
		line = relPath(pos) + ": " + msg
	}
	c.mu.Lock()
	c.reports[line] = true
	c.mu.Unlock()
}

func (c *checker) sortedReports() []string {
	out := make([]string, 0, len(c.reports))
	for r := range c.reports {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return lessPos(out[i], out[j]) })
	return out
}

// lessPos orders "file:line:col: msg" lines by file, then numerically by
// line and column.
func lessPos(a, b string) bool {
	fa, la, ca, _ := splitPos(a)
	fb, lb, cb, _ := splitPos(b)
	if fa != fb {
		return fa < fb
	}
	if la != lb {
		return la < lb
	}
	if ca != cb {
		return ca < cb
	}
	return a < b
}

func splitPos(s string) (file string, line, col int, ok bool) {
	parts := strings.SplitN(s, ":", 4)
	if len(parts) < 4 {
		return s, 0, 0, false
	}
	if _, err := fmt.Sscanf(parts[1]+" "+parts[2], "%d %d", &line, &col); err != nil {
		return s, 0, 0, false
	}
	return parts[0], line, col, true
}

// relPath shortens a position under the current directory.
func relPath(pos string) string {
	wd, err := os.Getwd()
	if err != nil || !filepath.IsAbs(pos) {
		return pos
	}
	if rel, err := filepath.Rel(wd, pos); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return pos
}
